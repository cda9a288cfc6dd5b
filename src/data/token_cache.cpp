#include "src/data/token_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <thread>

#include "src/common/error.h"
#include "src/common/hash.h"
#include "src/common/text_reader.h"

namespace aiayn {

namespace {

constexpr char kMagic[8] = {'A', 'I', 'A', 'Y', 'N', 'T', 'C', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kBlock = size_t{1} << 20;  // checksum block
constexpr int64_t kChunkPairs = 16384;      // pairs read and encoded together

struct Header {
  char magic[8];
  uint32_t version, id_width, len_width, reserved;
  uint64_t pairs, src_tokens, tgt_tokens, key, invalid_lines, checksum;
};
static_assert(sizeof(Header) == 72, "cache header layout");

// Hash of a region chained over fixed 1 MiB blocks, so that the writer can
// compute it while streaming and the reader over the mmapped file.
uint64_t block_checksum(const unsigned char* p, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (size_t at = 0; at < n; at += kBlock) h = hash_bytes(p + at, std::min(kBlock, n - at), h);
  return h;
}

// Buffered writer that checksums exactly as block_checksum reads.
class BlockWriter {
 public:
  BlockWriter(std::FILE* f, std::string path) : f_(f), path_(std::move(path)) { buf_.reserve(kBlock); }
  void write(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    while (n > 0) {
      size_t take = std::min(n, kBlock - buf_.size());
      buf_.insert(buf_.end(), p, p + take);
      p += take;
      n -= take;
      if (buf_.size() == kBlock) flush();
    }
  }
  uint64_t finish() {
    if (!buf_.empty()) flush();
    return hash_;
  }

 private:
  void flush() {
    hash_ = hash_bytes(buf_.data(), buf_.size(), hash_);
    if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) {
      throw InputError(path_ + ": cannot write: " + std::strerror(errno));
    }
    buf_.clear();
  }
  std::FILE* f_;
  std::string path_;
  std::vector<unsigned char> buf_;
  uint64_t hash_ = 0x9e3779b97f4a7c15ULL;
};

template <typename T>
void write_as(BlockWriter& w, const std::vector<int32_t>& ids) {
  T tmp[256];
  size_t at = 0;
  while (at < ids.size()) {
    size_t n = std::min<size_t>(256, ids.size() - at);
    for (size_t i = 0; i < n; ++i) tmp[i] = static_cast<T>(ids[at + i]);
    w.write(tmp, n * sizeof(T));
    at += n;
  }
}

void write_ids(BlockWriter& w, const std::vector<int32_t>& ids, int width) {
  if (width == 2)
    write_as<uint16_t>(w, ids);
  else
    write_as<uint32_t>(w, ids);
}

void write_lengths(BlockWriter& w, const std::vector<uint32_t>& lengths, int width) {
  std::vector<int32_t> as_int(lengths.begin(), lengths.end());
  if (width == 1) {
    std::vector<uint8_t> bytes(lengths.begin(), lengths.end());
    w.write(bytes.data(), bytes.size());
  } else {
    write_ids(w, as_int, width);
  }
}

int length_width(uint32_t longest) { return longest <= 0xFF ? 1 : longest <= 0xFFFF ? 2 : 4; }

uint64_t cache_key(const CorpusSpec& spec, const Tokenizer& s, const Tokenizer& t) {
  uint64_t parts[] = {kVersion, hash_file(spec.src_path),        hash_file(spec.tgt_path), s.hash(),
                      t.hash(), spec.skip_invalid_utf8 ? 1u : 0u};
  return hash_bytes(parts, sizeof parts);
}

std::string cache_prefix(const CorpusSpec& spec) {
  return std::filesystem::path(spec.src_path).filename().string() + "__" +
         std::filesystem::path(spec.tgt_path).filename().string() + ".";
}

// One side of a chunk: the lines read and their encodings.
struct Chunk {
  std::vector<std::string> src, tgt;
  std::vector<char> invalid;
  std::vector<std::vector<int32_t>> src_ids, tgt_ids;
};

// Reads up to kChunkPairs pairs; checks line counts and UTF-8 as it goes.
bool read_chunk(LineReader& src, LineReader& tgt, const CorpusSpec& spec, Chunk& c, int64_t* invalid_lines,
                const std::function<void(const std::string&)>& log) {
  c.src.clear();
  c.tgt.clear();
  c.invalid.clear();
  std::string s, t;
  while (static_cast<int64_t>(c.src.size()) < kChunkPairs) {
    bool has_s = src.next(&s), has_t = tgt.next(&t);
    if (has_s != has_t) {
      int64_t src_lines = src.line_number() + src.count_rest();
      int64_t tgt_lines = tgt.line_number() + tgt.count_rest();
      throw InputError("parallel files differ in length: " + spec.src_path + " has " +
                       std::to_string(src_lines) + " lines, " + spec.tgt_path + " has " +
                       std::to_string(tgt_lines));
    }
    if (!has_s) break;
    bool ok = true;
    for (auto* side : {&src, &tgt}) {
      if (valid_utf8(side == &src ? s : t)) continue;
      std::string where = side->path() + ":" + std::to_string(side->line_number());
      if (!spec.skip_invalid_utf8) {
        throw InputError(where +
                         ": invalid UTF-8 (fix the file, or skip such pairs with "
                         "--skip-invalid-utf8)");
      }
      if (ok && log && *invalid_lines < 5) log("skipping pair with invalid UTF-8 at " + where);
      ok = false;
    }
    *invalid_lines += ok ? 0 : 1;
    c.src.push_back(ok ? s : std::string());
    c.tgt.push_back(ok ? t : std::string());
    c.invalid.push_back(ok ? 0 : 1);
  }
  return !c.src.empty();
}

// Encodes a chunk with `threads` threads, each a contiguous range of pairs.
void encode_chunk(Chunk& c, const Tokenizer& s, const Tokenizer& t, int threads) {
  const size_t n = c.src.size();
  c.src_ids.assign(n, {});
  c.tgt_ids.assign(n, {});
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  auto work = [&](size_t begin, size_t end, size_t slot) {
    try {
      for (size_t i = begin; i < end; ++i) {
        c.src_ids[i] = s.encode(c.src[i]);
        c.tgt_ids[i] = t.encode(c.tgt[i]);
      }
    } catch (...) {
      errors[slot] = std::current_exception();  // rethrown on the caller's thread
    }
  };
  std::vector<std::thread> pool;
  const size_t per = (n + threads - 1) / threads;
  for (int k = 1; k < threads; ++k) {
    size_t begin = std::min(n, k * per), end = std::min(n, (k + 1) * per);
    if (begin < end) pool.emplace_back(work, begin, end, static_cast<size_t>(k));
  }
  work(0, std::min(n, per), 0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

void build_cache(const CorpusSpec& spec, const Tokenizer& s, const Tokenizer& t, const std::string& path,
                 uint64_t key, const std::function<void(const std::string&)>& log) {
  const int threads = spec.threads > 0 ? spec.threads : static_cast<int>(std::thread::hardware_concurrency());
  const int id_width = std::max(s.vocab_size(), t.vocab_size()) <= 0x10000 ? 2 : 4;
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw InputError(tmp + ": cannot create cache: " + std::strerror(errno));
  try {
    Header h{};
    std::fwrite(&h, sizeof h, 1, f);  // placeholder until the counts are known
    BlockWriter w(f, tmp);
    LineReader src(spec.src_path), tgt(spec.tgt_path);
    std::vector<uint32_t> src_len, tgt_len;
    int64_t invalid = 0;
    uint64_t src_tokens = 0, tgt_tokens = 0;
    Chunk chunk;
    while (read_chunk(src, tgt, spec, chunk, &invalid, log)) {
      encode_chunk(chunk, s, t, threads);
      for (size_t i = 0; i < chunk.src.size(); ++i) {
        write_ids(w, chunk.src_ids[i], id_width);
        write_ids(w, chunk.tgt_ids[i], id_width);
        src_len.push_back(static_cast<uint32_t>(chunk.src_ids[i].size()));
        tgt_len.push_back(static_cast<uint32_t>(chunk.tgt_ids[i].size()));
        src_tokens += chunk.src_ids[i].size();
        tgt_tokens += chunk.tgt_ids[i].size();
      }
    }
    uint32_t longest = 0;
    for (const auto* v : {&src_len, &tgt_len})
      for (uint32_t l : *v) longest = std::max(longest, l);
    const int len_width = length_width(longest);
    write_lengths(w, src_len, len_width);
    write_lengths(w, tgt_len, len_width);
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.id_width = static_cast<uint32_t>(id_width);
    h.len_width = static_cast<uint32_t>(len_width);
    h.pairs = src_len.size();
    h.src_tokens = src_tokens;
    h.tgt_tokens = tgt_tokens;
    h.key = key;
    h.invalid_lines = static_cast<uint64_t>(invalid);
    h.checksum = w.finish();
    // Written under a temporary name, synced, then renamed: a crash never
    // leaves a half-written file under the real name.
    if (std::fseek(f, 0, SEEK_SET) != 0 || std::fwrite(&h, sizeof h, 1, f) != 1 || std::fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
      throw InputError(tmp + ": cannot write: " + std::strerror(errno));
    }
    std::fclose(f);
    f = nullptr;
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      throw InputError(path + ": cannot rename cache into place: " + std::strerror(errno));
    }
  } catch (...) {
    if (f != nullptr) std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
}

}  // namespace

std::string token_cache_path(const CorpusSpec& spec, const Tokenizer& s, const Tokenizer& t) {
  return (std::filesystem::path(spec.cache_dir) /
          (cache_prefix(spec) + hex64(cache_key(spec, s, t)) + ".tokcache"))
      .string();
}

TokenCache TokenCache::open_or_build(const CorpusSpec& spec, const Tokenizer& s, const Tokenizer& t,
                                     const std::function<void(const std::string&)>& log) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(spec.cache_dir, ec);
  if (!fs::is_directory(spec.cache_dir)) {
    throw InputError(spec.cache_dir + ": cannot create cache directory: " + ec.message());
  }
  const uint64_t key = cache_key(spec, s, t);
  const std::string path = token_cache_path(spec, s, t);
  // Temporaries of builds that were killed are garbage.
  for (const auto& entry : fs::directory_iterator(spec.cache_dir, ec)) {
    if (entry.path().filename().string().find(".tokcache.tmp.") != std::string::npos) {
      fs::remove(entry.path(), ec);
    }
  }
  if (fs::exists(path)) {
    try {
      TokenCache cache = open(path);
      if (cache.key_ == key) return cache;
      if (log) log(path + ": cache key differs; rebuilding");
    } catch (const InputError& e) {
      if (log) log(std::string(e.what()) + "; rebuilding");
    }
  }
  if (log) log("encoding " + spec.src_path + " and " + spec.tgt_path + " into " + path);
  build_cache(spec, s, t, path, key, log);
  // Caches of earlier versions of these files are stale now.
  for (const auto& entry : fs::directory_iterator(spec.cache_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(cache_prefix(spec), 0) == 0 && entry.path() != fs::path(path) && name.size() > 9 &&
        name.substr(name.size() - 9) == ".tokcache") {
      fs::remove(entry.path(), ec);
    }
  }
  return open(path);
}

TokenCache TokenCache::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw InputError(path + ": cannot open cache: " + std::strerror(errno));
  struct stat st {};
  fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < sizeof(Header)) {
    ::close(fd);
    throw InputError(path + ": truncated token cache (" + std::to_string(size) + " bytes)");
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw InputError(path + ": cannot mmap cache: " + std::strerror(errno));
  TokenCache c;
  c.path_ = path;
  c.data_ = static_cast<const unsigned char*>(map);
  c.size_ = size;
  Header h;
  std::memcpy(&h, c.data_, sizeof h);
  auto damaged = [&](const std::string& why) { return InputError(path + ": damaged token cache: " + why); };
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) throw damaged("not a token cache");
  if (h.version != kVersion) throw damaged("version " + std::to_string(h.version));
  if ((h.id_width != 2 && h.id_width != 4) || (h.len_width != 1 && h.len_width != 2 && h.len_width != 4)) {
    throw damaged("bad widths");
  }
  const uint64_t expected =
      sizeof(Header) + (h.src_tokens + h.tgt_tokens) * h.id_width + 2 * h.pairs * h.len_width;
  if (expected != size) {
    throw damaged("size " + std::to_string(size) + " bytes, header says " + std::to_string(expected));
  }
  if (block_checksum(c.data_ + sizeof h, size - sizeof h) != h.checksum) {
    throw damaged("checksum mismatch");
  }
  c.id_width_ = static_cast<int>(h.id_width);
  c.pairs_ = static_cast<int64_t>(h.pairs);
  c.src_tokens_ = static_cast<int64_t>(h.src_tokens);
  c.tgt_tokens_ = static_cast<int64_t>(h.tgt_tokens);
  c.invalid_lines_ = static_cast<int64_t>(h.invalid_lines);
  c.key_ = h.key;
  const unsigned char* lengths = c.data_ + sizeof h + (h.src_tokens + h.tgt_tokens) * h.id_width;
  auto read_lengths = [&](const unsigned char* p, std::vector<uint32_t>& out) {
    out.resize(h.pairs);
    for (uint64_t i = 0; i < h.pairs; ++i) {
      if (h.len_width == 1)
        out[i] = p[i];
      else if (h.len_width == 2) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        out[i] = v;
      } else
        std::memcpy(&out[i], p + 4 * i, 4);
    }
  };
  read_lengths(lengths, c.src_len_);
  read_lengths(lengths + h.pairs * h.len_width, c.tgt_len_);
  c.offset_.resize(h.pairs + 1);
  uint64_t at = 0, src_sum = 0;
  for (uint64_t i = 0; i < h.pairs; ++i) {
    c.offset_[i] = at;
    at += c.src_len_[i] + c.tgt_len_[i];
    src_sum += c.src_len_[i];
  }
  c.offset_[h.pairs] = at;
  if (at != h.src_tokens + h.tgt_tokens || src_sum != h.src_tokens) throw damaged("lengths do not add up");
  return c;
}

TokenCache::TokenCache(TokenCache&& o) noexcept { *this = std::move(o); }

TokenCache& TokenCache::operator=(TokenCache&& o) noexcept {
  if (this != &o) {
    if (data_ != nullptr) munmap(const_cast<unsigned char*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    id_width_ = o.id_width_;
    pairs_ = o.pairs_;
    src_tokens_ = o.src_tokens_;
    tgt_tokens_ = o.tgt_tokens_;
    invalid_lines_ = o.invalid_lines_;
    key_ = o.key_;
    src_len_ = std::move(o.src_len_);
    tgt_len_ = std::move(o.tgt_len_);
    offset_ = std::move(o.offset_);
  }
  return *this;
}

TokenCache::~TokenCache() {
  if (data_ != nullptr) munmap(const_cast<unsigned char*>(data_), size_);
}

void TokenCache::copy_ids(uint64_t offset, int64_t n, int64_t* out) const {
  const unsigned char* p = data_ + sizeof(Header) + offset * id_width_;
  for (int64_t i = 0; i < n; ++i) {
    if (id_width_ == 2) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      out[i] = v;
    } else {
      uint32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      out[i] = v;
    }
  }
}

void TokenCache::copy_src(int64_t pair, int64_t* out) const { copy_ids(offset_[pair], src_len_[pair], out); }

void TokenCache::copy_tgt(int64_t pair, int64_t* out) const {
  copy_ids(offset_[pair] + src_len_[pair], tgt_len_[pair], out);
}

std::vector<int64_t> TokenCache::src_ids(int64_t pair) const {
  std::vector<int64_t> v(src_len_[pair]);
  copy_src(pair, v.data());
  return v;
}

std::vector<int64_t> TokenCache::tgt_ids(int64_t pair) const {
  std::vector<int64_t> v(tgt_len_[pair]);
  copy_tgt(pair, v.data());
  return v;
}

}  // namespace aiayn
