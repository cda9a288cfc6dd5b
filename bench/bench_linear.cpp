// The decoder's linear layers, one thread: LibTorch's linear (the BLAS,
// which packs the weight at every call) against models/packed_linear (the
// weight packed once), at the shapes incremental decoding of the `small`
// model runs, plus the encoder's. Prints the median time of each, GFLOP/s,
// the ratio and the largest difference between the two results; where the
// CPU has AVX-512 VNNI, also models/packed_int8_linear (GOP/s, and its
// speed-up over the packed float kernel).
//
//   build/bin/bench_linear [--repeat 200]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "models/packed_int8_linear.h"
#include "models/packed_linear.h"

namespace {

template <typename F>
double median_ms(F&& f, int repeat) {
  f();
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 200;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--repeat") == 0) repeat = std::stoi(argv[i + 1]);
  }
  if (!aiayn::PackedLinear::available()) {
    std::printf("bench_linear: this CPU has no packed kernel (needs AVX-512 or AVX2 with FMA)\n");
    return 0;
  }
  torch::set_num_threads(1);
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  struct Shape {
    const char* what;
    int64_t m, k, n;
  };
  const Shape shapes[] = {{"greedy step, output projection", 64, 256, 8000},
                          {"beam 4 step, output projection", 256, 256, 8000},
                          {"greedy step, self-attention qkv", 64, 256, 768},
                          {"greedy step, FFN W1", 64, 256, 1024},
                          {"greedy step, FFN W2", 64, 1024, 256},
                          {"greedy step, W^O", 64, 256, 256},
                          {"late step, output projection", 8, 256, 8000},
                          {"encoder, FFN W1", 1280, 256, 1024},
                          {"encoder, FFN W2", 1280, 1024, 256}};
  const bool int8 = aiayn::PackedInt8Linear::available();
  std::printf("%-34s %5s %5s %5s %10s %10s %8s %9s%s\n", "shape", "M", "K", "N", "BLAS ms", "packed ms",
              "speed-up", "max diff", int8 ? "   int8 ms  int8/packed" : "");
  for (const auto& s : shapes) {
    auto x = torch::randn({s.m, s.k});                           // [M, K]
    auto w = torch::randn({s.n, s.k}) / std::sqrt(double(s.k));  // [N, K]
    auto b = torch::randn({s.n});                                // [N]
    aiayn::PackedLinear packed(w, b);
    const double blas = median_ms([&] { torch::linear(x, w, b); }, repeat);
    const double mine = median_ms([&] { packed(x); }, repeat);
    const double diff = (torch::linear(x, w, b) - packed(x)).abs().max().item<double>();
    const double gflop = 2.0 * double(s.m) * double(s.k) * double(s.n) / 1e6;
    std::printf("%-34s %5ld %5ld %5ld %7.3f (%3.0f) %7.3f (%3.0f) %7.2fx %9.2e", s.what, long(s.m), long(s.k),
                long(s.n), blas, gflop / blas, mine, gflop / mine, blas / mine, diff);
    if (int8) {
      aiayn::PackedInt8Linear quantized(w, b);
      const double q = median_ms([&] { quantized(x); }, repeat);
      std::printf(" %7.3f (%3.0f) %7.2fx", q, gflop / q, mine / q);
    }
    std::printf("\n");
  }
  std::printf("(ms: median of %d calls; in brackets GFLOP/s)\n", repeat);
  return 0;
}
