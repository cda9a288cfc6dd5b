// Small float loops that GCC turns into AVX2 code: the inner loops of the
// fused CPU kernels (attention core, loss, optimizer).
//
// Debian builds LibTorch and us for plain x86-64 (SSE2); functions marked
// AIAYN_VECTOR_CLONES are compiled twice, for AVX2 and for the baseline,
// and the loader picks one by what the CPU supports.
#pragma once
#include <cstdint>
#include <limits>

// The clone is named by a feature, not a CPU: GCC dispatches "arch=haswell"
// with a CPU-model test that sends every AMD processor (this machine's EPYC
// included) to the baseline, and inlines nothing compiled for another arch=
// into an arch= clone. (No FMA: ISO C++ mode does not contract a * b + c.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AIAYN_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define AIAYN_VECTOR_CLONES
#endif
// The helpers below must be inlined into each clone to be compiled for it.
#if defined(__GNUC__)
#define AIAYN_INLINE inline __attribute__((always_inline))
#else
#define AIAYN_INLINE inline
#endif

namespace aiayn::vec {

// Sixteen partial sums, so the compiler can vectorise the reduction (two
// AVX registers in flight) without reassociating floating point on its own.
AIAYN_INLINE float dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = 0;
  for (int j = 0; j < 16; ++j) sum += acc[j];
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

AIAYN_INLINE void axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

AIAYN_INLINE float max(float a, float b) { return a < b ? b : a; }
AIAYN_INLINE float min(float a, float b) { return b < a ? b : a; }

AIAYN_INLINE float max(const float* x, int64_t n) {
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  float acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = kLowest;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] = vec::max(acc[j], x[i + j]);
  }
  float top = kLowest;
  for (int j = 0; j < 16; ++j) top = vec::max(top, acc[j]);
  for (; i < n; ++i) top = vec::max(top, x[i]);
  return top;
}

AIAYN_INLINE float sum(const float* x, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j];
  }
  float total = 0;
  for (int j = 0; j < 16; ++j) total += acc[j];
  for (; i < n; ++i) total += x[i];
  return total;
}

// exp(x) in float without a library call, so loops over it vectorise:
// x = k ln 2 + r with |r| <= ln 2 / 2, exp(r) by Cephes' degree-6 polynomial
// (relative error below 2e-7), 2^k through the exponent bits. Inputs are
// clamped to [-87.3, 88.7], the range of normal results: exp(-inf) gives
// 1.2e-38, not 0, so callers that need exact zeros (masks) must say so.
AIAYN_INLINE float exp(float x) {
  x = vec::min(vec::max(x, -87.3f), 88.7f);
  const float k = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - k * 0.693359375f;  // ln 2 in two parts keeps r exact
  r -= k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

// sum_i exp(x[i] - shift)
AIAYN_INLINE float sum_exp(const float* x, int64_t n, float shift) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += vec::exp(x[i + j] - shift);
  }
  float total = 0;
  for (int j = 0; j < 16; ++j) total += acc[j];
  for (; i < n; ++i) total += vec::exp(x[i] - shift);
  return total;
}

}  // namespace aiayn::vec
