// Where the tests find Multi30k (../shared/data/multi30k, or $AIAYN_MULTI30K)
// and how a case on real data skips where it is absent.
#pragma once
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace aiayn::test {

inline std::string multi30k_dir() {
  if (const char* env = std::getenv("AIAYN_MULTI30K")) return env;
  return std::string(AIAYN_SOURCE_DIR) + "/../shared/data/multi30k";
}

// A file of it; the case fails when it is missing from a present copy.
inline std::string multi30k(const std::string& file) {
  std::string path = multi30k_dir() + "/" + file;
  if (!std::filesystem::exists(path)) FAIL("Multi30k not found at " << path << " (set AIAYN_MULTI30K)");
  return path;
}

// The cases on real data skip, saying so, where Multi30k is absent (a
// machine without ../shared); a present but incomplete copy still fails.
inline bool multi30k_present() {
  if (std::filesystem::exists(multi30k_dir() + "/val.en")) return true;
  WARN("skipped: Multi30k not found at " << multi30k_dir() << " (set AIAYN_MULTI30K)");
  return false;
}

}  // namespace aiayn::test
