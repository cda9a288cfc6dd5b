// What the targets share: the fuzzer's bytes as a file, for readers that
// take a path, and the rule that a reader may fail on bad input only with
// InputError (any other exception escapes, and libFuzzer reports it).
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace aiayn::fuzz {

// A directory of this process's own, made once, in memory where possible.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    const char* shm = "/dev/shm";
    std::filesystem::path base =
        std::filesystem::is_directory(shm) ? shm : std::filesystem::temp_directory_path();
    auto d = base / ("aiayn-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    // Left behind only by a crash, beside the input that caused it.
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch(), ignored);
    });
    return d;
  }();
  return dir;
}

// Writes the bytes to scratch()/name and returns its path.
inline std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  const auto path = (scratch() / name).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

inline std::string text(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace aiayn::fuzz
