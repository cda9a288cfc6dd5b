// Settings declared once: each key of a config section is one entry of a
// table, with its type, range, help and the struct member it fills. The one
// table reads a section strictly (src/common/json_reader.h), writes it back
// as JSON, validates a struct built in code, and prints `--help`. Choices are
// enums, parsed at this boundary; their names come from the enum's
// to_string(), found by argument-dependent lookup.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "src/common/error.h"
#include "src/common/json_reader.h"

namespace aiayn {

template <class S>
class OptionTable {
 public:
  // Fails with "origin: key \"section.key\": message".
  using Fail = std::function<void(const std::string& key, const std::string& message)>;
  // A relation between keys, checked where it stands in the table: it calls
  // fail with the key to blame, or returns.
  using Rule = std::function<void(const S&, const Fail&)>;

  // section: the config file's object ("model", "data", "train").
  explicit OptionTable(std::string section) : section_(std::move(section)) {}

  const std::string& section() const { return section_; }

  // An integer in [min, max]; `fallback`, when given, is the value of an
  // absent key computed from the keys read before it (d_k = d_model / heads).
  template <class Int>
  OptionTable& integer(const char* key, Int S::*member, int64_t min, int64_t max, const char* help,
                       std::function<Int(const S&)> fallback = nullptr) {
    const std::string range = integer_range(min, max);
    Entry e{key, "integer " + range, help};
    e.read = [=](JsonObjectReader& r, S& s) {
      const Int absent = fallback ? fallback(s) : s.*member;
      s.*member = static_cast<Int>(r.integer(key, static_cast<int64_t>(absent), min, max));
    };
    e.check = [=](const S& s, const Fail& fail) {
      const auto x = s.*member;
      bool outside = false;
      if constexpr (std::is_unsigned_v<Int>) {
        outside = x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      }
      if (outside || static_cast<int64_t>(x) < min || static_cast<int64_t>(x) > max) {
        fail(key, "must be an integer " + range + ", got " + nlohmann::json(x).dump());
      }
    };
    e.write = [=](const S& s, nlohmann::json& j) { j[key] = s.*member; };
    entries_.push_back(std::move(e));
    return *this;
  }

  // A number in [min, max], or [min, max) when max_exclusive.
  OptionTable& number(const char* key, double S::*member, double min, double max, const char* help,
                      bool max_exclusive = false) {
    const std::string range = number_range(min, max, max_exclusive);
    Entry e{key, "number in " + range, help};
    e.read = [=](JsonObjectReader& r, S& s) {
      s.*member = r.number(key, s.*member, min, max, max_exclusive);
    };
    e.check = [=](const S& s, const Fail& fail) {
      const double x = s.*member;
      if (!(x >= min) || (max_exclusive ? x >= max : x > max)) {
        fail(key, "must be a number in " + range + ", got " + nlohmann::json(x).dump());
      }
    };
    e.write = [=](const S& s, nlohmann::json& j) { j[key] = s.*member; };
    entries_.push_back(std::move(e));
    return *this;
  }

  OptionTable& boolean(const char* key, bool S::*member, const char* help) {
    Entry e{key, "true or false", help};
    e.read = [=](JsonObjectReader& r, S& s) { s.*member = r.boolean(key, s.*member); };
    e.write = [=](const S& s, nlohmann::json& j) { j[key] = s.*member; };
    entries_.push_back(std::move(e));
    return *this;
  }

  OptionTable& string(const char* key, std::string S::*member, const char* help) {
    Entry e{key, "string", help};
    e.read = [=](JsonObjectReader& r, S& s) { s.*member = r.string(key, s.*member); };
    e.write = [=](const S& s, nlohmann::json& j) { j[key] = s.*member; };
    entries_.push_back(std::move(e));
    return *this;
  }

  // One of `values`, written as their to_string() names.
  template <class E>
  OptionTable& choice(const char* key, E S::*member, std::vector<E> values, const char* help) {
    std::vector<std::string> names;
    std::string listed;
    for (E v : values) {
      names.push_back(to_string(v));
      listed += (listed.empty() ? "" : " | ") + names.back();
    }
    Entry e{key, listed, help};
    e.read = [=](JsonObjectReader& r, S& s) {
      const std::string name = r.choice(key, to_string(s.*member), names);
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == name) s.*member = values[i];
    };
    e.write = [=](const S& s, nlohmann::json& j) { j[key] = to_string(s.*member); };
    entries_.push_back(std::move(e));
    return *this;
  }

  OptionTable& rule(Rule rule) {
    Entry e;
    e.rule = std::move(rule);
    entries_.push_back(std::move(e));
    return *this;
  }

  // Reads the section's keys over `s` (absent keys keep its values), runs
  // the rules, and refuses unknown keys.
  void read(JsonObjectReader& r, S& s) const {
    const Fail fail = [&](const std::string& key, const std::string& message) { r.fail(key, message); };
    for (const auto& e : entries_) {
      if (e.rule) {
        e.rule(s, fail);
      } else {
        e.read(r, s);
      }
    }
    r.reject_unknown();
  }

  nlohmann::json write(const S& s) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& e : entries_)
      if (e.write) e.write(s, j);
    return j;
  }

  // The same checks as read() on a struct built in code; errors name
  // `origin` and the key.
  void validate(const S& s, const std::string& origin) const {
    const Fail fail = [&](const std::string& key, const std::string& message) {
      throw InputError(origin + ": key \"" + section_ + "." + key + "\": " + message);
    };
    for (const auto& e : entries_) {
      if (e.rule) e.rule(s, fail);
      if (e.check) e.check(s, fail);
    }
  }

  // One line per key: "  section.key  type (default value)\n      help".
  std::string help(const S& defaults) const {
    const nlohmann::json values = write(defaults);
    std::ostringstream out;
    for (const auto& e : entries_) {
      if (e.key.empty()) continue;
      out << "  " << section_ << "." << e.key << "  " << e.type;
      const auto& v = values.at(e.key);
      if (v != nlohmann::json("")) out << " (default " << v.dump() << ")";
      out << "\n      " << e.help << "\n";
    }
    return out.str();
  }

 private:
  struct Entry {
    std::string key, type, help;
    std::function<void(JsonObjectReader&, S&)> read;
    std::function<void(const S&, const Fail&)> check;
    std::function<void(const S&, nlohmann::json&)> write;
    Rule rule;
  };

  std::string section_;
  std::vector<Entry> entries_;
};

}  // namespace aiayn
