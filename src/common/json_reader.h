// Strict reading of JSON configuration: every key typed, range-checked and
// accounted for, every error naming the file and the key.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

namespace aiayn {

// How errors and --help describe a range: ">= 1", "in [1, 4096]"; "[0, 1)".
std::string integer_range(int64_t min, int64_t max);
std::string number_range(double min, double max, bool max_exclusive);

// Parses a JSON file; throws InputError naming the file (and line, column).
nlohmann::json read_json_file(const std::string& path);
// object[key] as an integer: InputError naming `path` and the key when it is
// anything else (nlohmann would cast a float, undefined past int64's range:
// fuzz/fuzz_meta.cpp found {"format": 1.5e300}).
int64_t integer_at(const nlohmann::json& object, const std::string& key, const std::string& path);

// Reads one JSON object. Typed getters return a fallback for absent keys and
// throw InputError for a wrong type or value; reject_unknown() then throws
// for any key no getter asked for (a typo is never silently ignored).
class JsonObjectReader {
 public:
  // origin: the file name; path: the dotted location of obj ("" at the top).
  JsonObjectReader(const nlohmann::json& obj, std::string origin, std::string path);

  bool has(const std::string& key) const;
  int64_t integer(const std::string& key, int64_t fallback, int64_t min,
                  int64_t max = std::numeric_limits<int64_t>::max());
  // A number in [min, max) when max_exclusive, else [min, max].
  double number(const std::string& key, double fallback, double min, double max, bool max_exclusive = false);
  bool boolean(const std::string& key, bool fallback);
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed);
  std::string string(const std::string& key, const std::string& fallback);
  // A nested object (empty when absent).
  JsonObjectReader object(const std::string& key);
  void reject_unknown() const;

  // "file: key \"a.b\": message" — for checks that span several keys.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

 private:
  const nlohmann::json* value(const std::string& key);
  std::string qualified(const std::string& key) const;

  const nlohmann::json& obj_;
  std::string origin_;
  std::string path_;
  std::set<std::string> seen_;
};

}  // namespace aiayn
