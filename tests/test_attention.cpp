// Scaled dot-product and multi-head attention against their definitions.
#include <catch2/catch.hpp>

#include "models/attention.h"
#include "models/fused_attention.h"
#include "models/transformer.h"
#include "src/common/model_config_json.h"
#include "tests/test_util.h"

using namespace aiayn;
using test::max_abs_diff;

TEST_CASE("scaled dot-product attention follows section 3.2.1", "[attention]") {
  torch::manual_seed(0);
  auto q = torch::randn({2, 3, 5, 8});  // [B, h, T, d_k]
  auto k = torch::randn({2, 3, 7, 8});  // [B, h, S, d_k]
  auto v = torch::randn({2, 3, 7, 6});  // [B, h, S, d_v]
  auto padding = torch::zeros({2, 7}, torch::kBool);
  padding.index_put_({1, torch::indexing::Slice(4)}, true);  // second sequence: 4 real keys
  torch::Tensor weights;
  auto out = scaled_dot_product_attention(q, k, v, key_mask(padding), 0.0, false, &weights);
  REQUIRE(out.sizes() == torch::IntArrayRef({2, 3, 5, 6}));
  REQUIRE(weights.sizes() == torch::IntArrayRef({2, 3, 5, 7}));

  // softmax(Q K^T / sqrt(d_k)) V written out with explicit -inf at padding.
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0);
  scores = scores + key_mask(padding).to(torch::kFloat) * -1e30;
  auto expected_weights = torch::softmax(scores, -1);
  CHECK(max_abs_diff(weights, expected_weights) < 1e-6);
  CHECK(max_abs_diff(out, torch::matmul(expected_weights, v)) < 1e-5);
  CHECK(max_abs_diff(weights.sum(-1), torch::ones({2, 3, 5})) < 1e-5);
  CHECK(weights.index({1, torch::indexing::Ellipsis, torch::indexing::Slice(4)}).abs().max().item<float>() ==
        0.0f);
}

TEST_CASE("causal mask hides later keys only", "[attention][mask]") {
  auto m = causal_mask(3, 2, torch::kCPU);  // 3 new queries after 2 cached positions
  REQUIRE(m.sizes() == torch::IntArrayRef({3, 5}));
  auto expected = torch::tensor({0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0}).view({3, 5});
  CHECK(torch::equal(m, expected.to(torch::kBool)));
}

TEST_CASE("multi-head attention supports d_k != d_v != d_model / h", "[attention]") {
  torch::manual_seed(1);
  MultiHeadAttention mha(MultiHeadAttentionOptions(32, 4).d_k(5).d_v(7));
  CHECK(mha->in_proj_weight.sizes() == torch::IntArrayRef({4 * (5 + 5 + 7), 32}));
  CHECK(mha->out_proj->weight.sizes() == torch::IntArrayRef({32, 4 * 7}));
  auto x = torch::randn({2, 6, 32});
  auto memory = torch::randn({2, 9, 32});
  torch::Tensor w;
  auto y = mha->self_attention(x, {}, nullptr, &w);
  CHECK(y.sizes() == torch::IntArrayRef({2, 6, 32}));
  CHECK(w.sizes() == torch::IntArrayRef({2, 4, 6, 6}));
  auto kv = mha->project_memory(memory);
  CHECK(kv.keys.sizes() == torch::IntArrayRef({2, 4, 9, 5}));
  CHECK(kv.values.sizes() == torch::IntArrayRef({2, 4, 9, 7}));
  auto z = mha->cross_attention(x, kv, {}, &w);
  CHECK(z.sizes() == torch::IntArrayRef({2, 6, 32}));
  CHECK(w.sizes() == torch::IntArrayRef({2, 4, 6, 9}));
}

TEST_CASE("multi-head attention equals its per-head definition", "[attention]") {
  torch::manual_seed(2);
  const int64_t d = 12, h = 3, dk = 4;
  MultiHeadAttention mha(MultiHeadAttentionOptions(d, h));
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 5, d});
  auto y = mha->self_attention(x, {});
  auto w = mha->in_proj_weight;
  auto b = mha->in_proj_bias;
  std::vector<torch::Tensor> heads;
  for (int64_t i = 0; i < h; ++i) {
    auto wq = w.narrow(0, i * dk, dk), wk = w.narrow(0, d + i * dk, dk), wv = w.narrow(0, 2 * d + i * dk, dk);
    auto q = torch::matmul(x, wq.t()) + b.narrow(0, i * dk, dk);
    auto k = torch::matmul(x, wk.t()) + b.narrow(0, d + i * dk, dk);
    auto v = torch::matmul(x, wv.t()) + b.narrow(0, 2 * d + i * dk, dk);
    auto a = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(dk)), -1);
    heads.push_back(torch::matmul(a, v));
  }
  auto expected = mha->out_proj(torch::cat(heads, -1));
  CHECK(max_abs_diff(y, expected) < 1e-5);
}

TEST_CASE("a self-attention cache grows by one position per step", "[attention][cache]") {
  torch::manual_seed(3);
  MultiHeadAttention mha(MultiHeadAttentionOptions(16, 2));
  mha->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 4, 16});
  auto full = mha->self_attention(x, causal_mask(4, 0, torch::kCPU));
  KeyValueCache cache;
  for (int64_t t = 0; t < 4; ++t) {
    auto step = mha->self_attention(x.narrow(1, t, 1), {}, &cache);
    CHECK(cache.length == t + 1);
    CHECK(cache.view().keys.size(2) == t + 1);
    CHECK(max_abs_diff(step, full.narrow(1, t, 1)) < 1e-5);
  }
}

TEST_CASE("the key/value cache grows past its capacity and reorders rows", "[attention][cache]") {
  torch::manual_seed(4);
  // 40 single steps: the stores grow from 16 to 32 to 64 positions.
  auto keys = torch::randn({3, 2, 40, 8}), values = torch::randn({3, 2, 40, 6});
  KeyValueCache cache;
  for (int64_t t = 0; t < 40; ++t) cache.append({keys.narrow(2, t, 1), values.narrow(2, t, 1)});
  REQUIRE(cache.length == 40);
  CHECK(cache.key_store.size(2) == 64);
  CHECK(torch::equal(cache.view().keys, keys));
  CHECK(torch::equal(cache.view().values, values));
  // Beam reordering: rows 2, 0, 0 (a row may be kept twice), then more steps.
  auto index = torch::tensor({int64_t{2}, int64_t{0}, int64_t{0}});
  auto kept = cache.select(index);
  auto more_k = torch::randn({3, 2, 2, 8}), more_v = torch::randn({3, 2, 2, 6});
  kept.append({more_k, more_v});
  CHECK(kept.length == 42);
  CHECK(kept.key_store.size(2) >= 42);
  CHECK(torch::equal(kept.view().keys, torch::cat({keys.index_select(0, index), more_k}, 2)));
  CHECK(torch::equal(kept.view().values, torch::cat({values.index_select(0, index), more_v}, 2)));
  CHECK(torch::equal(cache.view().keys, keys));  // the original is untouched
}

TEST_CASE("LibTorch's fused attention agrees with the explicit path, forward and backward, under every mask",
          "[attention][fused]") {
  if (!fused_attention_available()) {
    WARN("LibTorch " << TORCH_VERSION
                     << " has no fused scaled_dot_product_attention: the explicit path runs");
    return;
  }
  torch::manual_seed(1);
  auto padding = torch::zeros({2, 6}, torch::kBool);
  padding.index_put_({1, torch::indexing::Slice(3)}, true);  // second sequence: 3 real keys
  const auto pad = key_mask(padding);                        // [2, 1, 1, 6]
  const auto causal = causal_mask(6, 0, torch::kCPU);        // [6, 6]
  for (const auto& [name, mask] :
       std::vector<std::pair<std::string, torch::Tensor>>{{"none", torch::Tensor()},
                                                          {"padding", pad},
                                                          {"causal", causal},
                                                          {"both", pad.logical_or(causal)}}) {
    INFO("mask " << name);
    auto make = [](std::vector<int64_t> shape) {
      return torch::randn(shape, torch::kDouble).requires_grad_();
    };
    auto q = make({2, 3, 6, 8}), k = make({2, 3, 6, 8}), v = make({2, 3, 6, 5});  // [B, h, T|S, d]
    auto upstream = torch::randn({2, 3, 6, 5}, torch::kDouble);                   // d loss / d out
    torch::Tensor weights;  // asking for the weights takes the explicit path
    auto explicit_out = scaled_dot_product_attention(q, k, v, mask, 0.0, false, &weights);
    auto grads = torch::autograd::grad({(explicit_out * upstream).sum()}, {q, k, v});
    auto fused_out = scaled_dot_product_attention(q, k, v, mask, 0.0, false);  // no weights: fused
    auto fused_grads = torch::autograd::grad({(fused_out * upstream).sum()}, {q, k, v});
    CHECK(max_abs_diff(fused_out, explicit_out) < 1e-10);
    CHECK(max_abs_diff(fused_out, fused_attention(q, k, v, mask, 0.0)) == 0.0);
    for (size_t i = 0; i < 3; ++i) CHECK(max_abs_diff(fused_grads[i], grads[i]) < 1e-10);
  }
}

TEST_CASE("beams folded into the query axis equal attending to a copy of the memory per beam",
          "[attention][fused]") {
  // Off our CPU kernel (double precision), the generic paths fold the beams.
  torch::manual_seed(2);
  const int64_t sentences = 2, beams = 4;
  auto q = torch::randn({sentences * beams, 3, 1, 8}, torch::kDouble);  // [B*beam, h, 1, d_k]
  auto k = torch::randn({sentences, 3, 7, 8}, torch::kDouble);          // [B, h, S, d_k]
  auto v = torch::randn({sentences, 3, 7, 5}, torch::kDouble);          // [B, h, S, d_v]
  auto padding = torch::zeros({sentences, 7}, torch::kBool);
  padding.index_put_({0, torch::indexing::Slice(5)}, true);
  const auto mask = key_mask(padding);                                                  // [B, 1, 1, S]
  auto copies = [&](const torch::Tensor& t) { return t.repeat_interleave(beams, 0); };  // [B*beam, ...]
  torch::Tensor weights, copied_weights;
  auto folded = scaled_dot_product_attention(q, k, v, mask, 0.0, false, &weights);
  auto copied =
      scaled_dot_product_attention(q, copies(k), copies(v), copies(mask), 0.0, false, &copied_weights);
  REQUIRE(folded.sizes() == torch::IntArrayRef({sentences * beams, 3, 1, 5}));
  REQUIRE(weights.sizes() == torch::IntArrayRef({sentences * beams, 3, 1, 7}));
  CHECK(max_abs_diff(folded, copied) < 1e-12);
  CHECK(max_abs_diff(weights, copied_weights) < 1e-12);
  // Without weights (the fused path on 2.x), the same.
  CHECK(max_abs_diff(scaled_dot_product_attention(q, k, v, mask, 0.0, false), copied) < 1e-10);
  // A mask that differs by beam cannot be folded: each beam's copy is used.
  auto per_beam = torch::rand({sentences * beams, 1, 1, 7}).lt(0.3);
  per_beam.index_put_({torch::indexing::Slice(), 0, 0, 0}, false);  // every beam sees a key
  CHECK(max_abs_diff(scaled_dot_product_attention(q, k, v, per_beam, 0.0, false),
                     scaled_dot_product_attention(q, copies(k), copies(v), per_beam, 0.0, false)) < 1e-10);
}

// The decoder's self-attention over whole sequences tells the fused kernel
// it is causal (is_causal; CUDA's flash kernel takes no mask). Padded keys
// sit after every real query, so real rows are unchanged; padded query
// rows may differ, and nothing reads them.
TEST_CASE("the causal hint gives the explicit path's real rows and gradients", "[attention][fused]") {
  if (!fused_attention_available()) {
    WARN("LibTorch " << TORCH_VERSION << " has no fused scaled_dot_product_attention: no causal hint");
    return;
  }
  torch::manual_seed(3);
  auto padding = torch::zeros({2, 6}, torch::kBool);
  padding.index_put_({1, torch::indexing::Slice(4)}, true);  // second sequence: 4 real positions
  const auto causal = causal_mask(6, 0, torch::kCPU);        // [6, 6]
  const auto both = key_mask(padding).logical_or(causal);    // [2, 1, 6, 6]
  // d loss / d out, zero on padded query rows: what the loss sees.
  auto real_rows = padding.logical_not().to(torch::kDouble).view({2, 1, 6, 1});  // [2, 1, 6, 1]
  auto upstream = torch::randn({2, 3, 6, 5}, torch::kDouble) * real_rows;        // [2, 3, 6, 5]
  auto make = [](std::vector<int64_t> shape) { return torch::randn(shape, torch::kDouble).requires_grad_(); };
  auto q = make({2, 3, 6, 8}), k = make({2, 3, 6, 8}), v = make({2, 3, 6, 5});
  for (const auto& mask : {causal, both}) {
    torch::Tensor weights;
    auto explicit_out = scaled_dot_product_attention(q, k, v, mask, 0.0, false, &weights);
    auto hinted = scaled_dot_product_attention(q, k, v, mask, 0.0, false, nullptr, /*causal=*/true);
    CHECK(max_abs_diff(hinted * real_rows, explicit_out * real_rows) < 1e-10);
    auto a = torch::autograd::grad({(explicit_out * upstream).sum()}, {q, k, v});
    auto b = torch::autograd::grad({(hinted * upstream).sum()}, {q, k, v});
    for (size_t i = 0; i < 3; ++i) CHECK(max_abs_diff(a[i], b[i]) < 1e-10);
  }
  // Through a whole decoder (double: off our float CPU kernel, onto the
  // fused one): its real positions equal the captured, explicit path's.
  auto config = load_model_config(std::string(AIAYN_SOURCE_DIR) + "/configs/tiny.json");
  config.src_vocab = config.tgt_vocab = 20;
  Transformer model(config);
  model->to(torch::kDouble);
  model->eval();
  auto src = torch::randint(4, 20, {2, 5});  // [2, 5]
  auto tgt = torch::randint(4, 20, {2, 6});  // [2, 6]
  tgt.masked_fill_(padding, kPadId);
  const auto src_padding = padding_mask(src, kPadId);  // [2, 5]
  auto memory = model->encode(src, src_padding);       // [2, 5, d_model]
  AttentionMaps maps;
  auto fused = model->decode(tgt, memory, src_padding, padding);                     // [2, 6, d]
  auto captured = model->decode(tgt, memory, src_padding, padding, nullptr, &maps);  // [2, 6, d]
  auto real = padding.logical_not().unsqueeze(-1).to(torch::kDouble);                // [2, 6, 1]
  CHECK(max_abs_diff(fused * real, captured * real) < 1e-10);
}
