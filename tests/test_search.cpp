// Search: greedy = beam 1, cached = uncached, printed score = forced score,
// and the length limit.
#include <catch2/catch.hpp>

#include "models/transformer.h"
#include "src/error.h"
#include "src/search.h"
#include "tests/test_util.h"

using namespace aiayn;

namespace {

Transformer random_model(uint64_t seed, int64_t vocab = 24) {
  torch::manual_seed(seed);
  auto c = load_model_config(std::string(AIAYN_SOURCE_DIR) + "/configs/tiny.json");
  c.src_vocab = c.tgt_vocab = vocab;
  Transformer m(c);
  m->eval();
  return m;
}

// [B, S] sources with eos and right padding, lengths 1..8.
torch::Tensor random_sources(int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  auto src = torch::full({batch, 9}, kPadId, torch::kLong);
  for (int64_t b = 0; b < batch; ++b) {
    int64_t n = 1 + (b * 3) % 8;
    src[b].narrow(0, 0, n).copy_(torch::randint(4, 24, {n}));
    src[b][n] = kEosId;
  }
  return src;
}

}  // namespace

TEST_CASE("greedy search equals beam search with beam 1", "[search]") {
  for (uint64_t seed : {1, 2, 3}) {
    auto m = random_model(seed);
    auto src = random_sources(7, seed);
    SearchOptions o;
    o.max_len_b = 12;
    o.beam = 1;
    auto greedy = greedy_search(*m, src, o);
    auto beam = beam_search(*m, src, o);
    for (size_t i = 0; i < greedy.size(); ++i) {
      REQUIRE(beam[i].size() == 1);
      CHECK(greedy[i][0].tokens == beam[i][0].tokens);
      CHECK(greedy[i][0].score == Approx(beam[i][0].score).margin(1e-4));
    }
  }
}

TEST_CASE("cached decoding equals recomputing the prefix", "[search][cache]") {
  auto m = random_model(4);
  auto src = random_sources(6, 4);
  for (int64_t beam : {1, 4}) {
    SearchOptions cached;
    cached.beam = beam;
    cached.max_len_b = 10;
    auto uncached = cached;
    uncached.use_cache = false;
    auto a = search(*m, src, cached), b = search(*m, src, uncached);
    for (size_t i = 0; i < a.size(); ++i) {
      REQUIRE(a[i].size() == b[i].size());
      CHECK(a[i][0].tokens == b[i][0].tokens);
      CHECK(std::abs(a[i][0].log_prob - b[i][0].log_prob) <= 1e-5);
    }
  }
}

TEST_CASE("the score of a hypothesis is its forced-decoding log-probability", "[search][score]") {
  auto m = random_model(5);
  auto src = random_sources(8, 5);
  SearchOptions o;
  o.beam = 4;
  o.nbest = 3;
  o.max_len_b = 10;
  auto results = beam_search(*m, src, o);
  for (int64_t b = 0; b < src.size(0); ++b) {
    REQUIRE_FALSE(results[b].empty());
    for (const auto& h : results[b]) {
      auto forced = forced_log_probs(*m, src[b].unsqueeze(0), {h.tokens});
      CHECK(std::abs(forced[0] - h.log_prob) <= 1e-4);
      CHECK(h.score == Approx(h.log_prob / length_penalty(h.tokens.size() + 1, 0.6)));
    }
    for (size_t j = 1; j < results[b].size(); ++j) CHECK(results[b][j - 1].score >= results[b][j].score);
  }
}

TEST_CASE("no hypothesis runs past the length limit", "[search][length]") {
  auto m = random_model(6);
  auto src = random_sources(5, 6);
  SearchOptions o;
  o.max_len_a = 0.5;
  o.max_len_b = 3;
  for (int64_t beam : {1, 3}) {
    o.beam = beam;
    auto results = search(*m, src, o);
    int at_limit = 0;
    for (int64_t b = 0; b < src.size(0); ++b) {
      const int64_t source_length = src[b].ne(kPadId).sum().item<int64_t>() - 1;
      const int64_t limit = max_output_length(o, source_length, 128);
      for (const auto& h : results[b]) {
        CHECK(static_cast<int64_t>(h.tokens.size()) <= limit);
        at_limit += static_cast<int64_t>(h.tokens.size()) == limit;
      }
    }
    // An untrained model rarely picks eos: some hypotheses are cut at the limit.
    CHECK(at_limit > 0);
  }
}

TEST_CASE("beam search finds hypotheses at least as probable as greedy", "[search]") {
  auto m = random_model(7);
  auto src = random_sources(8, 7);
  SearchOptions o;
  o.length_penalty = 0.0;
  o.max_len_b = 10;
  o.beam = 1;
  auto greedy = search(*m, src, o);
  o.beam = 8;
  auto beam = search(*m, src, o);
  int better_or_equal = 0;
  for (size_t i = 0; i < greedy.size(); ++i) better_or_equal += beam[i][0].score >= greedy[i][0].score - 1e-5;
  CHECK(better_or_equal == static_cast<int>(greedy.size()));
}

TEST_CASE("int8 linear layers approximate the float ones", "[search][int8]") {
  INFO("engine " << select_int8_engine());
  torch::manual_seed(11);
  auto w = torch::randn({96, 64}), b = torch::randn({96}), x = torch::randn({5, 3, 64});
  auto exact = torch::nn::functional::linear(x, w, b);  // [5, 3, 96]
  auto approx = Int8Linear(w, b)(x);                    // [5, 3, 96]
  REQUIRE(approx.sizes() == exact.sizes());
  const double error = (approx - exact).abs().max().item<double>();
  // 8-bit weights and 7-bit inputs: errors near 1% of the outputs' range.
  CHECK(error <= 0.03 * exact.abs().max().item<double>());
  CHECK(error > 0.0);  // really computed in integers

  // A whole model (random, so no margin between its choices): log-probs
  // within 0.2 of the float ones (0.08 measured here),
  // and every projection, the pre-softmax one included, runs in int8.
  auto f = random_model(4), q = random_model(4);
  q->quantize_int8();
  CHECK(q->is_int8());
  // The float matrices the int8 copies replace are gone (peak RSS of --int8).
  auto params = q->named_parameters();
  CHECK(params["encoder.layers.0.self_attn.in_proj_weight"].numel() == 0);
  CHECK(params["decoder.layers.0.feed_forward.linear2.weight"].numel() == 0);
  CHECK(params["src_embed.weight"].numel() > 0);  // the embedding is also the lookup table
  auto src = random_sources(6, 4);
  auto tgt = torch::randint(4, 24, {6, 7});
  torch::NoGradGuard no_grad;
  auto lf = torch::log_softmax(f->forward(src, tgt), -1);  // [6, 7, V]
  auto lq = torch::log_softmax(q->forward(src, tgt), -1);  // [6, 7, V]
  const double drift = (lf - lq).abs().max().item<double>();
  INFO("max |log-prob difference| " << drift);
  CHECK(drift > 0.0);
  CHECK(drift <= 0.2);
}

TEST_CASE("search refuses out-of-range options, naming the option", "[search][bad-input]") {
  auto m = random_model(7);
  auto src = random_sources(2, 8);
  auto refused = [&](auto change, const std::string& message) {
    SearchOptions o;
    change(o);
    INFO(message);
    CHECK_THROWS_AS(search(*m, src, o), InputError);
    CHECK_THROWS_WITH(search(*m, src, o), Catch::StartsWith(message));
  };
  refused([](SearchOptions& o) { o.beam = 0; }, "--beam 0: must be at least 1");
  refused([](SearchOptions& o) { o.nbest = 0; }, "--nbest 0: must be at least 1");
  refused([](SearchOptions& o) { o.beam = 2, o.nbest = 3; }, "--nbest 3: exceeds --beam 2");
  refused([](SearchOptions& o) { o.length_penalty = -1; }, "--alpha -1: must be a finite number >= 0");
  refused([](SearchOptions& o) { o.length_penalty = std::nan(""); }, "--alpha nan");
  refused([](SearchOptions& o) { o.max_len_a = -0.5; }, "--max-len-a -0.5: must be a finite number >= 0");
  refused([](SearchOptions& o) { o.max_len_b = -1; }, "--max-len-b -1: must be >= 0");
  // The defaults (the paper's beam 4, alpha 0.6) pass.
  SearchOptions fine;
  CHECK_NOTHROW(fine.validate());
  CHECK(search(*m, src, fine).size() == 2);
}
