#include "models/packed_linear.h"

#include <ATen/Parallel.h>

#include <algorithm>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AIAYN_PACKED_X86 1
#else
#define AIAYN_PACKED_X86 0
#endif

namespace aiayn {

namespace {

std::vector<PackedKernel> detect_kernels() {
  std::vector<PackedKernel> found;
#if AIAYN_PACKED_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) found.push_back(PackedKernel::avx2);
  if (__builtin_cpu_supports("avx512f")) found.push_back(PackedKernel::avx512);
#endif
  return found;
}

// A tile: `rows` rows of x ([rows, k], row stride k) times one panel
// ([k, width]) plus the panel's bias, into out (row stride ldo), of which
// the first `cols` columns exist (the last panel is zero-padded).
using Tile = void (*)(const float* x, int64_t k, const float* panel, const float* bias, float* out,
                      int64_t ldo, int64_t cols);

#if AIAYN_PACKED_X86
// AVX-512: 32 columns in two registers, up to 12 rows, so 24 accumulators
// keep both FMA units busy through their latency. Each weight is loaded once
// per tile and each input broadcast once: the loop is bound by the FMAs.
template <int R>
__attribute__((target("avx512f"))) void tile_avx512(const float* x, int64_t k, const float* panel,
                                                    const float* bias, float* out, int64_t ldo,
                                                    int64_t cols) {
  __m512 acc[R][2];
  const __m512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
  for (int i = 0; i < R; ++i) acc[i][0] = b0, acc[i][1] = b1;
  for (int64_t j = 0; j < k; ++j) {
    const __m512 w0 = _mm512_loadu_ps(panel + j * 32), w1 = _mm512_loadu_ps(panel + j * 32 + 16);
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const __m512 xi = _mm512_set1_ps(x[i * k + j]);
      acc[i][0] = _mm512_fmadd_ps(xi, w0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(xi, w1, acc[i][1]);
    }
  }
  const __mmask16 m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
  for (int i = 0; i < R; ++i) {
    _mm512_mask_storeu_ps(out + i * ldo, m0, acc[i][0]);
    _mm512_mask_storeu_ps(out + i * ldo + 16, m1, acc[i][1]);
  }
}

// AVX2: 16 columns in two registers, up to 6 rows (12 accumulators of 16).
template <int R>
__attribute__((target("avx2,fma"))) void tile_avx2(const float* x, int64_t k, const float* panel,
                                                   const float* bias, float* out, int64_t ldo, int64_t cols) {
  __m256 acc[R][2];
  const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
  for (int i = 0; i < R; ++i) acc[i][0] = b0, acc[i][1] = b1;
  for (int64_t j = 0; j < k; ++j) {
    const __m256 w0 = _mm256_loadu_ps(panel + j * 16), w1 = _mm256_loadu_ps(panel + j * 16 + 8);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 xi = _mm256_broadcast_ss(x + i * k + j);
      acc[i][0] = _mm256_fmadd_ps(xi, w0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(xi, w1, acc[i][1]);
    }
  }
  alignas(32) static const int32_t lane[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const __m256i n = _mm256_set1_epi32(static_cast<int32_t>(cols));
  const __m256i m0 = _mm256_cmpgt_epi32(n, _mm256_load_si256(reinterpret_cast<const __m256i*>(lane)));
  const __m256i m1 = _mm256_cmpgt_epi32(n, _mm256_load_si256(reinterpret_cast<const __m256i*>(lane + 8)));
  for (int i = 0; i < R; ++i) {
    _mm256_maskstore_ps(out + i * ldo, m0, acc[i][0]);
    _mm256_maskstore_ps(out + i * ldo + 8, m1, acc[i][1]);
  }
}

// Tile functions by row count, [0] unused.
constexpr Tile kAvx512Tiles[] = {nullptr,        tile_avx512<1>, tile_avx512<2>,  tile_avx512<3>,
                                 tile_avx512<4>, tile_avx512<5>, tile_avx512<6>,  tile_avx512<7>,
                                 tile_avx512<8>, tile_avx512<9>, tile_avx512<10>, tile_avx512<11>,
                                 tile_avx512<12>};
constexpr Tile kAvx2Tiles[] = {nullptr,      tile_avx2<1>, tile_avx2<2>, tile_avx2<3>,
                               tile_avx2<4>, tile_avx2<5>, tile_avx2<6>};
#endif

struct Kernel {
  const Tile* tiles = nullptr;
  int64_t max_rows = 0, width = 0;
};

Kernel kernel(PackedKernel which) {
#if AIAYN_PACKED_X86
  if (which == PackedKernel::avx512) return {kAvx512Tiles, 12, 32};
  return {kAvx2Tiles, 6, 16};
#else
  (void)which;
  TORCH_CHECK(false, "PackedLinear: no packed kernel on this architecture");
  return {};
#endif
}

PackedKernel best_kernel() {
  const auto& kernels = packed_kernels();
  TORCH_CHECK(!kernels.empty(), "PackedLinear: this CPU has neither AVX-512 nor AVX2 with FMA");
  return kernels.back();
}

// Rows of x per pass over a thread's panels: a chunk of x (about 512 KiB)
// stays in the L2 cache while the panels stream past it, so a weight panel
// comes from memory once per chunk, and for decoding's few rows once per call.
int64_t row_chunk(int64_t k, int64_t tile_rows) {
  const int64_t rows = std::max<int64_t>(tile_rows, (int64_t{128} << 10) / std::max<int64_t>(1, k));
  return rows / tile_rows * tile_rows;
}

}  // namespace

std::vector<PackedKernel> packed_kernels() {
  static const std::vector<PackedKernel> kernels = detect_kernels();
  return kernels;
}

std::string to_string(PackedKernel kernel) { return kernel == PackedKernel::avx512 ? "AVX-512" : "AVX2"; }

std::string packed_kernel_name() { return PackedLinear::available() ? to_string(best_kernel()) : ""; }

PackedLinear::PackedLinear(const torch::Tensor& weight, const torch::Tensor& bias)
    : PackedLinear(weight, bias, best_kernel()) {}

PackedLinear::PackedLinear(const torch::Tensor& weight, const torch::Tensor& bias, PackedKernel kernel)
    : in_(weight.size(1)),
      out_(weight.size(0)),
      width_(aiayn::kernel(kernel).width),
      kernel_(kernel),
      trainable_(weight.requires_grad() || (bias.defined() && bias.requires_grad())) {
  const auto& here = packed_kernels();
  TORCH_CHECK(std::find(here.begin(), here.end(), kernel) != here.end(),
              "PackedLinear: this CPU cannot run the ", to_string(kernel), " kernel");
  torch::NoGradGuard no_grad;
  auto w = weight.detach().to(torch::kCPU, torch::kFloat).contiguous();  // [out, in]
  const int64_t panels = (out_ + width_ - 1) / width_;
  auto padded = torch::zeros({panels * width_, in_});  // [panels * width, in]
  padded.narrow(0, 0, out_).copy_(w);
  panels_ = padded.view({panels, width_, in_}).transpose(1, 2).contiguous();  // [panels, in, width]
  bias_ = torch::zeros({panels * width_});                                    // [panels * width]
  if (bias.defined()) bias_.narrow(0, 0, out_).copy_(bias.detach().to(torch::kCPU, torch::kFloat));
}

torch::Tensor PackedLinear::operator()(const torch::Tensor& x) const {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat && x.size(-1) == in_,
              "PackedLinear: expects float CPU input [..., ", in_, "], got ", x.sizes(), " ",
              x.scalar_type());
  // A gradient through the copy would be lost, for the input or the weight.
  TORCH_CHECK(!(torch::GradMode::is_enabled() && (x.requires_grad() || trainable_)),
              "PackedLinear: inference only (no gradient); decode under torch::NoGradGuard");
  auto flat = x.reshape({-1, in_}).contiguous();  // [M, in]
  const int64_t m = flat.size(0), panels = panels_.size(0);
  auto y = torch::empty({m, out_}, flat.options());  // [M, out]
  auto sizes = x.sizes().vec();
  sizes.back() = out_;
  if (m == 0) return y.view(sizes);
  const Kernel kern = kernel(kernel_);
  const float* xs = flat.data_ptr<float>();
  const float* ps = panels_.data_ptr<float>();
  const float* bs = bias_.data_ptr<float>();
  float* ys = y.data_ptr<float>();
  const int64_t k = in_, n = out_, width = width_, chunk = row_chunk(k, kern.max_rows);
  // Split the panels across threads only where a share is worth a wake-up.
  const int64_t per_panel = m * k * width;  // multiply-adds
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 21) / std::max<int64_t>(1, per_panel));
  at::parallel_for(0, panels, grain, [&](int64_t first, int64_t last) {
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
      const int64_t r1 = std::min(m, r0 + chunk);
      for (int64_t p = first; p < last; ++p) {
        const float* panel = ps + p * k * width;
        const int64_t col = p * width, cols = std::min(width, n - col);
        for (int64_t r = r0; r < r1; r += kern.max_rows) {
          const int64_t rows = std::min(kern.max_rows, r1 - r);
          kern.tiles[rows](xs + r * k, k, panel, bs + col, ys + r * n + col, n, cols);
        }
      }
    }
  });
  return y.view(sizes);  // [..., out]
}

}  // namespace aiayn
