#include "src/data/batching.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <sstream>

#include "models/config.h"
#include "src/common/error.h"

namespace aiayn {

std::string FilterReport::describe() const {
  std::ostringstream s;
  s << "kept " << kept << " of " << total << " pairs";
  std::vector<std::string> why;
  if (empty) why.push_back(std::to_string(empty) + " with an empty side");
  if (invalid_utf8) why.push_back(std::to_string(invalid_utf8) + " with invalid UTF-8");
  if (too_long) why.push_back(std::to_string(too_long) + " too long");
  if (ratio) why.push_back(std::to_string(ratio) + " over the length ratio");
  if (!why.empty()) {
    s << " (dropped";
    for (size_t i = 0; i < why.size(); ++i) s << (i ? ", " : " ") << why[i];
    s << ")";
  }
  return s.str();
}

std::vector<int64_t> filter_pairs(const TokenCache& cache, const FilterOptions& o, FilterReport* report,
                                  const std::string& corpus_name) {
  FilterReport r;
  r.total = cache.size();
  r.invalid_utf8 = cache.invalid_utf8_lines();
  std::vector<int64_t> kept;
  kept.reserve(static_cast<size_t>(cache.size()));
  for (int64_t i = 0; i < cache.size(); ++i) {
    const int64_t s = cache.src_length(i), t = cache.tgt_length(i);
    if (s == 0 || t == 0) {
      ++r.empty;  // also counts the pairs skipped for invalid UTF-8, subtracted below
      continue;
    }
    if (s > o.max_length || t > o.max_length) {
      ++r.too_long;
      continue;
    }
    if (o.max_ratio > 0 && static_cast<double>(std::max(s, t)) > o.max_ratio * std::min(s, t)) {
      ++r.ratio;
      continue;
    }
    kept.push_back(i);
  }
  r.empty -= r.invalid_utf8;
  r.kept = static_cast<int64_t>(kept.size());
  if (report != nullptr) *report = r;
  if (kept.empty()) {
    throw InputError(corpus_name + ": no pair left after filtering: " + r.describe() +
                     "; check the files or raise max_length");
  }
  return kept;
}

namespace {

// Lays out a batch whose row i has src_length(i) source and tgt_length(i)
// target ids, written by copy_src(i, out) and copy_tgt(i, out).
template <typename SrcLength, typename TgtLength, typename CopySrc, typename CopyTgt>
Batch assemble_batch(const std::vector<int64_t>& pairs, SrcLength src_length, TgtLength tgt_length,
                     CopySrc copy_src, CopyTgt copy_tgt) {
  const int64_t b = static_cast<int64_t>(pairs.size());
  int64_t s_max = 0, t_max = 0;
  for (int64_t row = 0; row < b; ++row) {
    s_max = std::max(s_max, src_length(row) + 1);  // + eos
    t_max = std::max(t_max, tgt_length(row) + 1);  // + bos (in) / eos (out)
  }
  Batch batch;
  batch.pairs = pairs;
  batch.src = torch::full({b, s_max}, kPadId, torch::kLong);      // [B, S]
  batch.tgt_in = torch::full({b, t_max}, kPadId, torch::kLong);   // [B, T]
  batch.tgt_out = torch::full({b, t_max}, kPadId, torch::kLong);  // [B, T]
  auto* src = batch.src.data_ptr<int64_t>();
  auto* tgt_in = batch.tgt_in.data_ptr<int64_t>();
  auto* tgt_out = batch.tgt_out.data_ptr<int64_t>();
  for (int64_t row = 0; row < b; ++row) {
    const int64_t sl = src_length(row), tl = tgt_length(row);
    copy_src(row, src + row * s_max);
    src[row * s_max + sl] = kEosId;
    tgt_in[row * t_max] = kBosId;
    copy_tgt(row, tgt_in + row * t_max + 1);  // bos + y
    std::copy_n(tgt_in + row * t_max + 1, tl, tgt_out + row * t_max);
    tgt_out[row * t_max + tl] = kEosId;  // y + eos
    batch.src_tokens += sl + 1;
    batch.tgt_tokens += tl + 1;
  }
  batch.src_padding = batch.src.eq(kPadId);      // [B, S]
  batch.tgt_padding = batch.tgt_out.eq(kPadId);  // [B, T]
  return batch;
}

}  // namespace

Batch make_batch(const TokenCache& cache, const std::vector<int64_t>& pairs) {
  return assemble_batch(
      pairs, [&](int64_t row) { return cache.src_length(pairs[row]); },
      [&](int64_t row) { return cache.tgt_length(pairs[row]); },
      [&](int64_t row, int64_t* out) { cache.copy_src(pairs[row], out); },
      [&](int64_t row, int64_t* out) { cache.copy_tgt(pairs[row], out); });
}

Batch make_batch(const TokenCache& cache, const std::vector<int64_t>& pairs, const Resampling& r) {
  if (r.source == nullptr || r.target == nullptr || r.p <= 0) return make_batch(cache, pairs);
  std::vector<std::vector<int64_t>> drawn[2];  // [side][row]
  std::vector<int64_t> sample;
  for (int side = 0; side < 2; ++side) {
    drawn[side].resize(pairs.size());
    for (size_t row = 0; row < pairs.size(); ++row) {
      const int64_t p = pairs[row];
      auto cached = side == 0 ? cache.src_ids(p) : cache.tgt_ids(p);
      (side == 0 ? r.source : r.target)
          ->resample(cached.data(), static_cast<int64_t>(cached.size()), r.p,
                     BpeDropout::seed_for(r.seed, r.epoch, p, side), &sample);
      drawn[side][row] = static_cast<int64_t>(sample.size()) <= r.max_length ? sample : cached;
    }
  }
  auto length = [&](int side) {
    return [&, side](int64_t row) { return static_cast<int64_t>(drawn[side][row].size()); };
  };
  auto copy = [&](int side) {
    return [&, side](int64_t row, int64_t* out) {
      std::copy(drawn[side][row].begin(), drawn[side][row].end(), out);
    };
  };
  return assemble_batch(pairs, length(0), length(1), copy(0), copy(1));
}

BatchPlanner::BatchPlanner(const TokenCache& cache, std::vector<int64_t> pairs, BatchingOptions options)
    : cache_(cache), pairs_(std::move(pairs)), options_(options) {
  if (options_.max_tokens <= 0) throw InputError("max_tokens must be positive");
}

std::vector<std::vector<int64_t>> BatchPlanner::epoch(int64_t epoch) const {
  std::mt19937_64 rng(options_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch));
  // Shuffle, then sort by length (stable): pairs of equal length end up in a
  // different order every epoch, so batches differ between epochs.
  std::vector<int64_t> order = pairs_;
  std::shuffle(order.begin(), order.end(), rng);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    auto ka = std::max(cache_.src_length(a), cache_.tgt_length(a));
    auto kb = std::max(cache_.src_length(b), cache_.tgt_length(b));
    if (ka != kb) return ka < kb;
    return cache_.src_length(a) < cache_.src_length(b);
  });
  std::vector<std::vector<int64_t>> batches;
  std::vector<int64_t> current;
  int64_t longest = 0;
  for (int64_t p : order) {
    // Padded shape of each side: rows x (longest + 1 for eos/bos).
    int64_t len = std::max(cache_.src_length(p), cache_.tgt_length(p)) + 1;
    int64_t grown = std::max(longest, len);
    if (!current.empty() && grown * static_cast<int64_t>(current.size() + 1) > options_.max_tokens) {
      batches.push_back(std::move(current));
      current.clear();
      grown = len;
    }
    current.push_back(p);
    longest = grown;
  }
  if (!current.empty()) batches.push_back(std::move(current));
  std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

BatchStream::BatchStream(const BatchPlanner& planner, BatchPosition start)
    : planner_(planner), position_(start) {}

std::vector<int64_t> BatchStream::next() {
  for (;;) {
    if (current_epoch_ != position_.epoch) {
      current_ = planner_.epoch(position_.epoch);
      current_epoch_ = position_.epoch;
    }
    if (position_.index < static_cast<int64_t>(current_.size())) break;
    ++position_.epoch;
    position_.index = 0;
  }
  auto batch = current_[static_cast<size_t>(position_.index++)];
  // Past an epoch's last batch the position is the next epoch's start, so
  // "epoch >= max_epochs" is exact and a checkpoint there resumes cleanly.
  if (position_.index == static_cast<int64_t>(current_.size())) {
    ++position_.epoch;
    position_.index = 0;
  }
  return batch;
}

}  // namespace aiayn
