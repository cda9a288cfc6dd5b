#include "src/search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "models/config.h"
#include "src/error.h"

namespace aiayn {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// The decoder as search sees it: next-token log-probabilities for a set of
// rows (hypotheses), rows that can be kept or reordered between steps. The
// memory is kept once per sentence; its `beam` consecutive rows share it.
class Stepper {
 public:
  Stepper(TransformerImpl& model, torch::Tensor memory, torch::Tensor padding, bool use_cache)
      : model_(model), memory_(std::move(memory)), padding_(std::move(padding)),
        use_cache_(use_cache) {}

  // history: [rows, t] tokens so far, bos first -> log-probs [rows, V] of the next one.
  torch::Tensor step(const torch::Tensor& history) {
    torch::Tensor hidden;
    if (use_cache_) {
      hidden = model_.decode(history.narrow(1, history.size(1) - 1, 1), memory_, padding_, {},
                             &state_);  // [rows, 1, d_model]
    } else {
      hidden = model_.decode(history, memory_, padding_)
                   .narrow(1, history.size(1) - 1, 1);  // [rows, 1, d_model]
    }
    auto lprobs = torch::log_softmax(model_.logits(hidden.squeeze(1)), -1);  // [rows, V]
    // Padding and bos are never produced.
    lprobs.select(1, kPadId).fill_(kNegInf);
    lprobs.select(1, kBosId).fill_(kNegInf);
    return lprobs;
  }

  // Keeps hypothesis rows `rows` (in that order) for the next step, and the
  // memory of sentences `sentences` (undefined: every sentence stays).
  void select(const torch::Tensor& rows, const torch::Tensor& sentences) {
    if (sentences.defined()) {
      memory_ = memory_.index_select(0, sentences);
      padding_ = padding_.index_select(0, sentences);
    }
    if (use_cache_) state_.select(rows, sentences);
  }

 private:
  TransformerImpl& model_;
  torch::Tensor memory_, padding_;  // [sentences, S, d_model], [sentences, S]
  bool use_cache_;
  DecoderState state_;
};

std::vector<int64_t> source_lengths(const torch::Tensor& src) {
  auto lengths = src.ne(kPadId).sum(1).sub(1).cpu();  // tokens without eos
  return std::vector<int64_t>(lengths.data_ptr<int64_t>(),
                              lengths.data_ptr<int64_t>() + lengths.numel());
}

std::vector<int64_t> row_tokens(const torch::Tensor& history_row) {
  auto h = history_row.cpu();
  return std::vector<int64_t>(h.data_ptr<int64_t>() + 1, h.data_ptr<int64_t>() + h.numel());
}

}  // namespace

void SearchOptions::validate() const {
  auto refuse = [](const std::string& option, auto value, const std::string& why) {
    std::ostringstream text;
    text << option << " " << value << ": " << why;
    throw InputError(text.str());
  };
  if (beam < 1) refuse("--beam", beam, "must be at least 1");
  if (nbest < 1) refuse("--nbest", nbest, "must be at least 1");
  if (nbest > beam) refuse("--nbest", nbest, "exceeds --beam " + std::to_string(beam));
  if (!std::isfinite(length_penalty) || length_penalty < 0) {
    refuse("--alpha", length_penalty, "must be a finite number >= 0");
  }
  if (!std::isfinite(max_len_a) || max_len_a < 0) {
    refuse("--max-len-a", max_len_a, "must be a finite number >= 0");
  }
  if (max_len_b < 0) refuse("--max-len-b", max_len_b, "must be >= 0");
}

double length_penalty(int64_t length, double alpha) {
  if (alpha == 0.0) return 1.0;
  return std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha);
}

int64_t max_output_length(const SearchOptions& o, int64_t source_length, int64_t max_positions) {
  auto limit = static_cast<int64_t>(o.max_len_a * static_cast<double>(source_length)) + o.max_len_b;
  return std::max<int64_t>(1, std::min(limit, max_positions - 1));
}

std::vector<std::vector<Hypothesis>> search(TransformerImpl& model, const torch::Tensor& src,
                                            const SearchOptions& o) {
  o.validate();
  return o.beam == 1 ? greedy_search(model, src, o) : beam_search(model, src, o);
}

std::vector<std::vector<Hypothesis>> greedy_search(TransformerImpl& model,
                                                   const torch::Tensor& src,
                                                   const SearchOptions& o) {
  torch::NoGradGuard no_grad;
  const int64_t batch = src.size(0);
  const auto device = src.device();
  const auto lengths = source_lengths(src);
  auto padding = padding_mask(src, kPadId);  // [B, S]
  Stepper stepper(model, model.encode(src, padding), padding, o.use_cache);
  std::vector<std::vector<Hypothesis>> out(static_cast<size_t>(batch), std::vector<Hypothesis>(1));
  std::vector<int64_t> active(static_cast<size_t>(batch));  // row -> sentence
  for (int64_t i = 0; i < batch; ++i) active[i] = i;
  auto history = torch::full({batch, 1}, kBosId, torch::dtype(torch::kLong).device(device));
  std::vector<double> log_prob(static_cast<size_t>(batch), 0.0);
  for (int64_t t = 1; !active.empty(); ++t) {
    auto lprobs = stepper.step(history);  // [rows, V]
    // Rows at their length limit must end now.
    for (size_t r = 0; r < active.size(); ++r) {
      if (t > max_output_length(o, lengths[active[r]], model.config().max_positions)) {
        auto eos = lprobs[r][kEosId].item<float>();
        lprobs[r].fill_(kNegInf);
        lprobs[r][kEosId] = eos;
      }
    }
    auto [best, token] = lprobs.max(1);  // [rows], [rows]
    auto best_cpu = best.to(torch::kCPU, torch::kDouble).contiguous();
    auto token_cpu = token.cpu().contiguous();
    const double* best_of = best_cpu.data_ptr<double>();
    const int64_t* token_of = token_cpu.data_ptr<int64_t>();
    std::vector<int64_t> keep, still_active;
    for (size_t r = 0; r < active.size(); ++r) {
      const int64_t s = active[r];
      log_prob[s] += best_of[r];
      if (token_of[r] == kEosId) {
        auto& h = out[s][0];
        h.tokens = row_tokens(history[r]);
        h.log_prob = log_prob[s];
        h.score = h.log_prob / length_penalty(static_cast<int64_t>(h.tokens.size()) + 1,
                                              o.length_penalty);
      } else {
        keep.push_back(static_cast<int64_t>(r));
        still_active.push_back(s);
      }
    }
    history = torch::cat({history, token.unsqueeze(1)}, 1);  // [rows, t + 1]
    if (keep.size() != active.size() && !keep.empty()) {
      auto index = torch::tensor(keep, torch::dtype(torch::kLong).device(device));
      history = history.index_select(0, index);
      stepper.select(index, index);
    }
    active = std::move(still_active);
  }
  return out;
}

std::vector<std::vector<Hypothesis>> beam_search(TransformerImpl& model, const torch::Tensor& src,
                                                 const SearchOptions& o) {
  torch::NoGradGuard no_grad;
  const int64_t batch = src.size(0), k = o.beam;
  const auto device = src.device();
  const auto lengths = source_lengths(src);
  auto padding = padding_mask(src, kPadId);                            // [B, S]
  // The K beams of a sentence share its memory: no copy per beam.
  Stepper stepper(model, model.encode(src, padding), padding, o.use_cache);  // memory [B, S, d_model]

  std::vector<int64_t> active(static_cast<size_t>(batch));  // block of K rows -> sentence
  for (int64_t i = 0; i < batch; ++i) active[i] = i;
  std::vector<std::vector<Hypothesis>> finished(static_cast<size_t>(batch));
  auto history = torch::full({batch * k, 1}, kBosId, torch::dtype(torch::kLong).device(device));
  // Only the first beam of each sentence is live at the start, so the K
  // beams do not begin as K copies of one hypothesis.
  auto scores = torch::full({batch, k}, kNegInf, torch::dtype(torch::kFloat).device(device));
  scores.select(1, 0).fill_(0.0);
  const int64_t vocab = model.config().tgt_vocab;

  for (int64_t t = 1; !active.empty(); ++t) {
    const int64_t n = static_cast<int64_t>(active.size());
    auto lprobs = stepper.step(history).view({n, k, vocab});  // [n, K, V]
    for (int64_t s = 0; s < n; ++s) {
      if (t > max_output_length(o, lengths[active[s]], model.config().max_positions)) {
        auto eos = lprobs[s].select(1, kEosId).clone();
        lprobs[s].fill_(kNegInf);
        lprobs[s].select(1, kEosId).copy_(eos);
      }
    }
    // The beam rule: the 2K best extensions of all K beams, so that K
    // non-eos continuations remain even when eos ranks high.
    auto candidates = (scores.unsqueeze(2) + lprobs).view({n, k * vocab});  // [n, K*V]
    auto [top_scores, top_index] = candidates.topk(std::min(2 * k, k * vocab), 1);  // [n, 2K]
    auto top_scores_cpu = top_scores.to(torch::kCPU, torch::kDouble);
    auto top_index_cpu = top_index.cpu();
    const auto* ts = top_scores_cpu.data_ptr<double>();
    const auto* ti = top_index_cpu.data_ptr<int64_t>();
    const int64_t width = top_index.size(1);

    std::vector<int64_t> next_rows, next_tokens, next_active, kept;  // kept: surviving sentences' slots
    std::vector<float> next_scores;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t sentence = active[s];
      auto& done = finished[sentence];
      std::vector<std::pair<int64_t, int64_t>> live;  // (row, token)
      std::vector<float> live_scores;
      for (int64_t j = 0; j < width && static_cast<int64_t>(live.size()) < k; ++j) {
        const double score = ts[s * width + j];
        if (!std::isfinite(score)) break;
        const int64_t beam = ti[s * width + j] / vocab, token = ti[s * width + j] % vocab;
        const int64_t row = s * k + beam;
        if (token == kEosId) {
          // As fairseq: eos counts only among the top K candidates.
          if (j < k) {
            Hypothesis h;
            h.tokens = row_tokens(history[row]);
            h.log_prob = score;
            h.score = score / length_penalty(static_cast<int64_t>(h.tokens.size()) + 1,
                                             o.length_penalty);
            done.push_back(std::move(h));
          }
          continue;
        }
        live.emplace_back(row, token);
        live_scores.push_back(static_cast<float>(score));
      }
      std::sort(done.begin(), done.end(),
                [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
      // Stop when no live beam can beat the nbest-th finished one: log-probs
      // only fall, so a live beam's best possible score is its current
      // log-prob over the longest length's penalty. Or, once K have finished
      // (fairseq stops there), when the best finished one also beats the
      // best live beam as it stands (at this step's length, so beam 1 stops
      // at the first eos, as greedy): a confident model ranks eos among the
      // top K at step after step with scores far below its best beam (the
      // demo's model did), and stopping at K finished returned those
      // truncated outputs.
      bool stop = live.empty();
      if (!stop && static_cast<int64_t>(done.size()) >= o.nbest) {
        const int64_t longest = max_output_length(o, lengths[sentence], model.config().max_positions);
        const double bound = live_scores[0] / length_penalty(longest + 1, o.length_penalty);
        stop = done[static_cast<size_t>(o.nbest - 1)].score >= bound ||
               (static_cast<int64_t>(done.size()) >= k &&
                done[0].score >= live_scores[0] / length_penalty(t, o.length_penalty));
      }
      // Only the best K finished can be returned (nbest <= K).
      if (static_cast<int64_t>(done.size()) > k) done.resize(static_cast<size_t>(k));
      if (stop) continue;
      while (static_cast<int64_t>(live.size()) < k) {  // tiny vocabularies only
        live.push_back(live.back());
        live_scores.push_back(kNegInf);
      }
      next_active.push_back(sentence);
      kept.push_back(s);
      for (int64_t b = 0; b < k; ++b) {
        next_rows.push_back(live[b].first);
        next_tokens.push_back(live[b].second);
        next_scores.push_back(live_scores[b]);
      }
    }
    const bool sentences_left = next_active.size() != active.size();
    active = std::move(next_active);
    if (active.empty()) break;
    auto index = torch::tensor(next_rows, torch::dtype(torch::kLong).device(device));
    auto tokens = torch::tensor(next_tokens, torch::dtype(torch::kLong).device(device));
    history = torch::cat({history.index_select(0, index), tokens.unsqueeze(1)}, 1);  // [rows, t + 1]
    scores = torch::tensor(next_scores, torch::dtype(torch::kFloat).device(device))
                 .view({static_cast<int64_t>(active.size()), k});  // [n', K]
    stepper.select(index, sentences_left ? torch::tensor(kept, torch::dtype(torch::kLong).device(device))
                                         : torch::Tensor());
  }
  for (auto& done : finished) {
    if (static_cast<int64_t>(done.size()) > o.nbest) done.resize(static_cast<size_t>(o.nbest));
  }
  return finished;
}

std::vector<double> forced_log_probs(TransformerImpl& model, const torch::Tensor& src,
                                     const std::vector<std::vector<int64_t>>& targets) {
  torch::NoGradGuard no_grad;
  const int64_t batch = src.size(0);
  int64_t longest = 0;
  for (const auto& t : targets) longest = std::max<int64_t>(longest, static_cast<int64_t>(t.size()) + 1);
  auto tgt_in = torch::full({batch, longest}, kPadId, torch::kLong);   // [B, T] bos + y
  auto tgt_out = torch::full({batch, longest}, kPadId, torch::kLong);  // [B, T] y + eos
  for (int64_t b = 0; b < batch; ++b) {
    const auto& y = targets[b];
    tgt_in[b][0] = kBosId;
    for (size_t i = 0; i < y.size(); ++i) {
      tgt_in[b][static_cast<int64_t>(i) + 1] = y[i];
      tgt_out[b][static_cast<int64_t>(i)] = y[i];
    }
    tgt_out[b][static_cast<int64_t>(y.size())] = kEosId;
  }
  tgt_in = tgt_in.to(src.device());
  tgt_out = tgt_out.to(src.device());
  auto padding = padding_mask(src, kPadId);
  auto hidden = model.decode(tgt_in, model.encode(src, padding), padding);  // [B, T, d_model]
  auto lprobs = torch::log_softmax(model.logits(hidden), -1);               // [B, T, V]
  auto picked = lprobs.gather(2, tgt_out.clamp_min(0).unsqueeze(2)).squeeze(2);  // [B, T]
  auto sums = picked.masked_fill(tgt_out.eq(kPadId), 0.0).sum(1).to(torch::kCPU, torch::kDouble);
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + batch);
}

}  // namespace aiayn
