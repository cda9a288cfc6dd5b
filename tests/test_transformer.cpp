// The whole model: parameter counts (Table 3), weight tying (3.4), masks
// (3.2.3) and incremental decoding.
#include <catch2/catch.hpp>

#include "models/transformer.h"
#include "src/common/model_config_json.h"
#include "tests/test_util.h"

using namespace aiayn;
using test::max_abs_diff;

namespace {

ModelConfig config_named(const std::string& name, int64_t vocab) {
  auto c = load_model_config(std::string(AIAYN_SOURCE_DIR) + "/configs/" + name + ".json");
  c.src_vocab = c.tgt_vocab = vocab;
  return c;
}

ModelConfig tiny(int64_t vocab = 20) {
  auto c = config_named("tiny", vocab);
  c.p_drop = 0.0;
  return c;
}

}  // namespace

TEST_CASE("parameter counts match the closed form (Table 3)", "[model][params]") {
  // 37,000-token joint vocabulary with all three matrices tied, as the paper.
  auto base = config_named("base", 37000);
  Transformer base_model(base);
  CHECK(base_model->parameter_count() == expected_parameter_count(base));
  CHECK(base_model->parameter_count() == 63082496);  // paper: 65M
  auto big = config_named("big", 37000);
  Transformer big_model(big);
  CHECK(big_model->parameter_count() == expected_parameter_count(big));
  CHECK(big_model->parameter_count() == 214245376);  // paper: 213M
  WARN(base_model->summary());
  WARN(big_model->summary());
}

TEST_CASE("every Table 3 variant is expressible and counted exactly", "[model][params]") {
  auto base = config_named("base", 1000);
  std::vector<ModelConfig> variants;
  for (auto [h, dk] : {std::pair{1, 512}, {4, 128}, {16, 32}, {32, 16}}) {  // row A
    auto c = base;
    c.heads = h;
    c.d_k = c.d_v = dk;
    variants.push_back(c);
  }
  for (int64_t dk : {16, 32}) {  // row B
    auto c = base;
    c.d_k = dk;
    variants.push_back(c);
  }
  for (auto [n, d, dff] : {std::tuple{2, 512, 2048}, {4, 256, 1024}, {8, 1024, 4096}}) {  // C
    auto c = base;
    c.encoder_layers = c.decoder_layers = n;
    c.d_model = d;
    c.d_ff = dff;
    c.d_k = c.d_v = d / c.heads;
    variants.push_back(c);
  }
  for (double p : {0.0, 0.2}) {  // row D
    auto c = base;
    c.p_drop = p;
    variants.push_back(c);
  }
  auto learned = base;  // row E
  learned.positional = Positional::learned;
  variants.push_back(learned);
  auto untied = base;
  untied.share_embeddings = false;
  untied.tie_output = false;
  untied.tgt_vocab = 1200;
  variants.push_back(untied);
  auto pre_ln = base;
  pre_ln.norm_first = true;
  variants.push_back(pre_ln);
  for (const auto& c : variants) {
    validate_model_config(c, "variant");
    Transformer m(c);
    CHECK(m->parameter_count() == expected_parameter_count(c));
  }
}

TEST_CASE("tied weights are one tensor", "[model][tying]") {
  auto c = tiny();
  Transformer m(c);
  CHECK(m->tgt_embed->weight.data_ptr() == m->src_embed->weight.data_ptr());
  CHECK(!m->generator);
  auto h = torch::randn({1, 2, c.d_model});
  CHECK(max_abs_diff(m->logits(h), torch::matmul(h, m->src_embed->weight.t())) < 1e-6);
  // Untied: three separate matrices.
  c.share_embeddings = false;
  c.tie_output = false;
  Transformer u(c);
  CHECK(u->tgt_embed->weight.data_ptr() != u->src_embed->weight.data_ptr());
  CHECK(u->generator);
}

TEST_CASE("embeddings are scaled by sqrt(d_model) and added to sinusoids", "[model]") {
  auto c = tiny();
  Transformer m(c);
  m->eval();
  auto ids = torch::tensor({{5, 6, 7}}, torch::kLong);
  auto x = m->src_embed(ids);
  CHECK(max_abs_diff(x, m->src_embed->weight.index_select(0, ids[0]).unsqueeze(0) *
                            std::sqrt(double(c.d_model))) < 1e-5);
  auto pe = sinusoid_table(4, 8);
  CHECK(pe[0][0].item<float>() == 0.0f);  // sin(0)
  CHECK(pe[0][1].item<float>() == 1.0f);  // cos(0)
  CHECK(pe[3][2].item<float>() == Approx(std::sin(3.0 / std::pow(10000.0, 2.0 / 8))));
  CHECK(pe[3][3].item<float>() == Approx(std::cos(3.0 / std::pow(10000.0, 2.0 / 8))));
}

TEST_CASE("decoder output at position i ignores targets after i", "[model][mask]") {
  torch::manual_seed(4);
  Transformer m(tiny());
  m->eval();
  torch::NoGradGuard no_grad;
  auto src = torch::randint(4, 20, {3, 7}, torch::kLong);
  auto tgt = torch::randint(4, 20, {3, 9}, torch::kLong);
  auto out = m->forward(src, tgt);
  for (int64_t i = 0; i < 8; ++i) {
    auto changed = tgt.clone();
    changed.narrow(1, i + 1, 9 - i - 1).copy_(torch::randint(4, 20, {3, 9 - i - 1}));
    auto out2 = m->forward(src, changed);
    CHECK(max_abs_diff(out.narrow(1, 0, i + 1), out2.narrow(1, 0, i + 1)) < 1e-5);
    CHECK(max_abs_diff(out.narrow(1, i + 1, 1), out2.narrow(1, i + 1, 1)) > 1e-4);
  }
}

TEST_CASE("padding content and amount do not change real positions", "[model][mask]") {
  torch::manual_seed(5);
  Transformer m(tiny());
  m->eval();
  torch::NoGradGuard no_grad;
  auto src = torch::randint(4, 20, {2, 5}, torch::kLong);
  auto tgt = torch::randint(4, 20, {2, 6}, torch::kLong);
  auto reference = m->forward(src, tgt);
  for (int64_t extra : {1, 4, 11}) {
    auto src_padded = torch::cat({src, torch::full({2, extra}, kPadId, torch::kLong)}, 1);
    auto tgt_padded = torch::cat({tgt, torch::full({2, extra}, kPadId, torch::kLong)}, 1);
    auto out = m->forward(src_padded, tgt_padded);
    CHECK(max_abs_diff(out.narrow(1, 0, 6), reference) < 1e-5);
    // The encoder ignores the content of padded positions altogether: feed
    // garbage under a padding mask and the real positions do not move.
    auto padding = padding_mask(src_padded, kPadId);
    auto garbage = src_padded.masked_fill(padding, 7);
    auto memory_a = m->encode(src_padded, padding);
    auto memory_b = m->encode(garbage, padding);
    CHECK(max_abs_diff(memory_a.narrow(1, 0, 5), memory_b.narrow(1, 0, 5)) < 1e-5);
  }
}

TEST_CASE("incremental decoding equals decoding the whole prefix", "[model][cache]") {
  torch::manual_seed(6);
  for (bool norm_first : {false, true}) {
    auto c = tiny();
    c.norm_first = norm_first;
    Transformer m(c);
    m->eval();
    torch::NoGradGuard no_grad;
    auto src = torch::randint(4, 20, {3, 6}, torch::kLong);
    src.index_put_({0, torch::indexing::Slice(4)}, kPadId);
    auto padding = padding_mask(src, kPadId);
    auto tgt = torch::randint(4, 20, {3, 8}, torch::kLong);
    auto memory = m->encode(src, padding);
    auto full = m->logits(m->decode(tgt, memory, padding));
    DecoderState state;
    for (int64_t t = 0; t < 8; ++t) {
      auto step = m->logits(m->decode(tgt.narrow(1, t, 1), memory, padding, {}, &state));
      CHECK(max_abs_diff(step, full.narrow(1, t, 1)) < 1e-5);
    }
    CHECK(state.steps == 8);
    // Reordering the state by beam index reorders the next step's output.
    auto index = torch::tensor({2, 0, 0}, torch::kLong);
    state.select(index);
    auto next = torch::full({3, 1}, 9, torch::kLong);
    auto after =
        m->logits(m->decode(next, memory.index_select(0, index), padding.index_select(0, index), {}, &state));
    auto expected = m->logits(m->decode(torch::cat({tgt.index_select(0, index), next}, 1),
                                        memory.index_select(0, index), padding.index_select(0, index)));
    CHECK(max_abs_diff(after, expected.narrow(1, 8, 1)) < 1e-5);
  }
}

TEST_CASE("attention capture returns every map and changes nothing", "[model][capture]") {
  torch::manual_seed(7);
  auto c = tiny();
  Transformer m(c);
  m->eval();
  torch::NoGradGuard no_grad;
  auto src = torch::randint(4, 20, {2, 5}, torch::kLong);
  src.index_put_({1, 4}, kPadId);
  auto tgt = torch::randint(4, 20, {2, 4}, torch::kLong);
  auto padding = padding_mask(src, kPadId);
  AttentionMaps maps;
  auto memory = m->encode(src, padding, &maps);
  auto hidden = m->decode(tgt, memory, padding, {}, nullptr, &maps);
  CHECK(max_abs_diff(m->logits(hidden), m->forward(src, tgt)) < 1e-6);
  REQUIRE(maps.encoder.size() == size_t(c.encoder_layers));
  REQUIRE(maps.decoder.size() == size_t(c.decoder_layers));
  REQUIRE(maps.cross.size() == size_t(c.decoder_layers));
  CHECK(maps.cross[0].sizes() == torch::IntArrayRef({2, c.heads, 4, 5}));
  for (const auto& w : maps.decoder) CHECK(w.triu(1).abs().max().item<float>() == 0.0f);
  for (const auto& w : maps.cross)
    CHECK(w.index({1, torch::indexing::Ellipsis, 4}).abs().max().item<float>() == 0.0f);
}

TEST_CASE("dropout: rate, scaling, gradient, and repeatable for any thread count", "[dropout]") {
  const double p = 0.1;
  Dropout dropout(p);
  auto x = torch::rand({1000, 1000}) + 0.5;  // no zeros, so a zero in the output means dropped
  dropout->eval();
  CHECK(dropout(x).equal(x));
  dropout->train();

  torch::manual_seed(7);
  auto leaf = x.clone().requires_grad_();
  auto out = dropout(leaf);
  auto dropped = out.eq(0);
  const double rate = dropped.to(torch::kDouble).mean().item<double>();
  CHECK(std::abs(rate - p) < 0.002);  // 1e6 draws: the standard deviation is 0.0003
  auto kept = ~dropped;
  CHECK(max_abs_diff(out.masked_select(kept), x.masked_select(kept) / (1 - p)) < 1e-5);
  // Neighbouring elements and rows are not correlated (a broken counter would repeat patterns).
  auto d = dropped.to(torch::kDouble);
  CHECK(std::abs((d.narrow(1, 0, 999) * d.narrow(1, 1, 999)).mean().item<double>() - p * p) < 0.002);
  CHECK(std::abs((d.narrow(0, 0, 999) * d.narrow(0, 1, 999)).mean().item<double>() - p * p) < 0.002);

  auto w = torch::randn({1000, 1000});
  auto grad = torch::autograd::grad({(out * w).sum()}, {leaf})[0];
  CHECK(max_abs_diff(grad, w * kept.to(torch::kFloat) / (1 - p)) < 1e-5);

  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  torch::manual_seed(7);
  auto again = dropout(x);
  torch::set_num_threads(threads);
  CHECK(again.equal(out.detach()));
  CHECK(!dropout(x).equal(again));  // the next call draws a new mask
}
