#include "src/decode/translator.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "models/config.h"
#include "src/common/text_reader.h"

namespace aiayn {

Translator::Translator(Transformer model, Tokenizer tokenizer, torch::Device device)
    : Translator(std::move(model), TokenizerPair{tokenizer, tokenizer}, device) {}

Translator::Translator(Transformer model, TokenizerPair tokenizers, torch::Device device)
    : model_(std::move(model)), tokenizers_(std::move(tokenizers)), device_(device) {
  model_->eval();
}

std::vector<Translation> Translator::translate(const std::vector<std::string>& lines,
                                               const TranslateOptions& options,
                                               int64_t first_line,
                                               const std::function<void(const std::string&)>& warn) {
  const int64_t n = static_cast<int64_t>(lines.size());
  const int64_t longest = model_->config().max_positions - 1;  // eos takes one position
  std::vector<std::vector<int64_t>> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    ids[i] = encode_for_model(tokenizers_.source, lines[i], longest,
                              "line " + std::to_string(first_line + i), "output left empty", warn);
  }
  // Longest first, so the slowest batches start early and padding stays low.
  std::vector<int64_t> order;
  for (int64_t i = 0; i < n; ++i) {
    if (!ids[i].empty()) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });
  // Batches as [begin, end) ranges of `order`.
  std::vector<std::pair<size_t, size_t>> batches;
  for (size_t at = 0; at < order.size();) {
    const int64_t width = static_cast<int64_t>(ids[order[at]].size()) + 1;
    size_t end = at;
    while (end < order.size() && static_cast<int64_t>(end - at) < options.batch_sentences &&
           static_cast<int64_t>(end - at + 1) * width <= std::max(options.batch_tokens, width)) {
      ++end;
    }
    batches.emplace_back(at, end);
    at = end;
  }
  std::vector<Translation> out(static_cast<size_t>(n));
  auto run_batch = [&](size_t b) {
    const auto [at, end] = batches[b];
    std::vector<const std::vector<int64_t>*> rows;
    for (size_t r = at; r < end; ++r) rows.push_back(&ids[order[r]]);
    auto src = source_batch(rows);  // [B, S]
    auto results = search(*model_, src.to(device_), options.search);
    for (size_t r = at; r < end; ++r) out[order[r]].hypotheses = std::move(results[r - at]);
  };
  const size_t workers = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(1, options.workers)),
                                          batches.size());
  if (workers <= 1) {
    for (size_t b = 0; b < batches.size(); ++b) run_batch(b);
  } else {
    // Longest batches first (the order above), taken by whichever worker is free.
    std::atomic<size_t> next{0};
    std::exception_ptr failure;
    std::mutex failure_mutex;
    std::vector<std::thread> pool;
    for (size_t w = 0; w < workers; ++w) {
      pool.emplace_back([&] {
        try {
          torch::set_num_threads(1);  // OpenMP's thread count is per thread
          for (size_t b; (b = next.fetch_add(1)) < batches.size();) run_batch(b);
        } catch (...) {
          std::lock_guard<std::mutex> lock(failure_mutex);
          if (!failure) failure = std::current_exception();
          next = batches.size();
        }
      });
    }
    for (auto& t : pool) t.join();
    if (failure) std::rethrow_exception(failure);
  }
  // Detokenized here, on one thread: the tokenizer is not shared across threads.
  for (auto& t : out) {
    for (const auto& h : t.hypotheses) {
      t.texts.push_back(tokenizers_.target.decode(std::vector<int32_t>(h.tokens.begin(), h.tokens.end())));
    }
  }
  return out;
}

}  // namespace aiayn
