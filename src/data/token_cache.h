// A parallel corpus encoded once into a compact binary cache and read back
// through mmap, so corpora of WMT size never need their text in memory.
//
// File layout (little-endian):
//   header (64 bytes): magic "AIAYNTC\0", version, id width (2|4), length
//     width (1|2|4), pairs, source tokens, target tokens, key, invalid-UTF-8
//     lines, checksum of everything after the header
//   ids: for each pair, its source ids then its target ids (no bos/eos)
//   source lengths [pairs], target lengths [pairs]
// A pair that was skipped for invalid UTF-8 keeps its place with length 0.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "src/data/tokenizer.h"

namespace aiayn {

struct CorpusSpec {
  std::string src_path, tgt_path;
  std::string cache_dir;           // where caches live
  bool skip_invalid_utf8 = false;  // else invalid UTF-8 is an error naming file:line
  int threads = 0;                 // encoding threads; 0 = all cores
};

class TokenCache {
 public:
  // Opens the cache for these files and tokenizers, building it when it is
  // missing, stale (inputs or tokenizers changed) or damaged (bad header or
  // checksum). `log` receives one line per notable event.
  static TokenCache open_or_build(const CorpusSpec& spec, const Tokenizer& src_tokenizer,
                                  const Tokenizer& tgt_tokenizer,
                                  const std::function<void(const std::string&)>& log = {});
  // Opens an existing cache file; throws InputError when it is damaged.
  static TokenCache open(const std::string& path);

  TokenCache(TokenCache&&) noexcept;
  TokenCache& operator=(TokenCache&&) noexcept;
  ~TokenCache();

  int64_t size() const { return pairs_; }
  int64_t src_length(int64_t pair) const { return src_len_[pair]; }
  int64_t tgt_length(int64_t pair) const { return tgt_len_[pair]; }
  // Copies a sentence's ids into out (length() values).
  void copy_src(int64_t pair, int64_t* out) const;
  void copy_tgt(int64_t pair, int64_t* out) const;
  std::vector<int64_t> src_ids(int64_t pair) const;
  std::vector<int64_t> tgt_ids(int64_t pair) const;
  int64_t src_tokens() const { return src_tokens_; }
  int64_t tgt_tokens() const { return tgt_tokens_; }
  int64_t invalid_utf8_lines() const { return invalid_lines_; }
  int64_t file_bytes() const { return static_cast<int64_t>(size_); }
  const std::string& path() const { return path_; }

 private:
  TokenCache() = default;
  void copy_ids(uint64_t offset, int64_t n, int64_t* out) const;

  std::string path_;
  const unsigned char* data_ = nullptr;  // the mmapped file
  size_t size_ = 0;
  int id_width_ = 2;
  int64_t pairs_ = 0, src_tokens_ = 0, tgt_tokens_ = 0, invalid_lines_ = 0;
  uint64_t key_ = 0;
  std::vector<uint32_t> src_len_, tgt_len_;
  std::vector<uint64_t> offset_;  // first id of each pair, in ids
};

// The cache file a spec and tokenizers map to (its name carries their key).
std::string token_cache_path(const CorpusSpec& spec, const Tokenizer& src_tokenizer,
                             const Tokenizer& tgt_tokenizer);

}  // namespace aiayn
