#include "src/decode/search.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>

#include "models/config.h"
#include "src/common/error.h"
#include "src/decode/beam_candidates.h"
#include "src/decode/beam_rule.h"
#include "src/decode/sampling.h"

namespace aiayn {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

std::vector<int64_t> row_tokens(const torch::Tensor& history_row) {
  auto h = history_row.cpu();
  return std::vector<int64_t>(h.data_ptr<int64_t>() + 1, h.data_ptr<int64_t>() + h.numel());
}

// A row (or block of rows) at its length limit must end now: everything but
// eos becomes -inf. lprobs: [..., V], a view into the step's log-probs.
void force_eos(torch::Tensor lprobs) {
  auto eos = lprobs.select(-1, kEosId).clone();  // [...]
  lprobs.fill_(kNegInf);
  lprobs.select(-1, kEosId).copy_(eos);
}

// No output may be empty: eos is barred from the first step where the
// length limit allows a token (as fairseq's min_len 1 and CTranslate2 do).
// At alpha 0 an empty output otherwise wins on a few hard sentences, since
// log p(eos | bos) beats any long sum. lprobs: [..., V], one row or block.
void bar_empty_output(torch::Tensor lprobs) { lprobs.select(-1, kEosId).fill_(kNegInf); }

// How each live search row (active[i], a sentence) may end at step t (1
// first): at its length limit only by eos, at its first step not by eos.
std::vector<EndRule> end_rules(const SearchOptions& o, const std::vector<int64_t>& lengths,
                               const std::vector<int64_t>& active, int64_t t, int64_t max_positions) {
  std::vector<EndRule> rules(active.size(), EndRule::free);
  for (size_t i = 0; i < active.size(); ++i) {
    if (t > max_output_length(o, lengths[static_cast<size_t>(active[i])], max_positions)) {
      rules[i] = EndRule::only_eos;
    } else if (t == 1) {
      rules[i] = EndRule::no_eos;
    }
  }
  return rules;
}

torch::Tensor long_tensor(const std::vector<int64_t>& values, torch::Device device) {
  return torch::tensor(values, torch::dtype(torch::kLong).device(device));  // [n]
}

}  // namespace

torch::Tensor source_batch(const std::vector<const std::vector<int64_t>*>& rows) {
  size_t longest = 0;
  for (const auto* row : rows) longest = std::max(longest, row->size());
  const auto b = static_cast<int64_t>(rows.size()), s = static_cast<int64_t>(longest) + 1;
  auto src = torch::full({b, s}, kPadId, torch::kLong);  // [B, S]
  auto* data = src.data_ptr<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    std::copy(rows[r]->begin(), rows[r]->end(), data + r * s);
    data[r * s + static_cast<int64_t>(rows[r]->size())] = kEosId;
  }
  return src;
}

std::vector<int64_t> source_lengths(const torch::Tensor& src) {
  auto lengths = src.ne(kPadId).sum(1).sub(1).cpu();  // [B] tokens without eos
  return std::vector<int64_t>(lengths.data_ptr<int64_t>(), lengths.data_ptr<int64_t>() + lengths.numel());
}

void SearchOptions::validate() const {
  auto refuse = [](const char* key, auto value, const std::string& why) {
    std::ostringstream text;
    text << " " << value << ": " << why;
    throw OptionError(key, text.str());
  };
  if (beam < 1) refuse("beam", beam, "must be at least 1");
  if (nbest < 1) refuse("nbest", nbest, "must be at least 1");
  if (nbest > beam && !sampling.enabled) refuse("nbest", nbest, "exceeds {beam} " + std::to_string(beam));
  if (sampling.top_k < 0) refuse("sampling-topk", sampling.top_k, "must be >= 0 (0: every token)");
  if (!(sampling.top_p > 0 && sampling.top_p <= 1))
    refuse("sampling-topp", sampling.top_p, "must be in (0, 1]");
  if (!std::isfinite(sampling.temperature) || sampling.temperature < 0) {
    refuse("temperature", sampling.temperature, "must be a finite number >= 0");
  }
  if (!std::isfinite(length_penalty) || length_penalty < 0) {
    refuse("alpha", length_penalty, "must be a finite number >= 0");
  }
  if (!std::isfinite(max_len_a) || max_len_a < 0) {
    refuse("max-len-a", max_len_a, "must be a finite number >= 0");
  }
  if (max_len_b < 0) refuse("max-len-b", max_len_b, "must be >= 0");
}

double length_penalty(int64_t length, double alpha) {
  if (alpha == 0.0) return 1.0;
  return std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha);
}

int64_t max_output_length(const SearchOptions& o, int64_t source_length, int64_t max_positions) {
  auto limit = static_cast<int64_t>(o.max_len_a * static_cast<double>(source_length)) + o.max_len_b;
  return std::max<int64_t>(1, std::min(limit, max_positions - 1));
}

Hypotheses search(TransformerImpl& model, const torch::Tensor& src, const SearchOptions& o) {
  torch::NoGradGuard no_grad;
  // The K beams of a sentence share its memory: no copy per beam.
  TransformerStepModel step_model(model, src, o.use_cache);
  return search(step_model, source_lengths(src), o);
}

Hypotheses search(StepModel& model, const std::vector<int64_t>& lengths, const SearchOptions& o) {
  o.validate();
  return o.beam == 1 ? greedy_search(model, lengths, o) : beam_search(model, lengths, o);
}

namespace {

// Picks each live row's next token from the step's log-probs [rows, V] ->
// (the picked tokens' log-probs [rows], the tokens [rows]). `rows`: the
// search row (sentence) each live row stands for; t: the step, 1 first.
// None (nullptr): the likeliest token, greedy search.
using TokenPicker = std::function<std::pair<torch::Tensor, torch::Tensor>(
    const torch::Tensor& lprobs, const std::vector<int64_t>& rows, int64_t t)>;

// Greedy's pick on the CPU from the raw logits in one pass: each row's best
// allowed token and its log-probability, as beam search ranks a beam of one.
std::pair<torch::Tensor, torch::Tensor> argmax_from_logits(StepModel& model, const torch::Tensor& history,
                                                           const std::vector<EndRule>& rules) {
  auto logits = model.step_logits(history);  // [rows, V]
  const int64_t rows = logits.size(0), vocab = logits.size(1);
  const std::vector<float> zero(static_cast<size_t>(rows), 0.0f);
  const auto ranked = rank_from_logits(logits.data_ptr<float>(), zero.data(), rows, 1, vocab, rules, kEosId,
                                       {kPadId, kBosId}, 1);
  std::vector<double> best(static_cast<size_t>(rows));
  std::vector<int64_t> token(static_cast<size_t>(rows));
  for (size_t r = 0; r < ranked.size(); ++r) {
    best[r] = ranked[r].front().log_prob;
    token[r] = ranked[r].front().token;
  }
  return {torch::tensor(best, torch::kDouble), torch::tensor(token, torch::kLong)};  // [rows], [rows]
}

// One hypothesis per row, each extended by its picked token until it picks
// eos or reaches its length limit; finished rows leave the step model.
Hypotheses row_search(StepModel& model, const std::vector<int64_t>& lengths, const SearchOptions& o,
                      const TokenPicker& pick) {
  torch::NoGradGuard no_grad;
  const auto batch = static_cast<int64_t>(lengths.size());
  const auto device = model.device();
  Hypotheses out(static_cast<size_t>(batch), std::vector<Hypothesis>(1));
  std::vector<int64_t> active(static_cast<size_t>(batch));  // row -> sentence
  for (int64_t i = 0; i < batch; ++i) active[i] = i;
  auto history = torch::full({batch, 1}, kBosId, torch::dtype(torch::kLong).device(device));  // [B, 1]
  std::vector<double> log_prob(static_cast<size_t>(batch), 0.0);
  for (int64_t t = 1; !active.empty(); ++t) {
    const auto rules = end_rules(o, lengths, active, t, model.max_positions());
    torch::Tensor best, token;  // [rows], [rows]
    if (!pick && model.has_step_logits()) {
      std::tie(best, token) = argmax_from_logits(model, history, rules);
    } else {
      auto lprobs = model.step(history);  // [rows, V]
      for (size_t r = 0; r < active.size(); ++r) {
        if (rules[r] == EndRule::only_eos) force_eos(lprobs[static_cast<int64_t>(r)]);
        if (rules[r] == EndRule::no_eos) bar_empty_output(lprobs[static_cast<int64_t>(r)]);
      }
      std::tie(best, token) = pick ? pick(lprobs, active, t) : lprobs.max(1);  // [rows], [rows]
    }
    auto best_cpu = best.to(torch::kCPU, torch::kDouble).contiguous();  // [rows]
    auto token_cpu = token.cpu().contiguous();                          // [rows]
    const double* best_of = best_cpu.data_ptr<double>();
    const int64_t* token_of = token_cpu.data_ptr<int64_t>();
    std::vector<int64_t> keep, still_active;
    for (size_t r = 0; r < active.size(); ++r) {
      const int64_t s = active[r];
      log_prob[s] += best_of[r];
      if (token_of[r] == kEosId) {
        out[s][0] = ended_hypothesis(row_tokens(history[r]), log_prob[s], o.length_penalty);
      } else {
        keep.push_back(static_cast<int64_t>(r));
        still_active.push_back(s);
      }
    }
    history = torch::cat({history, token.unsqueeze(1)}, 1);  // [rows, t + 1]
    if (keep.size() != active.size() && !keep.empty()) {
      auto index = long_tensor(keep, device);    // [rows']
      history = history.index_select(0, index);  // [rows', t + 1]
      model.select(index, index);
    }
    active = std::move(still_active);
  }
  return out;
}

}  // namespace

Hypotheses greedy_search(StepModel& model, const std::vector<int64_t>& lengths, const SearchOptions& o) {
  return row_search(model, lengths, o, nullptr);  // no picker: the likeliest token
}

Hypotheses sample_search(StepModel& model, const std::vector<int64_t>& lengths,
                         const std::vector<std::pair<int64_t, int64_t>>& draws, const SearchOptions& o) {
  o.validate();
  std::vector<int64_t> scratch;
  return row_search(
      model, lengths, o, [&](const torch::Tensor& lprobs, const std::vector<int64_t>& rows, int64_t t) {
        auto cpu = lprobs.to(torch::kCPU, torch::kFloat).contiguous();  // [rows, V]
        const int64_t vocab = cpu.size(1);
        std::vector<int64_t> tokens(rows.size());
        for (size_t r = 0; r < rows.size(); ++r) {
          const auto [line, sample] = draws[static_cast<size_t>(rows[r])];
          tokens[r] = draw_token(cpu.data_ptr<float>() + static_cast<int64_t>(r) * vocab, vocab, o.sampling,
                                 sampling_uniform(o.sampling.seed, line, sample, t), &scratch);
        }
        auto token = long_tensor(tokens, lprobs.device());              // [rows]
        auto picked = lprobs.gather(1, token.unsqueeze(1)).squeeze(1);  // [rows]
        return std::make_pair(picked, token);
      });
}

namespace {

// Each live sentence's best 2K extensions, best first: the beam rule's input.
// scores: [n, K] summed log-probs of the beams; lprobs: [n, K, V].
std::vector<std::vector<Candidate>> rank_extensions(const torch::Tensor& scores,
                                                    const torch::Tensor& lprobs) {
  const int64_t n = lprobs.size(0), k = lprobs.size(1), vocab = lprobs.size(2);
  auto extensions = (scores.unsqueeze(2) + lprobs).view({n, k * vocab});          // [n, K*V]
  auto [top_scores, top_index] = extensions.topk(std::min(2 * k, k * vocab), 1);  // [n, 2K]
  auto top_scores_cpu = top_scores.to(torch::kCPU, torch::kDouble);               // [n, 2K]
  auto top_index_cpu = top_index.cpu();                                           // [n, 2K]
  const auto* ts = top_scores_cpu.data_ptr<double>();
  const auto* ti = top_index_cpu.data_ptr<int64_t>();
  const int64_t width = top_index.size(1);
  std::vector<std::vector<Candidate>> ranked(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t j = 0; j < width; ++j) {
      const int64_t index = ti[s * width + j];
      ranked[s].push_back({index / vocab, index % vocab, ts[s * width + j]});
    }
  }
  return ranked;
}

// The device-generic ranking: the step model's log-probabilities, the end
// rules applied to them, then rank_extensions. scores: [n, K].
std::vector<std::vector<Candidate>> rank_step(StepModel& model, const torch::Tensor& history,
                                              const torch::Tensor& scores, const std::vector<EndRule>& rules,
                                              int64_t vocab) {
  const int64_t n = scores.size(0), k = scores.size(1);
  auto lprobs = model.step(history).view({n, k, vocab});  // [n, K, V]
  for (int64_t s = 0; s < n; ++s) {
    if (rules[static_cast<size_t>(s)] == EndRule::only_eos) force_eos(lprobs[s]);
    if (rules[static_cast<size_t>(s)] == EndRule::no_eos) bar_empty_output(lprobs[s]);
  }
  return rank_extensions(scores, lprobs);
}

// The CPU's ranking in one pass over the raw logits (beam_candidates.h).
std::vector<std::vector<Candidate>> rank_step_logits(StepModel& model, const torch::Tensor& history,
                                                     const torch::Tensor& scores,
                                                     const std::vector<EndRule>& rules, int64_t vocab) {
  const int64_t n = scores.size(0), k = scores.size(1);
  auto logits = model.step_logits(history);  // [n * K, V]
  auto beam_scores = scores.contiguous();    // [n, K]
  return rank_from_logits(logits.data_ptr<float>(), beam_scores.data_ptr<float>(), n, k, vocab, rules, kEosId,
                          {kPadId, kBosId}, std::min(2 * k, k * vocab));
}

// The beams that go on to the next step, K per surviving sentence.
struct NextBeams {
  std::vector<int64_t> rows, tokens;  // row extended, token appended
  std::vector<float> scores;
  std::vector<int64_t> sentences;  // surviving sentences
  std::vector<int64_t> slots;      // their positions among this step's live sentences
};

}  // namespace

Hypotheses beam_search(StepModel& model, const std::vector<int64_t>& lengths, const SearchOptions& o) {
  torch::NoGradGuard no_grad;
  const auto batch = static_cast<int64_t>(lengths.size());
  const int64_t k = o.beam, vocab = model.vocab();
  const auto device = model.device();
  std::vector<int64_t> active(static_cast<size_t>(batch));  // block of K rows -> sentence
  for (int64_t i = 0; i < batch; ++i) active[i] = i;
  Hypotheses finished(static_cast<size_t>(batch));
  auto history = torch::full({batch * k, 1}, kBosId, torch::dtype(torch::kLong).device(device));  // [B*K, 1]
  // Only the first beam of each sentence is live at the start, so the K
  // beams do not begin as K copies of one hypothesis.
  auto scores = torch::full({batch, k}, kNegInf, torch::dtype(torch::kFloat).device(device));  // [B, K]
  scores.select(1, 0).fill_(0.0);

  for (int64_t t = 1; !active.empty(); ++t) {
    const auto n = static_cast<int64_t>(active.size());
    const auto rules = end_rules(o, lengths, active, t, model.max_positions());
    const auto ranked = model.has_step_logits() ? rank_step_logits(model, history, scores, rules, vocab)
                                                : rank_step(model, history, scores, rules, vocab);
    NextBeams next;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t sentence = active[s];
      auto& done = finished[sentence];
      auto beams = split_candidates(ranked[s], k, kEosId);
      for (const auto& c : beams.ended) {
        done.push_back(ended_hypothesis(row_tokens(history[s * k + c.beam]), c.log_prob, o.length_penalty));
      }
      rank_finished(done);
      const int64_t longest = max_output_length(o, lengths[sentence], model.max_positions());
      const bool stop = sentence_done(done, beams.live, t, longest, o);
      // Only the best K finished can be returned (nbest <= K).
      if (static_cast<int64_t>(done.size()) > k) done.resize(static_cast<size_t>(k));
      if (stop) continue;
      fill_beams(beams.live, k);
      next.sentences.push_back(sentence);
      next.slots.push_back(s);
      for (const auto& c : beams.live) {
        next.rows.push_back(s * k + c.beam);
        next.tokens.push_back(c.token);
        next.scores.push_back(static_cast<float>(c.log_prob));
      }
    }
    const bool sentences_left = next.sentences.size() != active.size();
    active = std::move(next.sentences);
    if (active.empty()) break;
    auto rows = long_tensor(next.rows, device);                                     // [n' * K]
    auto tokens = long_tensor(next.tokens, device);                                 // [n' * K]
    history = torch::cat({history.index_select(0, rows), tokens.unsqueeze(1)}, 1);  // [n' * K, t + 1]
    scores = torch::tensor(next.scores, torch::dtype(torch::kFloat).device(device))
                 .view({static_cast<int64_t>(active.size()), k});  // [n', K]
    model.select(rows, sentences_left ? long_tensor(next.slots, device) : torch::Tensor());
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
  auto hidden = model.decode(tgt_in, model.encode(src, padding), padding);         // [B, T, d_model]
  auto lprobs = torch::log_softmax(model.logits(hidden).to(torch::kFloat32), -1);  // [B, T, V]
  auto picked = lprobs.gather(2, tgt_out.clamp_min(0).unsqueeze(2)).squeeze(2);    // [B, T]
  auto sums = picked.masked_fill(tgt_out.eq(kPadId), 0.0).sum(1).to(torch::kCPU, torch::kDouble);
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + batch);
}

std::vector<double> forced_log_probs(StepModel& model, const std::vector<std::vector<int64_t>>& targets) {
  torch::NoGradGuard no_grad;
  const auto batch = static_cast<int64_t>(targets.size());
  size_t longest = 0;
  for (const auto& y : targets) longest = std::max(longest, y.size());
  std::vector<double> sums(targets.size(), 0.0);
  auto history =
      torch::full({batch, 1}, kBosId, torch::dtype(torch::kLong).device(model.device()));  // [B, 1]
  std::vector<int64_t> next(targets.size());
  for (size_t position = 0; position <= longest; ++position) {
    auto lprobs = model.step(history).to(torch::kCPU, torch::kDouble).contiguous();  // [B, V]
    const double* lp = lprobs.data_ptr<double>();
    for (size_t b = 0; b < targets.size(); ++b) {
      const auto& y = targets[b];
      // Each target's tokens, then its eos; a finished row is fed eos again, unscored.
      next[b] = position < y.size() ? y[position] : kEosId;
      if (position <= y.size()) sums[b] += lp[static_cast<int64_t>(b) * lprobs.size(1) + next[b]];
    }
    auto tokens = long_tensor(next, history.device());        // [B]
    history = torch::cat({history, tokens.unsqueeze(1)}, 1);  // [B, position + 2]
  }
  return sums;
}

}  // namespace aiayn
