// The optimizer of section 5.3: Adam (beta1 0.9, beta2 0.98, eps 1e-9) with
// lrate = d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), or fairseq's
// inverse-square-root schedule. Its state is plain named tensors, so a
// checkpoint can save and restore it exactly.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "src/train/train_config.h"

namespace aiayn {

// Learning rate at `step` (1-based) for the configured schedule.
double learning_rate(const TrainConfig& config, int64_t d_model, int64_t step);

// How Adam updates a parameter. automatic: the CPU kernel here for
// contiguous float32 CPU tensors; elsewhere LibTorch 2.x's fused AdamW (one
// kernel over all parameters of a device), or on 1.13 the composed ops.
// The others force one path, for tests.
enum class AdamKernel { automatic, libtorch_fused, composed };

// Whether this LibTorch has a fused AdamW with CPU and CUDA kernels (2.4+).
bool libtorch_fused_adam_available();

class Adam {
 public:
  // Parameters by name (a module's named_parameters()). weight_decay > 0
  // makes it AdamW (Loshchilov & Hutter, 2019): every parameter shrinks by
  // lr * weight_decay before the Adam step, apart from the gradient's
  // moments, as torch.optim.AdamW does.
  Adam(const torch::OrderedDict<std::string, torch::Tensor>& params, double beta1, double beta2, double eps,
       double weight_decay = 0.0, AdamKernel kernel = AdamKernel::automatic);
  // One update with learning rate lr using the parameters' .grad().
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return steps_; }

  // exp_avg.<name> and exp_avg_sq.<name> tensors; steps go in the checkpoint's JSON.
  std::map<std::string, torch::Tensor> state() const;
  // Throws InputError naming a missing or mis-shaped entry.
  void load_state(const std::map<std::string, torch::Tensor>& state, int64_t steps,
                  const std::string& origin);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, exp_avg, exp_avg_sq;
  };
  // The parameters LibTorch's fused AdamW updates, by device, at `steps_`.
  void fused_step(const std::vector<Slot*>& slots, double lr);
  std::vector<Slot> slots_;
  double beta1_, beta2_, eps_, weight_decay_;
  AdamKernel kernel_;
  int64_t steps_ = 0;
};

// The global L2 norm of the parameters' gradients, a scalar on their device
// (computed there: nothing is read back).
torch::Tensor gradient_norm(const std::vector<torch::Tensor>& params);
// Scales the gradients so that their global norm `norm` (gradient_norm's)
// is at most max_norm; max_norm <= 0 leaves them.
void clip_gradients(const std::vector<torch::Tensor>& params, const torch::Tensor& norm, double max_norm);

}  // namespace aiayn
