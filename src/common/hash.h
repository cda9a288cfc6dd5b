// Content hashes for cache keys, checksums and tokenizer identity.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aiayn {

// A fast 64-bit hash (FNV-1a folded over 8-byte words), continuing from `seed`.
// Not cryptographic: it detects changed inputs and corrupt files.
uint64_t hash_bytes(const void* data, size_t size, uint64_t seed = 0xcbf29ce484222325ULL);
inline uint64_t hash_string(std::string_view s, uint64_t seed = 0xcbf29ce484222325ULL) {
  return hash_bytes(s.data(), s.size(), seed);
}
// Hash of a whole file's bytes; throws InputError naming the file if unreadable.
uint64_t hash_file(const std::string& path);
// 16 lowercase hex digits.
std::string hex64(uint64_t value);

}  // namespace aiayn
