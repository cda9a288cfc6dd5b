#include "models/attention_kernel.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

#include "models/vector_math.h"

namespace aiayn {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using vec::axpy;
using vec::dot;

// Element strides of a [B, h, rows, width] tensor whose last dimension is
// contiguous: the kernel reads and writes heads in place, so the model's
// [B, rows, h * width] activations need no copy per head layout.
struct View {
  float* data;
  int64_t b, h, row;
  explicit View(const torch::Tensor& t)
      : data(t.data_ptr<float>()), b(t.stride(0)), h(t.stride(1)), row(t.stride(2)) {}
  float* at(int64_t bi, int64_t hi, int64_t r) const { return data + bi * b + hi * h + r * row; }
};

// [B, h, rows, width] in the memory order of [B, rows, h, width], which is
// what merging the heads back (section 3.2.2's Concat) reads as a plain view.
torch::Tensor empty_heads(int64_t B, int64_t H, int64_t rows, int64_t width,
                          const torch::TensorOptions& options) {
  return torch::empty({B, rows, H, width}, options).transpose(1, 2);  // [B, h, rows, width]
}

// A mask's batch dimension runs over the queries' rows, over the keys'
// sentences (beams sharing one memory), or is broadcast.
struct MaskView {
  const bool* data = nullptr;
  int64_t b = 0, h = 0, t = 0, s = 0;
  bool per_row = true;
  MaskView(const torch::Tensor& mask, int64_t rows, int64_t H, int64_t T, int64_t S) {
    if (!mask.defined()) return;
    const int64_t batch = mask.dim() == 4 ? mask.size(0) : 1;
    per_row = batch == rows;
    auto m = mask.expand({batch, H, T, S});  // stride 0 along broadcast dimensions
    data = m.data_ptr<bool>();
    b = batch == 1 ? 0 : m.stride(0), h = m.stride(1), t = m.stride(2), s = m.stride(3);
  }
  bool masked(int64_t row, int64_t sentence, int64_t hi, int64_t ti, int64_t si) const {
    return data != nullptr && data[(per_row ? row : sentence) * b + hi * h + ti * t + si * s];
  }
};

// Work per parallel chunk: enough (batch, head) pairs for ~32k multiply-adds.
int64_t grain(int64_t T, int64_t S, int64_t width) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, T * S * width));
}

// Everything a kernel reads and writes, for the range functions below.
struct Problem {
  int64_t B, H, T, S, dk, dv, group;  // group: query rows per key/value row
  float scale;
  View Q, K, V;
  MaskView M;
};

Problem problem(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                const torch::Tensor& mask) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), S = k.size(2);
  return {B,
          H,
          T,
          S,
          q.size(3),
          v.size(3),
          B / k.size(0),
          static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(3)))),
          View(q),
          View(k),
          View(v),
          MaskView(mask, B, H, T, S)};
}

// Forward for (batch, head) pairs [begin, end): probs P (contiguous) and out O.
AIAYN_VECTOR_CLONES
void forward_range(const Problem& x, float* P, const View& O, int64_t begin, int64_t end) {
  const int64_t T = x.T, S = x.S, dk = x.dk, dv = x.dv;
  constexpr float kMinus = -std::numeric_limits<float>::infinity();
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / x.H, h = bh % x.H, kv = b / x.group;
    for (int64_t t = 0; t < T; ++t) {
      float* p = P + (bh * T + t) * S;
      float* o = O.at(b, h, t);
      const float* qt = x.Q.at(b, h, t);
      float top = kMinus;
      for (int64_t s = 0; s < S; ++s) {
        p[s] = x.M.masked(b, kv, h, t, s) ? kMinus : x.scale * dot(qt, x.K.at(kv, h, s), dk);
        top = std::max(top, p[s]);
      }
      std::fill(o, o + dv, 0.0f);
      if (top == kMinus) {  // every key masked
        std::fill(p, p + S, 0.0f);
        continue;
      }
      // Masked keys (-inf) get exactly 0, which the loops below skip.
      for (int64_t s = 0; s < S; ++s) p[s] = p[s] == kMinus ? 0.0f : vec::exp(p[s] - top);
      const float inv = 1.0f / vec::sum(p, S);
      for (int64_t s = 0; s < S; ++s) {
        p[s] *= inv;
        if (p[s] != 0.0f) axpy(p[s], x.V.at(kv, h, s), o, dv);
      }
    }
  }
}

// Forward: probs [B, h, T, S] (contiguous) and out [B, h, T, d_v].
void forward_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                    const torch::Tensor& mask, torch::Tensor& probs, torch::Tensor& out) {
  const Problem x = problem(q, k, v, mask);
  float* P = probs.data_ptr<float>();
  const View O(out);
  at::parallel_for(0, x.B * x.H, grain(x.T, x.S, x.dk + x.dv),
                   [&](int64_t begin, int64_t end) { forward_range(x, P, O, begin, end); });
}

// Backward of out = P V with P = softmax(scale * Q K^T) (masked entries have
// P = 0) for (batch, head) pairs [begin, end); ds is scratch of S floats.
// dQ, dK and dV are written whole here (no zeroed buffers needed).
AIAYN_VECTOR_CLONES
void backward_range(const Problem& x, const float* P, const View& G, const View& dQ, const View& dK,
                    const View& dV, float* ds, int64_t begin, int64_t end) {
  const int64_t T = x.T, S = x.S, dk = x.dk, dv = x.dv;
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / x.H, h = bh % x.H;
    for (int64_t s = 0; s < S; ++s) {
      std::fill(dK.at(b, h, s), dK.at(b, h, s) + dk, 0.0f);
      std::fill(dV.at(b, h, s), dV.at(b, h, s) + dv, 0.0f);
    }
    for (int64_t t = 0; t < T; ++t) {
      const float* p = P + (bh * T + t) * S;
      const float* g = G.at(b, h, t);
      float* dq_t = dQ.at(b, h, t);
      std::fill(dq_t, dq_t + dk, 0.0f);
      // dP = g V^T; dS = P * (dP - <P, dP>), the softmax's Jacobian.
      float row = 0;
      for (int64_t s = 0; s < S; ++s) {
        ds[s] = p[s] != 0.0f ? dot(g, x.V.at(b, h, s), dv) : 0.0f;
        row += p[s] * ds[s];
      }
      for (int64_t s = 0; s < S; ++s) {
        if (p[s] == 0.0f) continue;
        const float d = p[s] * (ds[s] - row) * x.scale;
        axpy(d, x.K.at(b, h, s), dq_t, dk);
        axpy(d, x.Q.at(b, h, t), dK.at(b, h, s), dk);
        axpy(p[s], g, dV.at(b, h, s), dv);
      }
    }
  }
}

void backward_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& probs, const torch::Tensor& grad_out, torch::Tensor& dq,
                     torch::Tensor& dk, torch::Tensor& dv) {
  const Problem x = problem(q, k, v, torch::Tensor());
  const float* P = probs.data_ptr<float>();
  const View G(grad_out), dQ(dq), dK(dk), dV(dv);
  at::parallel_for(0, x.B * x.H, grain(x.T, x.S, 2 * (x.dk + x.dv)), [&](int64_t begin, int64_t end) {
    std::vector<float> ds(static_cast<size_t>(x.S));
    backward_range(x, P, G, dQ, dK, dV, ds.data(), begin, end);
  });
}

struct AttentionCoreFunction : public torch::autograd::Function<AttentionCoreFunction> {
  // The mask travels as an optional: LibTorch 1.13's Function::apply cannot
  // take an undefined tensor argument.
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const c10::optional<torch::Tensor>& mask) {
    auto probs = torch::empty({q.size(0), q.size(1), q.size(2), k.size(2)}, q.options());  // [B, h, T, S]
    auto out = empty_heads(q.size(0), q.size(1), q.size(2), v.size(3), q.options());       // [B, h, T, d_v]
    forward_kernel(q, k, v, mask.has_value() ? *mask : torch::Tensor(), probs, out);
    ctx->save_for_backward({q, k, v, probs});
    ctx->mark_non_differentiable({probs});
    return {out, probs};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    TORCH_CHECK(q.size(0) == k.size(0), "attention_core: no backward for rows sharing keys (decoding only)");
    if (!grads[0].defined()) return {torch::zeros_like(q), torch::zeros_like(k), torch::zeros_like(v), {}};
    auto g = grads[0].stride(3) == 1 ? grads[0] : grads[0].contiguous();  // [B, h, T, d_v]
    // In the heads' [B, rows, h, width] order, so the views that split them
    // off the projections give their gradients back without a copy.
    auto dq = empty_heads(q.size(0), q.size(1), q.size(2), q.size(3), q.options());  // [B, h, T, d_k]
    auto dk = empty_heads(k.size(0), k.size(1), k.size(2), k.size(3), k.options());  // [B, h, S, d_k]
    auto dv = empty_heads(v.size(0), v.size(1), v.size(2), v.size(3), v.options());  // [B, h, S, d_v]
    backward_kernel(q, k, v, probs, g, dq, dk, dv);
    return {dq, dk, dv, torch::Tensor()};
  }
};

bool usable(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.dim() == 4 && t.stride(3) == 1;
}

}  // namespace

bool attention_core_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            double dropout, bool training) {
  return usable(q) && usable(k) && usable(v) && !(dropout > 0.0 && training);
}

torch::Tensor attention_core(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& mask, torch::Tensor* weights) {
  TORCH_CHECK(k.size(0) > 0 && q.size(0) % k.size(0) == 0 && k.size(0) == v.size(0) &&
                  q.size(1) == k.size(1) && k.size(1) == v.size(1) && q.size(3) == k.size(3) &&
                  k.size(2) == v.size(2),
              "attention_core: q ", q.sizes(), ", k ", k.sizes(), " and v ", v.sizes(), " do not fit");
  c10::optional<torch::Tensor> m;
  if (mask.defined()) m = mask.to(torch::kBool);
  auto outputs = AttentionCoreFunction::apply(q, k, v, m);
  if (weights != nullptr) *weights = outputs[1];
  return outputs[0];  // [B, h, T, d_v]
}

}  // namespace aiayn
