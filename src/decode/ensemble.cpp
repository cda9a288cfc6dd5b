#include "src/decode/ensemble.h"

#include <algorithm>

#include "src/common/error.h"

namespace aiayn {

EnsembleStepModel::EnsembleStepModel(std::vector<std::unique_ptr<StepModel>> members)
    : members_(std::move(members)) {
  if (members_.empty()) throw InputError("an ensemble needs at least one model");
  for (size_t i = 1; i < members_.size(); ++i) {
    if (members_[i]->vocab() != members_[0]->vocab()) {
      throw InputError("ensemble: model " + std::to_string(i + 1) + " has a target vocabulary of " +
                       std::to_string(members_[i]->vocab()) + " pieces, model 1 of " +
                       std::to_string(members_[0]->vocab()) + "; an ensemble needs one vocabulary");
    }
  }
}

int64_t EnsembleStepModel::vocab() const { return members_[0]->vocab(); }

int64_t EnsembleStepModel::max_positions() const {
  int64_t shortest = members_[0]->max_positions();
  for (const auto& m : members_) shortest = std::min(shortest, m->max_positions());
  return shortest;
}

torch::Device EnsembleStepModel::device() const { return members_[0]->device(); }

torch::Tensor EnsembleStepModel::step(const torch::Tensor& history) {
  if (members_.size() == 1) return members_[0]->step(history);
  auto sum = members_[0]->step(history).clone();  // [rows, V]
  for (size_t i = 1; i < members_.size(); ++i) sum.add_(members_[i]->step(history));
  return sum.div_(static_cast<double>(members_.size()));  // [rows, V]
}

void EnsembleStepModel::select(const torch::Tensor& rows, const torch::Tensor& sentences) {
  for (auto& m : members_) m->select(rows, sentences);
}

}  // namespace aiayn
