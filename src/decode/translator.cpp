#include "src/decode/translator.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

#include "models/config.h"
#include "src/common/text_reader.h"
#include "src/decode/beam_rule.h"
#include "src/decode/ensemble.h"
#include "src/decode/forced_prefix.h"

namespace aiayn {

struct Translator::Plan {
  std::vector<std::vector<int64_t>> ids;           // per line; empty: skipped
  std::vector<int64_t> order;                      // non-empty lines, longest first
  std::vector<std::pair<size_t, size_t>> batches;  // [begin, end) ranges of `order`
};

Translator::Translator(Transformer model, Tokenizer tokenizer, torch::Device device)
    : Translator(std::move(model), TokenizerPair{tokenizer, tokenizer}, device) {}

Translator::Translator(Transformer model, TokenizerPair tokenizers, torch::Device device)
    : Translator(std::vector<Transformer>{std::move(model)}, std::move(tokenizers), device) {}

Translator::Translator(std::vector<Transformer> models, TokenizerPair tokenizers, torch::Device device)
    : models_(std::move(models)), tokenizers_(std::move(tokenizers)), device_(device) {
  for (auto& m : models_) m->eval();
}

namespace {

int64_t shortest_positions(const std::vector<Transformer>& models) {
  int64_t shortest = models[0]->config().max_positions;
  for (const auto& m : models) shortest = std::min(shortest, m->config().max_positions);
  return shortest;
}

}  // namespace

int64_t Translator::longest_source() const { return shortest_positions(models_) - 1; }  // eos takes one

int64_t Translator::longest_prefix(const SearchOptions& search, int64_t source_tokens) const {
  return max_output_length(search, source_tokens, shortest_positions(models_));
}

Translator::Plan Translator::plan(const std::vector<std::string>& lines, const TranslateOptions& options,
                                  int64_t first_line, const Warn& warn) const {
  Plan p;
  const auto n = static_cast<int64_t>(lines.size());
  const int64_t longest = shortest_positions(models_) - 1;  // eos takes one position
  p.ids.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    p.ids[i] = encode_for_model(tokenizers_.source, lines[i], longest,
                                "line " + std::to_string(first_line + i), "output left empty", warn);
  }
  // Longest first, so the slowest batches start early and padding stays low.
  for (int64_t i = 0; i < n; ++i) {
    if (!p.ids[i].empty()) p.order.push_back(i);
  }
  std::stable_sort(p.order.begin(), p.order.end(),
                   [&](int64_t a, int64_t b) { return p.ids[a].size() > p.ids[b].size(); });
  for (size_t at = 0; at < p.order.size();) {
    const int64_t width = static_cast<int64_t>(p.ids[p.order[at]].size()) + 1;
    size_t end = at;
    while (end < p.order.size() && static_cast<int64_t>(end - at) < options.batch_sentences &&
           static_cast<int64_t>(end - at + 1) * width <= std::max(options.batch_tokens, width)) {
      ++end;
    }
    p.batches.emplace_back(at, end);
    at = end;
  }
  return p;
}

void Translator::for_each_batch(size_t batches, int64_t workers_wanted,
                                const std::function<void(size_t)>& batch) const {
  const size_t workers = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(1, workers_wanted)), batches);
  if (workers <= 1) {
    for (size_t b = 0; b < batches; ++b) batch(b);
    return;
  }
  // Longest batches first (the plan's order), taken by whichever worker is free.
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      try {
        torch::set_num_threads(1);  // OpenMP's thread count is per thread
        for (size_t b; (b = next.fetch_add(1)) < batches;) batch(b);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = batches;
      }
    });
  }
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

std::unique_ptr<StepModel> Translator::step_model(const torch::Tensor& src, bool use_cache) const {
  if (models_.size() == 1) return std::make_unique<TransformerStepModel>(*models_[0].ptr(), src, use_cache);
  std::vector<std::unique_ptr<StepModel>> members;
  for (const auto& m : models_)
    members.push_back(std::make_unique<TransformerStepModel>(*m.ptr(), src, use_cache));
  return std::make_unique<EnsembleStepModel>(std::move(members));
}

Hypotheses Translator::decode(const torch::Tensor& src, const std::vector<int64_t>& lines, int64_t first_line,
                              const std::vector<std::vector<int64_t>>* prefixes,
                              const SearchOptions& o) const {
  const bool sampling = o.sampling.enabled;
  // Sampling decodes each line's samples as rows of their own.
  const int64_t samples = sampling ? o.nbest : 1;
  const auto rows_src = samples > 1 ? src.repeat_interleave(samples, 0) : src;  // [B * samples, S]
  const auto lengths = source_lengths(rows_src);
  auto model = step_model(rows_src, o.use_cache);
  StepModel* top = model.get();
  std::optional<ForcedPrefixStepModel> forced;
  if (prefixes != nullptr) {
    // The rows search starts with: K per line for beam search, one per sample otherwise.
    const int64_t rows_per_line = sampling ? samples : o.beam;
    std::vector<std::vector<int64_t>> row_prefixes;
    for (int64_t line : lines) {
      for (int64_t k = 0; k < rows_per_line; ++k)
        row_prefixes.push_back((*prefixes)[static_cast<size_t>(line)]);
    }
    forced.emplace(*model, std::move(row_prefixes));
    top = &*forced;
  }
  if (!sampling) return search(*top, lengths, o);
  std::vector<std::pair<int64_t, int64_t>> draws;  // (input line, sample) of each row
  for (int64_t line : lines) {
    for (int64_t j = 0; j < samples; ++j) draws.emplace_back(first_line - 1 + line, j);
  }
  auto rows = sample_search(*top, lengths, draws, o);
  Hypotheses out(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    for (int64_t j = 0; j < samples; ++j) out[i].push_back(std::move(rows[i * samples + j][0]));
    std::stable_sort(out[i].begin(), out[i].end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  }
  return out;
}

std::vector<Translation> Translator::translate(const std::vector<std::string>& lines,
                                               const TranslateOptions& options, int64_t first_line,
                                               const Warn& warn, const std::vector<std::string>* prefixes) {
  const auto p = plan(lines, options, first_line, warn);
  std::optional<std::vector<std::vector<int64_t>>> prefix_ids;
  if (prefixes != nullptr) {
    prefix_ids.emplace(lines.size());
    for (size_t i = 0; i < lines.size() && i < prefixes->size(); ++i) {
      if (p.ids[i].empty()) continue;
      // A prefix must leave the output room to end within its length limit.
      const int64_t limit = longest_prefix(options.search, static_cast<int64_t>(p.ids[i].size()));
      (*prefix_ids)[i] = encode_for_model(
          tokenizers_.target, (*prefixes)[i], limit,
          "prefix of line " + std::to_string(first_line + static_cast<int64_t>(i)), "no prefix", warn);
    }
  }
  std::vector<Translation> out(lines.size());
  for_each_batch(p.batches.size(), options.workers, [&](size_t b) {
    torch::NoGradGuard no_grad;                          // per thread
    AutocastScope autocast(options.precision, device_);  // thread-local too
    c10::OptionalDeviceGuard on_device;                  // and so is the current device
    if (!device_.is_cpu()) on_device.reset_device(device_);
    const auto [at, end] = p.batches[b];
    std::vector<const std::vector<int64_t>*> rows;
    std::vector<int64_t> batch_lines;
    for (size_t r = at; r < end; ++r) {
      rows.push_back(&p.ids[p.order[r]]);
      batch_lines.push_back(p.order[r]);
    }
    auto src = source_batch(rows).to(device_);  // [B, S]
    auto results = decode(src, batch_lines, first_line, prefix_ids ? &*prefix_ids : nullptr, options.search);
    for (size_t r = at; r < end; ++r) out[p.order[r]].hypotheses = std::move(results[r - at]);
  });
  detokenize(out);
  if (options.alignment) align(p, options.alignment_options, out);
  return out;
}

std::vector<Translation> Translator::score(const std::vector<std::string>& lines,
                                           const std::vector<std::string>& targets,
                                           const TranslateOptions& options, int64_t first_line,
                                           const Warn& warn) {
  const auto p = plan(lines, options, first_line, warn);
  const int64_t longest = shortest_positions(models_) - 1;  // bos takes one position
  std::vector<std::vector<int64_t>> target_ids(lines.size());
  for (size_t i = 0; i < lines.size() && i < targets.size(); ++i) {
    target_ids[i] = encode_for_model(tokenizers_.target, targets[i], longest,
                                     "target of line " + std::to_string(first_line + static_cast<int64_t>(i)),
                                     "scored as empty", warn);
  }
  std::vector<Translation> out(lines.size());
  for_each_batch(p.batches.size(), options.workers, [&](size_t b) {
    torch::NoGradGuard no_grad;
    AutocastScope autocast(options.precision, device_);
    c10::OptionalDeviceGuard on_device;
    if (!device_.is_cpu()) on_device.reset_device(device_);
    const auto [at, end] = p.batches[b];
    std::vector<const std::vector<int64_t>*> rows;
    std::vector<std::vector<int64_t>> batch_targets;
    for (size_t r = at; r < end; ++r) {
      rows.push_back(&p.ids[p.order[r]]);
      batch_targets.push_back(target_ids[p.order[r]]);
    }
    auto model = step_model(source_batch(rows).to(device_), options.search.use_cache);  // [B, S] inside
    const auto sums = forced_log_probs(*model, batch_targets);
    for (size_t r = at; r < end; ++r) {
      out[p.order[r]].hypotheses = {
          ended_hypothesis(batch_targets[r - at], sums[r - at], options.search.length_penalty)};
    }
  });
  detokenize(out);
  if (options.alignment) align(p, options.alignment_options, out);
  return out;
}

void Translator::align(const Plan& p, const AlignmentOptions& o, std::vector<Translation>& out) const {
  auto& model = *models_[0].ptr();  // capture_attention runs the model, which is not const
  validate_alignment_options(o, model.config());
  const int64_t layer = alignment_layer(o, model.config().decoder_layers);
  auto pieces = [](const Tokenizer& t, const std::vector<int64_t>& ids) {
    std::vector<std::string> out;
    for (int64_t id : ids) out.push_back(t.piece(static_cast<int32_t>(id)));
    return out;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    const auto source_pieces = pieces(tokenizers_.source, p.ids[i]);
    for (const auto& h : out[i].hypotheses) {
      const auto maps = capture_attention(model, p.ids[i], h.tokens);
      out[i].alignments.push_back(pharaoh(hard_alignment(
          maps.cross[static_cast<size_t>(layer)], source_pieces, pieces(tokenizers_.target, h.tokens), o)));
    }
  }
}

void Translator::detokenize(std::vector<Translation>& out) const {
  // Here, on one thread: the tokenizer is not shared across threads.
  for (auto& t : out) {
    for (const auto& h : t.hypotheses) {
      t.texts.push_back(tokenizers_.target.decode(std::vector<int32_t>(h.tokens.begin(), h.tokens.end())));
    }
  }
}

}  // namespace aiayn
