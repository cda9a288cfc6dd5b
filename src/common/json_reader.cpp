#include "src/common/json_reader.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "src/common/error.h"

namespace aiayn {

namespace {

const nlohmann::json& empty_object() {
  static const nlohmann::json empty = nlohmann::json::object();
  return empty;
}

// Line and column of a byte offset, for parse errors a user can find.
std::pair<size_t, size_t> line_column(const std::string& text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

// A string holding invalid UTF-8 (a --set value is taken as it comes) makes
// a plain dump() throw nlohmann's type_error: replace such bytes instead.
std::string dump(const nlohmann::json& v) {
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string describe(const nlohmann::json& v) {
  std::string s = dump(v);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return std::string(v.type_name()) + " " + s;
}

}  // namespace

std::string integer_range(int64_t min, int64_t max) {
  return max == std::numeric_limits<int64_t>::max()
             ? ">= " + std::to_string(min)
             : "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

std::string number_range(double min, double max, bool max_exclusive) {
  std::ostringstream range;
  range << "[" << min << ", " << max << (max_exclusive ? ")" : "]");
  return range.str();
}

int64_t integer_at(const nlohmann::json& object, const std::string& key, const std::string& path) {
  const auto& v = object.at(key);
  // nlohmann keeps a number past INT64_MAX as unsigned: it would wrap.
  const bool fits = v.is_number_integer() &&
                    !(v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX));
  if (!fits) throw InputError(path + ": key \"" + key + "\" must be an integer (int64), got " + v.dump());
  return v.get<int64_t>();
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open: " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    auto [line, column] = line_column(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    auto colon = what.rfind(": ");
    if (colon != std::string::npos) what = what.substr(colon + 2);
    throw InputError(path + ":" + std::to_string(line) + ":" + std::to_string(column) +
                     ": malformed JSON: " + what);
  } catch (const nlohmann::json::exception& e) {  // a number past double's range
    std::string what = e.what();
    auto bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    throw InputError(path + ": malformed JSON: " + what);
  }
}

JsonObjectReader::JsonObjectReader(const nlohmann::json& obj, std::string origin, std::string path)
    : obj_(obj), origin_(std::move(origin)), path_(std::move(path)) {
  if (!obj_.is_object()) {
    throw InputError(origin_ + ": " + (path_.empty() ? "the top level" : "key \"" + path_ + "\"") +
                     " must be a JSON object, got " + describe(obj_));
  }
}

std::string JsonObjectReader::qualified(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void JsonObjectReader::fail(const std::string& key, const std::string& message) const {
  throw InputError(origin_ + ": key \"" + qualified(key) + "\": " + message);
}

bool JsonObjectReader::has(const std::string& key) const { return obj_.contains(key); }

const nlohmann::json* JsonObjectReader::value(const std::string& key) {
  seen_.insert(key);
  auto it = obj_.find(key);
  return it == obj_.end() ? nullptr : &*it;
}

int64_t JsonObjectReader::integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) {
  const auto* v = value(key);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer()) fail(key, "must be an integer, got " + describe(*v));
  // Compared as unsigned: past int64's range no signed value can stand for
  // it (max + 1 overflowed for max = INT64_MAX; fuzz/fuzz_config.cpp).
  const bool above = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max);
  const int64_t x = above ? max : v->get<int64_t>();
  if (above || x < min || x > max)
    fail(key, "must be an integer " + integer_range(min, max) + ", got " + dump(*v));
  return x;
}

double JsonObjectReader::number(const std::string& key, double fallback, double min, double max,
                                bool max_exclusive) {
  const auto* v = value(key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) fail(key, "must be a number, got " + describe(*v));
  double x = v->get<double>();
  bool above = max_exclusive ? x >= max : x > max;
  if (!std::isfinite(x) || x < min || above) {
    fail(key, "must be a number in " + number_range(min, max, max_exclusive) + ", got " + dump(*v));
  }
  return x;
}

bool JsonObjectReader::boolean(const std::string& key, bool fallback) {
  const auto* v = value(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) fail(key, "must be true or false, got " + describe(*v));
  return v->get<bool>();
}

std::string JsonObjectReader::string(const std::string& key, const std::string& fallback) {
  const auto* v = value(key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) fail(key, "must be a string, got " + describe(*v));
  return v->get<std::string>();
}

std::string JsonObjectReader::choice(const std::string& key, const std::string& fallback,
                                     const std::vector<std::string>& allowed) {
  std::string s = string(key, fallback);
  for (const auto& a : allowed)
    if (s == a) return s;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
  fail(key, "must be one of " + list + ", got \"" + s + "\"");
}

JsonObjectReader JsonObjectReader::object(const std::string& key) {
  const auto* v = value(key);
  return JsonObjectReader(v == nullptr ? empty_object() : *v, origin_, qualified(key));
}

void JsonObjectReader::reject_unknown() const {
  for (const auto& [key, v] : obj_.items()) {
    if (seen_.count(key) == 0) fail(key, "unknown key (check its spelling)");
  }
}

}  // namespace aiayn
