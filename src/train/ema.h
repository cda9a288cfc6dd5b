// Exponential moving average of the weights (Polyak averaging; Marian's
// exponential smoothing, fairseq's --ema-decay): after every update
//   ema <- d * ema + (1 - d) * weights,   d = min(decay, (1 + step) / (10 + step))
// The warm-up of d (TensorFlow's ExponentialMovingAverage with num_updates)
// keeps the first updates' random weights from dominating a short run.
// The average is what validation scores and what a checkpoint's model.pt
// holds; the raw weights travel beside it so that resume stays exact.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace aiayn {

class ExponentialMovingAverage {
 public:
  // Starts as a copy of `params` (a module's named_parameters()).
  ExponentialMovingAverage(const torch::OrderedDict<std::string, torch::Tensor>& params, double decay);
  // Folds the parameters in after update number `step` (1-based).
  void update(int64_t step);
  // The decay used after update `step`.
  double decay_at(int64_t step) const;
  double decay() const { return decay_; }

  // {name: averaged tensor}, as a checkpoint's model.pt.
  std::map<std::string, torch::Tensor> weights() const;
  // Throws InputError naming `origin` and a missing or mis-shaped entry.
  void load(const std::map<std::string, torch::Tensor>& weights, const std::string& origin);

  // Puts the averaged weights into the model's parameters for the scope's
  // lifetime and the raw ones back afterwards (validation scores the average).
  class Scope {
   public:
    explicit Scope(ExponentialMovingAverage* ema);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ExponentialMovingAverage* ema_;
    std::vector<torch::Tensor> raw_;
  };

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, average;
  };
  std::vector<Slot> slots_;
  double decay_;
};

}  // namespace aiayn
