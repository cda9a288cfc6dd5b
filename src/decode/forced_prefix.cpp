#include "src/decode/forced_prefix.h"

#include <limits>

namespace aiayn {

ForcedPrefixStepModel::ForcedPrefixStepModel(StepModel& inner, std::vector<std::vector<int64_t>> prefixes)
    : inner_(inner), prefixes_(std::move(prefixes)) {}

torch::Tensor ForcedPrefixStepModel::step(const torch::Tensor& history) {
  auto lprobs = inner_.step(history);                              // [rows, V]
  const auto position = static_cast<size_t>(history.size(1) - 1);  // tokens after bos so far
  std::vector<int64_t> rows, tokens;
  for (size_t r = 0; r < prefixes_.size(); ++r) {
    if (position < prefixes_[r].size()) {
      rows.push_back(static_cast<int64_t>(r));
      tokens.push_back(prefixes_[r][position]);
    }
  }
  if (rows.empty()) return lprobs;
  const auto options = torch::dtype(torch::kLong).device(lprobs.device());
  auto row_index = torch::tensor(rows, options);                   // [n]
  auto token_index = torch::tensor(tokens, options).unsqueeze(1);  // [n, 1]
  auto forced = lprobs.index_select(0, row_index);                 // [n, V]
  auto kept = forced.gather(1, token_index);                       // [n, 1]
  forced.fill_(-std::numeric_limits<float>::infinity()).scatter_(1, token_index, kept);
  lprobs.index_copy_(0, row_index, forced);
  return lprobs;
}

void ForcedPrefixStepModel::select(const torch::Tensor& rows, const torch::Tensor& sentences) {
  auto index = rows.cpu().contiguous();  // [rows']
  std::vector<std::vector<int64_t>> kept;
  kept.reserve(static_cast<size_t>(index.numel()));
  for (int64_t i = 0; i < index.numel(); ++i)
    kept.push_back(prefixes_[static_cast<size_t>(index.data_ptr<int64_t>()[i])]);
  prefixes_ = std::move(kept);
  inner_.select(rows, sentences);
}

}  // namespace aiayn
