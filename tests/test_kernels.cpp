// The hand-written CPU kernels against the device-generic paths they stand
// in for: packed float and int8 projections against LibTorch's linear and
// the int8 reference, beam ranking from raw logits against log-softmax,
// sum and top-k, and the fused attention loop against its definition. The
// fused training loss and Adam are held to theirs in test_train_math.cpp,
// and beam search through the ranking kernel to the generic ranking in
// test_search.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "models/attention.h"
#include "models/attention_kernel.h"
#include "models/config.h"
#include "models/packed_int8_linear.h"
#include "models/packed_linear.h"
#include "src/decode/beam_candidates.h"
#include "tests/test_util.h"

using namespace aiayn;
using test::max_abs_diff;

TEST_CASE("packed int8 (AVX-512 VNNI) computes its reference at every tile and panel edge",
          "[search][int8][packed]") {
  if (!PackedInt8Linear::available()) {
    WARN("skipped: this CPU lacks AVX-512 VNNI (int8 runs on LibTorch's quantized engine)");
    return;
  }
  torch::manual_seed(5);
  for (int64_t out : {1, 31, 33, 100}) {
    for (int64_t in : {1, 5, 64, 130}) {
      auto w = torch::randn({out, in}), b = torch::randn({out});
      for (int64_t rows : {1, 11, 12, 13, 30}) {
        auto x = torch::randn({rows, in}) * 3;  // [rows, in]
        x[0].zero_();                           // a zero row: scale 1, all zero
        PackedInt8Linear layer(w, b);
        auto got = layer(x);                               // [rows, out]
        auto want = PackedInt8Linear::reference(x, w, b);  // [rows, out]
        INFO(rows << " x " << in << " -> " << out);
        REQUIRE(got.sizes() == want.sizes());
        // Integer sums are exact; only the last multiply-add rounds differently (FMA).
        CHECK((got - want).abs().max().item<double>() <= 1e-5 * (1.0 + want.abs().max().item<double>()));
        CHECK(torch::allclose(got[0], b.unsqueeze(0).expand({1, out})[0]));
      }
    }
  }
  // Without a bias, and on a 3-d input.
  auto w = torch::randn({40, 24});
  auto x = torch::randn({2, 3, 24});
  auto got = PackedInt8Linear(w, {})(x);  // [2, 3, 40]
  CHECK(got.sizes() == torch::IntArrayRef({2, 3, 40}));
  CHECK((got - PackedInt8Linear::reference(x, w, {})).abs().max().item<double>() < 1e-4);
}

namespace {

// One packed kernel against LibTorch's linear: output widths below, at and
// past a panel (16 or 32 columns), inputs of odd length, and row counts
// through two tiles (6 or 12 rows) and past a row chunk's end, with and
// without bias.
void check_packed_kernel(PackedKernel kernel) {
  namespace F = torch::nn::functional;
  INFO("kernel " << to_string(kernel));
  for (int64_t out : {1, 15, 16, 17, 31, 32, 33, 100}) {
    for (int64_t in : {1, 7, 64, 300, 1100}) {
      auto w = torch::randn({out, in}), b = torch::randn({out});
      PackedLinear with_bias(w, b, kernel), without(w, {}, kernel);
      for (int64_t rows : {0, 1, 5, 6, 7, 11, 12, 13, 25, 600}) {
        auto x = torch::randn({rows, in});  // [M, in]
        auto exact = F::linear(x, w, b);    // [M, out]
        auto packed = with_bias(x);         // [M, out]
        INFO("out " << out << " in " << in << " rows " << rows);
        REQUIRE(packed.sizes() == exact.sizes());
        if (rows == 0) continue;
        const double scale = 1.0 + exact.abs().max().item<double>();
        CHECK((packed - exact).abs().max().item<double>() <= 1e-5 * scale);
        CHECK((without(x) - F::linear(x, w)).abs().max().item<double>() <= 1e-5 * scale);
      }
    }
  }
}

}  // namespace

TEST_CASE("packed float weights compute what the BLAS computes, at every tile and panel edge",
          "[search][packed]") {
  if (!PackedLinear::available()) {
    WARN("no packed kernel on this CPU (needs AVX2 with FMA or AVX-512): nothing to test");
    return;
  }
  torch::NoGradGuard no_grad;
  torch::manual_seed(13);
  for (auto kernel : packed_kernels()) check_packed_kernel(kernel);  // AVX2, and AVX-512 where present
  // Any leading shape, and a non-contiguous input.
  auto w = torch::randn({40, 24}), b = torch::randn({40});
  auto x = torch::randn({3, 24, 5}).transpose(1, 2);  // [3, 5, 24], strided
  auto y = PackedLinear(w, b)(x);                     // [3, 5, 40]
  REQUIRE(y.sizes() == torch::IntArrayRef({3, 5, 40}));
  CHECK((y - torch::nn::functional::linear(x, w, b)).abs().max().item<double>() <= 1e-4);
}

TEST_CASE("ranking from raw logits equals log-softmax, sum and top-k", "[search][beam-candidates]") {
  torch::manual_seed(11);
  const int64_t n = 5, k = 4, vocab = 300, width = 2 * k;
  auto logits = torch::randn({n * k, vocab}) * 4;                                // [n*K, V]
  auto scores = -torch::rand({n, k}) * 10;                                       // [n, K]
  scores[0].narrow(0, 1, k - 1).fill_(-std::numeric_limits<float>::infinity());  // a first step
  logits[7][kEosId] = 30;  // eos the best token of the best beam of sentence 1
  scores[1][3] = 0;
  std::vector<EndRule> rules = {EndRule::no_eos, EndRule::free, EndRule::only_eos, EndRule::free,
                                EndRule::free};
  auto ranked = rank_from_logits(logits.data_ptr<float>(), scores.data_ptr<float>(), n, k, vocab, rules,
                                 kEosId, {kPadId, kBosId}, width);
  // The reference: what the generic path computes.
  auto lprobs = torch::log_softmax(logits, -1);  // [n*K, V]
  lprobs.select(1, kPadId).fill_(-INFINITY);
  lprobs.select(1, kBosId).fill_(-INFINITY);
  auto lp = lprobs.view({n, k, vocab});  // [n, K, V]
  lp[0].select(-1, kEosId).fill_(-INFINITY);
  auto eos = lp[2].select(-1, kEosId).clone();  // [K]
  lp[2].fill_(-INFINITY);
  lp[2].select(-1, kEosId).copy_(eos);
  auto [top, index] = (scores.unsqueeze(2) + lp).view({n, k * vocab}).topk(width, 1);  // [n, 2K]
  for (int64_t s = 0; s < n; ++s) {
    INFO("sentence " << s);
    int64_t finite = 0;
    for (int64_t j = 0; j < width; ++j) finite += std::isfinite(top[s][j].item<float>());
    REQUIRE(static_cast<int64_t>(ranked[s].size()) == finite);
    for (int64_t j = 0; j < finite; ++j) {
      const int64_t i = index[s][j].item<int64_t>();
      CHECK(ranked[s][j].beam == i / vocab);
      CHECK(ranked[s][j].token == i % vocab);
      CHECK(ranked[s][j].log_prob == Approx(top[s][j].item<float>()).margin(1e-5));
    }
  }
  CHECK(ranked[0].size() == static_cast<size_t>(width));  // one live beam still fills 2K
  CHECK(ranked[1][0].token == kEosId);                    // row 7 is sentence 1's beam 3
  CHECK(ranked[2].size() == static_cast<size_t>(k));      // only eos, once per beam
  for (const auto& c : ranked[0]) CHECK(c.token != kEosId);
}

namespace {

// softmax(Q K^T / sqrt(d_k)) V with plain LibTorch ops: the definition the
// fused kernel must reproduce, forward and backward.
torch::Tensor attention_by_definition(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const torch::Tensor& mask, torch::Tensor* weights) {
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (mask.defined()) scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  *weights = torch::softmax(scores, -1);
  return torch::matmul(*weights, v);
}

}  // namespace

TEST_CASE("the fused attention kernel equals the definition, gradients included", "[attention][kernel]") {
  torch::manual_seed(3);
  const int64_t B = 3, H = 2, T = 6, S = 9, dk = 12, dv = 10;
  auto padding = torch::zeros({B, S}, torch::kBool);
  padding.index_put_({1, torch::indexing::Slice(5)}, true);
  padding.index_put_({2, torch::indexing::Slice(1)}, true);         // a single real key
  auto causal = torch::ones({T, S}, torch::kBool).triu(S - T + 1);  // [T, S]
  struct Case {
    const char* name;
    torch::Tensor mask;
  } cases[] = {{"no mask", {}},
               {"key padding", key_mask(padding)},
               {"causal", causal},
               {"causal and padding", causal.logical_or(key_mask(padding))}};
  for (const auto& c : cases) {
    SECTION(c.name) {
      // q as a strided view, as multi-head attention makes it from a fused projection.
      auto fused = torch::randn({B, T, H, 2 * dk}).requires_grad_();
      auto q = fused.narrow(3, dk, dk).transpose(1, 2);  // [B, H, T, dk], non-contiguous
      auto k = torch::randn({B, H, S, dk}).requires_grad_();
      auto v = torch::randn({B, H, S, dv}).requires_grad_();
      REQUIRE(attention_core_applies(q, k, v, 0.0, true));
      auto upstream = torch::randn({B, H, T, dv});

      torch::Tensor w_kernel, w_def;
      auto out = attention_core(q, k, v, c.mask, &w_kernel);
      auto grads = torch::autograd::grad({(out * upstream).sum()}, {fused, k, v});
      auto expected = attention_by_definition(q, k, v, c.mask, &w_def);
      auto expected_grads = torch::autograd::grad({(expected * upstream).sum()}, {fused, k, v});

      CHECK(max_abs_diff(w_kernel, w_def) < 1e-6);
      CHECK(max_abs_diff(out, expected) < 1e-5);
      for (size_t i = 0; i < grads.size(); ++i) {
        INFO("gradient " << i);
        CHECK(max_abs_diff(grads[i], expected_grads[i]) < 1e-4);
      }
    }
  }
}

TEST_CASE("the fused kernel gives zero weights to a query with every key masked", "[attention][kernel]") {
  auto q = torch::randn({1, 1, 2, 4}), k = torch::randn({1, 1, 3, 4}), v = torch::randn({1, 1, 3, 4});
  auto mask = torch::zeros({1, 1, 2, 3}, torch::kBool);
  mask.index_put_({0, 0, 1}, true);
  torch::Tensor w;
  auto out = attention_core(q, k, v, mask, &w);
  CHECK(w[0][0][1].abs().sum().item<float>() == 0.0f);
  CHECK(out[0][0][1].abs().sum().item<float>() == 0.0f);
  CHECK(w[0][0][0].sum().item<float>() == Approx(1.0f));
}
