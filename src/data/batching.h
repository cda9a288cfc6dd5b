// From a token cache to training batches: length filters, token-count
// batching as in section 5.1, and the decoder's shifted input and target.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "src/data/batch_position.h"
#include "src/data/bpe_dropout.h"
#include "src/data/token_cache.h"

namespace aiayn {

struct FilterOptions {
  int64_t max_length = 256;  // tokens per side (without eos); longer pairs are dropped
  double max_ratio = 0.0;    // drop pairs whose longer/shorter side length ratio exceeds it; 0 = off
};

struct FilterReport {
  int64_t total = 0, empty = 0, invalid_utf8 = 0, too_long = 0, ratio = 0, kept = 0;
  std::string describe() const;  // "kept 28950 of 29000 pairs (12 empty, 38 longer than 256, ...)"
};

// Indices of the pairs that pass the filters. Throws InputError naming the
// corpus when none is left.
std::vector<int64_t> filter_pairs(const TokenCache& cache, const FilterOptions& options, FilterReport* report,
                                  const std::string& corpus_name);

struct BatchingOptions {
  int64_t max_tokens = 4096;  // bound on batch size x longest side (padded shape), per side
  uint64_t seed = 1;
};

// One batch, with everything the model and the loss need, made once here.
struct Batch {
  torch::Tensor src;           // [B, S] source ids + eos, right-padded with kPadId
  torch::Tensor tgt_in;        // [B, T] bos + y, padded
  torch::Tensor tgt_out;       // [B, T] y + eos, padded
  torch::Tensor src_padding;   // [B, S] true at padding
  torch::Tensor tgt_padding;   // [B, T] true at padding
  int64_t src_tokens = 0;      // real tokens (with eos)
  int64_t tgt_tokens = 0;      // real target tokens (with eos): the loss's denominator
  std::vector<int64_t> pairs;  // corpus indices, in row order
};

Batch make_batch(const TokenCache& cache, const std::vector<int64_t>& pairs);

// Subword regularisation for training batches: every side of every pair
// re-segmented by BPE-dropout for this epoch (src/data/bpe_dropout.h). A side
// whose new segmentation outgrows max_length keeps its cached pieces. The
// batch was planned on cached lengths, so it may hold somewhat more tokens
// than max_tokens.
struct Resampling {
  const BpeDropout* source = nullptr;  // the same one twice for a joint vocabulary
  const BpeDropout* target = nullptr;
  double p = 0;
  uint64_t seed = 1;
  int64_t epoch = 0;
  int64_t max_length = 256;
};
Batch make_batch(const TokenCache& cache, const std::vector<int64_t>& pairs, const Resampling& resampling);

// Groups pairs of similar length into batches whose padded shape stays within
// max_tokens on each side, then shuffles the batch order. Deterministic for
// (seed, epoch): the same epoch always yields the same batches in the same
// order, which makes a (epoch, batch index) position enough to resume.
class BatchPlanner {
 public:
  BatchPlanner(const TokenCache& cache, std::vector<int64_t> pairs, BatchingOptions options);
  // The batches of `epoch` (0-based), each a list of corpus indices.
  std::vector<std::vector<int64_t>> epoch(int64_t epoch) const;

 private:
  const TokenCache& cache_;
  std::vector<int64_t> pairs_;
  BatchingOptions options_;
};

// A position in the stream of batches: resuming at it yields exactly the
// batches an uninterrupted run would have seen next.
class BatchStream {
 public:
  BatchStream(const BatchPlanner& planner, BatchPosition start = {});
  // The next batch's corpus indices; moves to the next epoch at the end of one.
  std::vector<int64_t> next();
  BatchPosition position() const { return position_; }
  int64_t batches_in_epoch() const { return static_cast<int64_t>(current_.size()); }

 private:
  const BatchPlanner& planner_;
  BatchPosition position_;
  std::vector<std::vector<int64_t>> current_;
  int64_t current_epoch_ = -1;
};

}  // namespace aiayn
