#include "src/train/loss.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "models/vector_math.h"

namespace aiayn {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Per row i of z = logits: lse_i = log sum_j exp z_ij, and the two losses
// against it: nll_i = lse_i - z_i,t (the reference) and
// uniform_i = lse_i - mean_j z_ij (the uniform distribution).
AIAYN_VECTOR_CLONES
void forward_rows(const float* z, const int64_t* targets, int64_t V, float* lse, double* nll, double* uniform,
                  int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float* row = z + i * V;
    const float top = vec::max(row, V);
    lse[i] = top + std::log(vec::sum_exp(row, V, top));
    nll[i] = static_cast<double>(lse[i]) - row[targets[i]];
    uniform[i] = static_cast<double>(lse[i]) - static_cast<double>(vec::sum(row, V)) / V;
  }
}

// d loss / d z_ij = g (softmax_ij - epsilon / V - (1 - epsilon) [j = t_i]).
AIAYN_VECTOR_CLONES
void backward_rows(const float* z, const int64_t* targets, const float* lse, int64_t V, float g,
                   float epsilon, float* dz, int64_t begin, int64_t end) {
  const float spread = g * epsilon / static_cast<float>(V);
  for (int64_t i = begin; i < end; ++i) {
    const float* row = z + i * V;
    float* out = dz + i * V;
    const float shift = lse[i];
    for (int64_t j = 0; j < V; ++j) out[j] = g * vec::exp(row[j] - shift) - spread;
    out[targets[i]] -= g * (1.0f - epsilon);
  }
}

// Rows per parallel chunk: ~64k logits.
int64_t grain(int64_t V) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, V)); }

// One pass over the logits forward and one backward, where log_softmax,
// gather and mean with their backwards made about ten over a [N, V] tensor
// that does not fit in any cache (128 MiB for 4k tokens and 8k pieces).
struct SmoothedNllFunction : public torch::autograd::Function<SmoothedNllFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets, double epsilon) {
    const int64_t N = logits.size(0), V = logits.size(1);
    auto lse = torch::empty({N}, logits.options());                            // [N]
    auto nll = torch::empty({N}, logits.options().dtype(torch::kDouble));      // [N]
    auto uniform = torch::empty({N}, logits.options().dtype(torch::kDouble));  // [N]
    const float* z = logits.data_ptr<float>();
    const int64_t* t = targets.data_ptr<int64_t>();
    float* l = lse.data_ptr<float>();
    double *n = nll.data_ptr<double>(), *u = uniform.data_ptr<double>();
    at::parallel_for(0, N, grain(V),
                     [&](int64_t begin, int64_t end) { forward_rows(z, t, V, l, n, u, begin, end); });
    // Summed in row order on one thread: the same for any thread count.
    double nll_sum = 0, uniform_sum = 0;
    for (int64_t i = 0; i < N; ++i) nll_sum += n[i], uniform_sum += u[i];
    const double loss = (1.0 - epsilon) * nll_sum + epsilon * uniform_sum;
    ctx->save_for_backward({logits, targets, lse});
    ctx->saved_data["epsilon"] = epsilon;
    auto sums = torch::empty({2}, logits.options().dtype(torch::kDouble));  // [2]: loss, nll
    sums.data_ptr<double>()[0] = loss;
    sums.data_ptr<double>()[1] = nll_sum;
    return {sums};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &logits = saved[0], &targets = saved[1], &lse = saved[2];
    const int64_t N = logits.size(0), V = logits.size(1);
    // Only the loss (element 0) is differentiated; nll is reported detached.
    // Read through the pointer: a CPU tensor, and no op for a read-back counter to see.
    const auto g = static_cast<float>(grads[0].contiguous().data_ptr<double>()[0]);
    const float epsilon = static_cast<float>(ctx->saved_data["epsilon"].toDouble());
    auto dz = torch::empty_like(logits);  // [N, V]
    const float* z = logits.data_ptr<float>();
    const int64_t* t = targets.data_ptr<int64_t>();
    const float* l = lse.data_ptr<float>();
    float* d = dz.data_ptr<float>();
    at::parallel_for(0, N, grain(V), [&](int64_t begin, int64_t end) {
      backward_rows(z, t, l, V, g, epsilon, d, begin, end);
    });
    return {dz, torch::Tensor(), torch::Tensor()};
  }
};

// The same loss from LibTorch ops on any device and dtype, without the
// [N, V] log-softmax that the composed form keeps for its backward pass:
// the forward keeps lse [N] beside the logits it already has, the
// backward makes the gradient in one expression, and the sums are read
// on the device.
struct SmoothedNllOpsFunction : public torch::autograd::Function<SmoothedNllOpsFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets, double epsilon) {
    auto z = logits.to(torch::kFloat32);                                    // [N, V]
    auto lse = torch::logsumexp(z, -1);                                     // [N]
    auto nll = (lse - z.gather(1, targets.unsqueeze(1)).squeeze(1)).sum();  // []
    auto uniform = (lse - z.mean(-1)).sum();                                // []
    auto loss = (1.0 - epsilon) * nll + epsilon * uniform;                  // []
    ctx->save_for_backward({logits, targets, lse});
    ctx->saved_data["epsilon"] = epsilon;
    return {torch::stack({loss, nll}).to(torch::kDouble)};  // [2]: loss, nll
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &logits = saved[0], &targets = saved[1], &lse = saved[2];
    const double epsilon = ctx->saved_data["epsilon"].toDouble();
    const int64_t V = logits.size(1);
    auto g = grads[0][0].to(torch::kFloat32);  // [] on the device: no read
    // d loss / d z = g (softmax - epsilon / V - (1 - epsilon) [j = t]).
    auto dz = (logits.to(torch::kFloat32) - lse.unsqueeze(1))
                  .exp_()
                  .sub_(epsilon / static_cast<double>(V));  // [N, V]
    dz.scatter_add_(1, targets.unsqueeze(1),
                    torch::full({targets.size(0), 1}, -(1.0 - epsilon), dz.options()));
    return {dz.mul_(g).to(logits.scalar_type()), torch::Tensor(), torch::Tensor()};
  }
};

bool fusable(const torch::Tensor& logits, const torch::Tensor& targets) {
  return logits.device().is_cpu() && logits.scalar_type() == torch::kFloat32 && logits.dim() == 2 &&
         logits.is_contiguous() && targets.scalar_type() == torch::kLong;
}

}  // namespace

LossSums label_smoothed_nll(const torch::Tensor& logits, const torch::Tensor& targets, double epsilon) {
  TORCH_CHECK(logits.dim() == 2 && targets.dim() == 1 && logits.size(0) == targets.size(0),
              "label_smoothed_nll: logits ", logits.sizes(), " and targets ", targets.sizes(), " do not fit");
  if (!fusable(logits, targets)) {
    auto sums = SmoothedNllOpsFunction::apply(logits, targets, epsilon)[0];  // [2]
    return {sums[0], sums[1].detach()};
  }
  auto t = targets.contiguous();
  const int64_t* ids = t.data_ptr<int64_t>();
  const bool in_range =
      std::all_of(ids, ids + t.numel(), [V = logits.size(1)](int64_t id) { return id >= 0 && id < V; });
  TORCH_CHECK(in_range, "label_smoothed_nll: a target id is outside the vocabulary of ", logits.size(1));
  auto sums = SmoothedNllFunction::apply(logits, t, epsilon)[0];  // [2]
  return {sums[0], sums[1].detach()};
}

LossSums label_smoothed_nll_composed(const torch::Tensor& logits, const torch::Tensor& targets,
                                     double epsilon) {
  auto lprobs = torch::log_softmax(logits.to(torch::kFloat32), -1);  // [N, V]
  auto nll = -lprobs.gather(1, targets.unsqueeze(1)).squeeze(1);     // [N]
  auto nll_sum = nll.sum();
  if (epsilon == 0.0) return {nll_sum, nll_sum.detach()};
  auto uniform = -lprobs.mean(-1);  // [N]: cross-entropy against the uniform distribution
  auto loss = (1.0 - epsilon) * nll_sum + epsilon * uniform.sum();
  return {loss, nll_sum.detach()};
}

}  // namespace aiayn
