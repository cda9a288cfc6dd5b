// A float linear layer for decoding on the CPU, its weight laid out once for
// the vector unit. A BLAS sgemm copies ("packs") the weight into its own
// layout at every call; incremental decoding multiplies a few dozen rows at
// a time, so that copy cost as much as the products themselves (perf, greedy
// decoding of Multi30k with one thread: 28% of the time in OpenBLAS's
// sgemm_incopy, 27% in its kernel). Packed once, each call streams the
// weight once, straight into the multiply-adds. Inference only: no gradient,
// and the layout is a copy, so later changes to the parameters are not seen.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace aiayn {

// The vector units a packed kernel is written for.
enum class PackedKernel { avx2, avx512 };

// The kernels this CPU can run, best last (AVX2 needs FMA too; x86-64 only).
std::vector<PackedKernel> packed_kernels();
// "AVX-512" or "AVX2"; of the best kernel here, "" where there is none.
std::string packed_kernel_name();
std::string to_string(PackedKernel kernel);

class PackedLinear {
 public:
  // Whether this CPU has a packed kernel (AVX-512 or AVX2 with FMA, x86-64).
  static bool available() { return !packed_kernels().empty(); }

  // weight [out, in], bias [out] or undefined; copies them, laid out for
  // `kernel` (the best this CPU runs: other kernels are for tests).
  PackedLinear(const torch::Tensor& weight, const torch::Tensor& bias);
  PackedLinear(const torch::Tensor& weight, const torch::Tensor& bias, PackedKernel kernel);

  torch::Tensor operator()(const torch::Tensor& x) const;  // [..., in] -> [..., out]

  // Columns per panel: 32 with AVX-512, 16 with AVX2 (two vector registers).
  int64_t width() const { return width_; }

 private:
  torch::Tensor panels_;  // [ceil(out / width), in, width]: W^T in column panels, zero-padded
  torch::Tensor bias_;    // [panels * width], zero-padded; zeros when there is no bias
  int64_t in_ = 0, out_ = 0, width_ = 0;
  PackedKernel kernel_;
  bool trainable_ = false;  // the weight or bias packed needed a gradient
};

}  // namespace aiayn
