#include "src/translator.h"

#include <algorithm>
#include <numeric>

#include "models/config.h"
#include "src/text_reader.h"

namespace aiayn {

Translator::Translator(Transformer model, Tokenizer tokenizer, torch::Device device)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), device_(device) {
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
    const auto& line = lines[i];
    if (!valid_utf8(line)) {
      if (warn) warn("line " + std::to_string(first_line + i) + ": invalid UTF-8; output left empty");
      continue;
    }
    auto encoded = tokenizer_.encode(line);
    ids[i].assign(encoded.begin(), encoded.end());
    if (static_cast<int64_t>(ids[i].size()) > longest) {
      if (warn) {
        warn("line " + std::to_string(first_line + i) + ": " + std::to_string(ids[i].size()) +
             " tokens, truncated to the model's limit of " + std::to_string(longest));
      }
      ids[i].resize(static_cast<size_t>(longest));
    }
  }
  // Longest first, so the slowest batches start early and padding stays low.
  std::vector<int64_t> order;
  for (int64_t i = 0; i < n; ++i) {
    if (!ids[i].empty()) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });
  std::vector<Translation> out(static_cast<size_t>(n));
  size_t at = 0;
  while (at < order.size()) {
    const int64_t width = static_cast<int64_t>(ids[order[at]].size()) + 1;
    size_t end = at;
    while (end < order.size() && static_cast<int64_t>(end - at) < options.batch_sentences &&
           static_cast<int64_t>(end - at + 1) * width <= std::max(options.batch_tokens, width)) {
      ++end;
    }
    auto src = torch::full({static_cast<int64_t>(end - at), width}, kPadId, torch::kLong);  // [B, S]
    for (size_t r = at; r < end; ++r) {
      const auto& x = ids[order[r]];
      auto row = src[static_cast<int64_t>(r - at)];
      std::copy(x.begin(), x.end(), row.data_ptr<int64_t>());
      row[static_cast<int64_t>(x.size())] = kEosId;
    }
    auto results = search(*model_, src.to(device_), options.search);
    for (size_t r = at; r < end; ++r) {
      auto& t = out[order[r]];
      t.hypotheses = std::move(results[r - at]);
      for (const auto& h : t.hypotheses) {
        t.texts.push_back(tokenizer_.decode(std::vector<int32_t>(h.tokens.begin(), h.tokens.end())));
      }
    }
    at = end;
  }
  return out;
}

}  // namespace aiayn
