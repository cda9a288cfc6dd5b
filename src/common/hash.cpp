#include "src/common/hash.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "src/common/error.h"

namespace aiayn {

uint64_t hash_bytes(const void* data, size_t size, uint64_t h) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    h = (h ^ word) * kPrime;
    h ^= h >> 29;
  }
  for (; i < size; ++i) h = (h ^ p[i]) * kPrime;
  h ^= size;
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

uint64_t hash_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw InputError(path + ": cannot open: " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) h = hash_bytes(buf.data(), n, h);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw InputError(path + ": read error");
  return h;
}

std::string hex64(uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace aiayn
