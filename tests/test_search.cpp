// Search: greedy = beam 1, cached = uncached, printed score = forced score,
// and the length limit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>

#include "models/packed_int8_linear.h"
#include "models/projection.h"
#include "models/transformer.h"
#include "src/common/error.h"
#include "src/common/model_config_json.h"
#include "src/decode/alignment.h"
#include "src/decode/beam_candidates.h"
#include "src/decode/beam_rule.h"
#include "src/decode/ensemble.h"
#include "src/decode/forced_prefix.h"
#include "src/decode/sampling.h"
#include "src/decode/search.h"
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
    torch::NoGradGuard no_grad;
    TransformerStepModel for_greedy(*m, src, true), for_beam(*m, src, true);
    auto greedy = greedy_search(for_greedy, source_lengths(src), o);
    auto beam = beam_search(for_beam, source_lengths(src), o);
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
  auto results = search(*m, src, o);
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

TEST_CASE("a projection reads its parameters at each call, as float or int8", "[search][int8]") {
  namespace F = torch::nn::functional;
  torch::manual_seed(12);
  auto w = torch::randn({6, 4}), b = torch::randn({6}), x = torch::randn({2, 4});
  Projection all(w, b), rows(w, b, 2, 3), no_bias(w, {});
  CHECK(torch::equal(all(x), F::linear(x, w, b)));
  CHECK(torch::equal(rows(x), F::linear(x, w.narrow(0, 2, 3), b.narrow(0, 2, 3))));
  CHECK(torch::equal(no_bias(x), F::linear(x, w)));
  // An update in place (an optimizer step, loading weights) is seen.
  w.mul_(2);
  CHECK(torch::equal(rows(x), F::linear(x, w.narrow(0, 2, 3), b.narrow(0, 2, 3))));
  rows.quantize();
  CHECK(rows.quantized());
  CHECK_FALSE(all.quantized());
  auto int8 = rows(x);  // [2, 3]
  CHECK(int8.sizes() == torch::IntArrayRef({2, 3}));
  auto exact = F::linear(x, w.narrow(0, 2, 3), b.narrow(0, 2, 3));  // [2, 3]
  CHECK((int8 - exact).abs().max().item<double>() <= 0.03 * exact.abs().max().item<double>());
  // From then on the int8 copy answers, whatever happens to the float weight.
  w.zero_();
  CHECK(torch::equal(rows(x), int8));
}

TEST_CASE("a packed model decodes as the float one, keeps its copy and refuses gradients",
          "[search][packed]") {
  if (!PackedLinear::available()) {
    WARN("no packed kernel on this CPU: nothing to test");
    return;
  }
  auto f = random_model(5), p = random_model(5);
  p->pack_weights();
  CHECK(p->is_packed());
  CHECK_FALSE(f->is_packed());
  auto src = random_sources(6, 5);
  auto tgt = torch::randint(4, 24, {6, 7});
  {
    torch::NoGradGuard no_grad;
    auto lf = torch::log_softmax(f->forward(src, tgt), -1);  // [6, 7, V]
    auto lp = torch::log_softmax(p->forward(src, tgt), -1);  // [6, 7, V]
    CHECK((lf - lp).abs().max().item<double>() <= 1e-4);
    // Beam search finds hypotheses as good (a random model has near-ties,
    // which rounding may order either way, so scores are compared).
    SearchOptions o;
    o.beam = 4;
    const auto beams_f = search(*f, src, o), beams_p = search(*p, src, o);
    for (size_t s = 0; s < beams_f.size(); ++s)
      CHECK(std::abs(beams_f[s][0].score - beams_p[s][0].score) <= 1e-3);
  }
  // The packed copy answers from then on, whatever happens to the parameter.
  auto w = torch::randn({40, 24}), b = torch::randn({40}), x = torch::randn({3, 24});
  Projection rows(w, b, 8, 20);
  rows.pack();
  CHECK(rows.packed());
  auto before = rows(x);  // [3, 20]
  CHECK((before - torch::nn::functional::linear(x, w.narrow(0, 8, 20), b.narrow(0, 8, 20)))
            .abs()
            .max()
            .item<double>() <= 1e-4);
  w.zero_();
  CHECK(torch::equal(rows(x), before));
  // Training through a packed copy would silently learn nothing: refused.
  Projection packed(torch::randn({8, 4}, torch::requires_grad()), torch::Tensor());
  packed.pack();
  CHECK_THROWS_WITH(packed(torch::randn({2, 4}, torch::requires_grad())), Catch::Contains("inference only"));
  // int8 wins over packing, in either order.
  auto q = random_model(6);
  q->quantize_int8();
  q->pack_weights();
  CHECK(q->is_int8());
  CHECK_FALSE(q->is_packed());
}

TEST_CASE("search refuses out-of-range options, naming the option", "[search][bad-input]") {
  auto m = random_model(7);
  auto src = random_sources(2, 8);
  // Keys, not flags: each front end spells them its own way (run_app: --key).
  auto refused = [&](auto change, const std::string& key, const std::string& message) {
    SearchOptions o;
    change(o);
    INFO(message);
    CHECK_THROWS_AS(search(*m, src, o), OptionError);
    CHECK_THROWS_WITH(search(*m, src, o), Catch::StartsWith(message));
    try {
      o.validate();
    } catch (const OptionError& e) {
      CHECK(e.key == key);
      CHECK_THAT(e.render([](const std::string& k) { return "--" + k; }),
                 Catch::StartsWith("--" + key + " "));
    }
  };
  refused([](SearchOptions& o) { o.beam = 0; }, "beam", "beam 0: must be at least 1");
  refused([](SearchOptions& o) { o.nbest = 0; }, "nbest", "nbest 0: must be at least 1");
  refused([](SearchOptions& o) { o.beam = 2, o.nbest = 3; }, "nbest", "nbest 3: exceeds beam 2");
  refused([](SearchOptions& o) { o.length_penalty = -1; }, "alpha", "alpha -1: must be a finite number >= 0");
  refused([](SearchOptions& o) { o.length_penalty = std::nan(""); }, "alpha", "alpha nan");
  refused([](SearchOptions& o) { o.max_len_a = -0.5; }, "max-len-a",
          "max-len-a -0.5: must be a finite number >= 0");
  refused([](SearchOptions& o) { o.max_len_b = -1; }, "max-len-b", "max-len-b -1: must be >= 0");
  SearchOptions two_options;
  two_options.beam = 2, two_options.nbest = 3;
  try {
    two_options.validate();
    FAIL("nbest 3 over beam 2 passed");
  } catch (const OptionError& e) {
    CHECK(e.render([](const std::string& k) { return "--" + k; }) == "--nbest 3: exceeds --beam 2");
  }
  // A path's braces stay as written when doubled: only {key} names an option.
  const OptionError in_path("nbest", " 3: exceeds the beam in runs/{{exp}/decoding.json; give {beam}");
  CHECK(in_path.render([](const std::string& k) { return "--" + k; }) ==
        "--nbest 3: exceeds the beam in runs/{exp}/decoding.json; give --beam");
  // The defaults (the paper's beam 4, alpha 0.6) pass.
  SearchOptions fine;
  CHECK_NOTHROW(fine.validate());
  CHECK(search(*m, src, fine).size() == 2);
}

// ---- The decoding seam: search against a scripted decoder ----------------
// Vocabulary: pad 0, unk 1, bos 2, eos 3, words 4..7. A script gives the
// next-token probabilities of each (sentence, prefix); the scripted model
// follows its rows through select() as the Transformer's cache does.

namespace {

constexpr int64_t kA = 4, kB = 5, kX = 6;
using Script = std::function<std::map<int64_t, double>(int64_t sentence, const std::vector<int64_t>& prefix)>;

class ScriptedStepModel : public StepModel {
 public:
  ScriptedStepModel(Script script, int64_t sentences, int64_t rows_per_sentence)
      : script_(std::move(script)) {
    for (int64_t r = 0; r < sentences * rows_per_sentence; ++r) {
      row_sentence_.push_back(r / rows_per_sentence);
    }
  }
  int64_t vocab() const override { return 8; }
  int64_t max_positions() const override { return 32; }
  torch::Device device() const override { return torch::kCPU; }
  torch::Tensor step(const torch::Tensor& history) override {
    REQUIRE(history.size(0) == static_cast<int64_t>(row_sentence_.size()));
    rows_seen.push_back(history.size(0));
    auto out = torch::full({history.size(0), vocab()}, -std::numeric_limits<float>::infinity());
    for (int64_t r = 0; r < history.size(0); ++r) {
      auto h = history[r].contiguous();
      std::vector<int64_t> prefix(h.data_ptr<int64_t>() + 1, h.data_ptr<int64_t>() + h.numel());
      for (auto [token, p] : script_(row_sentence_[r], prefix)) {
        if (p > 0) out[r][token] = std::log(p);
      }
    }
    return out;  // [rows, V]
  }
  void select(const torch::Tensor& rows, const torch::Tensor&) override {
    std::vector<int64_t> kept;
    for (int64_t i = 0; i < rows.size(0); ++i) kept.push_back(row_sentence_[rows[i].item<int64_t>()]);
    row_sentence_ = std::move(kept);
  }
  std::vector<int64_t> rows_seen;  // rows fed at each step

 private:
  Script script_;
  std::vector<int64_t> row_sentence_;
};

using Tokens = std::vector<int64_t>;

// a .6 / b .4; after a: eos .5, a .3, b .2; after b: eos .1, a .9; then eos.
// Greedy takes "a" (.3 in all); beam 2 finds "b a" (.36), then "a".
std::map<int64_t, double> two_paths(int64_t, const Tokens& prefix) {
  if (prefix.empty()) return {{kA, 0.6}, {kB, 0.4}};
  if (prefix == Tokens{kA}) return {{kEosId, 0.5}, {kA, 0.3}, {kB, 0.2}};
  if (prefix == Tokens{kB}) return {{kEosId, 0.1}, {kA, 0.9}};
  return {{kEosId, 1.0}};
}

SearchOptions scripted_options(int64_t beam, int64_t nbest, double alpha) {
  SearchOptions o;
  o.beam = beam;
  o.nbest = nbest;
  o.length_penalty = alpha;
  return o;
}

}  // namespace

TEST_CASE("beam search on a scripted decoder returns the exact hypotheses and scores", "[search][seam]") {
  for (double alpha : {0.0, 1.0}) {
    INFO("alpha " << alpha);
    ScriptedStepModel model(two_paths, 1, 2);
    auto result = search(model, {5}, scripted_options(2, 2, alpha));
    REQUIRE(result.size() == 1);
    REQUIRE(result[0].size() == 2);
    CHECK(result[0][0].tokens == Tokens{kB, kA});
    CHECK(result[0][0].log_prob == Approx(std::log(0.36)).epsilon(1e-6));
    // GNMT's penalty over the length with eos: 3 and 2 here.
    CHECK(result[0][0].score == Approx(std::log(0.36) / std::pow(8.0 / 6.0, alpha)).epsilon(1e-6));
    CHECK(result[0][1].tokens == Tokens{kA});
    CHECK(result[0][1].log_prob == Approx(std::log(0.3)).epsilon(1e-6));
    CHECK(result[0][1].score == Approx(std::log(0.3) / std::pow(7.0 / 6.0, alpha)).epsilon(1e-6));
  }
  ScriptedStepModel greedy(two_paths, 1, 1);
  auto g = search(greedy, {5}, scripted_options(1, 1, 0.6));
  CHECK(g[0][0].tokens == Tokens{kA});
  CHECK(g[0][0].log_prob == Approx(std::log(0.3)).epsilon(1e-6));
}

TEST_CASE("the length penalty decides between a short and a long hypothesis", "[search][seam]") {
  // "a" then eos: .5; "b b b" then eos: .4 * .9 * .9 = .324.
  Script script = [](int64_t, const Tokens& prefix) -> std::map<int64_t, double> {
    if (prefix.empty()) return {{kA, 0.5}, {kB, 0.4}, {kX, 0.1}};
    if (prefix[0] == kA || prefix.size() == 3) return {{kEosId, 1.0}};
    return {{kB, 0.9}, {kEosId, 0.1}};
  };
  // ln .5 / (7/6)^alpha against ln .324 / (9/6)^alpha: the long one wins
  // once alpha > ln(ln .324 / ln .5) / ln(9/7) = 1.93.
  ScriptedStepModel plain(script, 1, 3);
  CHECK(search(plain, {5}, scripted_options(3, 1, 0.6))[0][0].tokens == Tokens{kA});
  ScriptedStepModel favoured(script, 1, 3);
  CHECK(search(favoured, {5}, scripted_options(3, 1, 2.5))[0][0].tokens == Tokens{kB, kB, kB});
}

TEST_CASE("beam search does not stop at K early eos far below its best beam (the 2030- bug)",
          "[search][seam]") {
  // The right output is five tokens, each at .9; eos ranks second at every
  // step (.06) and the other word third. Stopping once K hypotheses have
  // finished (fairseq's rule) returned the empty or one-token output.
  const Tokens right{kA, kB, kA, kB, kA};
  Script script = [&](int64_t, const Tokens& prefix) -> std::map<int64_t, double> {
    const bool on_path =
        prefix.size() <= right.size() && std::equal(prefix.begin(), prefix.end(), right.begin());
    if (!on_path) return {{kEosId, 0.5}, {kX, 0.5}};
    if (prefix.size() == right.size()) return {{kEosId, 1.0}};
    return {{right[prefix.size()], 0.9}, {kEosId, 0.06}, {kX, 0.04}};
  };
  for (int64_t beam : {2, 4}) {
    INFO("beam " << beam);
    ScriptedStepModel model(script, 1, beam);
    auto best = search(model, {3}, scripted_options(beam, 1, 0.6))[0][0];
    CHECK(best.tokens == right);
    CHECK(best.log_prob == Approx(5 * std::log(0.9)).epsilon(1e-6));
  }
}

TEST_CASE("the length limit forces eos and scores it", "[search][seam][length]") {
  // A decoder that never wants to stop: eos .01 everywhere.
  Script script = [](int64_t, const Tokens&) -> std::map<int64_t, double> {
    return {{kA, 0.7}, {kB, 0.29}, {kEosId, 0.01}};
  };
  for (int64_t beam : {1, 3}) {
    INFO("beam " << beam);
    auto o = scripted_options(beam, 1, 0.6);
    o.max_len_a = 0.0;
    o.max_len_b = 3;
    ScriptedStepModel model(script, 1, beam);
    auto best = search(model, {9}, o)[0][0];
    CHECK(best.tokens == Tokens{kA, kA, kA});
    CHECK(best.log_prob == Approx(3 * std::log(0.7) + std::log(0.01)).epsilon(1e-6));
  }
}

TEST_CASE("sentences of a batch keep their own scripts, limits and order", "[search][seam]") {
  // Sentence 0 would end at once, but an empty output is barred (fairseq's
  // min_len 1), so it ends after one token; sentence 1 follows two_paths; sentence 2 never
  // stops and meets its limit of 2 * 1 + 1 tokens (alpha 1 makes its forced
  // end beat the empty output).
  Script script = [](int64_t sentence, const Tokens& prefix) -> std::map<int64_t, double> {
    if (sentence == 0) return {{kEosId, 0.8}, {kX, 0.2}};
    if (sentence == 1) return two_paths(sentence, prefix);
    return {{kX, 0.99}, {kEosId, 0.01}};
  };
  for (int64_t beam : {1, 2}) {
    INFO("beam " << beam);
    auto o = scripted_options(beam, 1, 1.0);
    o.max_len_a = 2.0;
    o.max_len_b = 1;
    ScriptedStepModel model(script, 3, beam);
    auto result = search(model, {4, 4, 1}, o);
    REQUIRE(result.size() == 3);
    CHECK(result[0][0].tokens == Tokens{kX});
    CHECK(result[1][0].tokens == (beam == 1 ? Tokens{kA} : Tokens{kB, kA}));
    CHECK(result[2][0].tokens == Tokens{kX, kX, kX});
    // Finished sentences leave the batch: the last steps feed sentence 2 alone.
    CHECK(model.rows_seen.front() == 3 * beam);
    CHECK(model.rows_seen.back() == beam);
  }
}

TEST_CASE("the beam rule: eos counts among the top K only, and -inf ends the list", "[search][seam]") {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Candidate> ranked{{0, kA, -0.5}, {1, kEosId, -0.6}, {0, kEosId, -0.7}, {1, kB, -0.8}};
  auto step = split_candidates(ranked, 2, kEosId);
  REQUIRE(step.ended.size() == 1);  // the eos ranked 3rd of 2K does not count
  CHECK(step.ended[0].beam == 1);
  REQUIRE(step.live.size() == 2);
  CHECK(step.live[0].token == kA);
  CHECK(step.live[1].token == kB);
  CHECK(step.live[1].beam == 1);
  CHECK(step.live[0].log_prob == static_cast<float>(-0.5));  // the loop's precision

  std::vector<Candidate> with_eos{{1, kEosId, -0.2}, {0, kA, -0.5}, {0, kB, -inf}, {1, kA, -2.0}};
  step = split_candidates(with_eos, 2, kEosId);
  REQUIRE(step.ended.size() == 1);
  CHECK(step.ended[0].beam == 1);
  REQUIRE(step.live.size() == 1);  // -inf ends the list before the 4th
  fill_beams(step.live, 2);
  REQUIRE(step.live.size() == 2);
  CHECK(step.live[1].log_prob == -inf);

  // Done: no live beam left, or the best finished beats the best live beam
  // even at the longest length.
  auto o = scripted_options(2, 1, 1.0);
  std::vector<Hypothesis> finished{ended_hypothesis({kA}, -0.1, 1.0)};
  CHECK(sentence_done(finished, {}, 3, 10, o));
  CHECK(sentence_done(finished, {{0, kA, -5.0}}, 3, 10, o));
  CHECK_FALSE(sentence_done(finished, {{0, kA, -0.2}}, 3, 10, o));
  CHECK_FALSE(sentence_done({}, {{0, kA, -5.0}}, 3, 10, o));
}

// ---- Research tools on the seam: ensembles, sampling, prefixes, forced scoring.

TEST_CASE("an ensemble of one model, or of two copies, searches as that model", "[search][ensemble]") {
  auto m = random_model(11);
  auto src = random_sources(5, 11);
  const auto lengths = source_lengths(src);
  for (int64_t beam : {1, 4}) {
    SearchOptions o;
    o.beam = beam;
    o.nbest = beam;
    o.max_len_b = 10;
    torch::NoGradGuard no_grad;
    TransformerStepModel alone(*m, src, true);
    auto expected = search(alone, lengths, o);
    for (int copies : {1, 2}) {
      std::vector<std::unique_ptr<StepModel>> members;
      for (int i = 0; i < copies; ++i)
        members.push_back(std::make_unique<TransformerStepModel>(*m, src, true));
      EnsembleStepModel ensemble(std::move(members));
      auto got = search(ensemble, lengths, o);
      for (size_t s = 0; s < got.size(); ++s) {
        REQUIRE(got[s].size() == expected[s].size());
        for (size_t k = 0; k < got[s].size(); ++k) {
          CHECK(got[s][k].tokens == expected[s][k].tokens);
          // Beam search ranks the plain model from raw logits (beam_candidates.h),
          // the ensemble through log-softmax: equal up to the exp's rounding.
          CHECK(got[s][k].log_prob == Approx(expected[s][k].log_prob).margin(1e-5));
        }
      }
    }
  }
}

TEST_CASE("an ensemble's step is the mean of its members' log-probabilities", "[search][ensemble]") {
  torch::NoGradGuard no_grad;
  auto a = random_model(12), b = random_model(13);
  auto src = random_sources(3, 12);
  auto history = torch::full({3, 1}, kBosId, torch::kLong);  // [B, 1]
  TransformerStepModel alone_a(*a, src, true), alone_b(*b, src, true);
  auto expected = (alone_a.step(history) + alone_b.step(history)) / 2;  // [B, V]
  std::vector<std::unique_ptr<StepModel>> members;
  members.push_back(std::make_unique<TransformerStepModel>(*a, src, true));
  members.push_back(std::make_unique<TransformerStepModel>(*b, src, true));
  EnsembleStepModel ensemble(std::move(members));
  auto got = ensemble.step(history);
  auto finite = torch::isfinite(expected);
  CHECK(torch::equal(torch::isfinite(got), finite));
  CHECK(torch::allclose(got.masked_select(finite), expected.masked_select(finite)));
  // Models with different vocabularies cannot be averaged.
  std::vector<std::unique_ptr<StepModel>> mixed;
  mixed.push_back(std::make_unique<TransformerStepModel>(*a, src, true));
  mixed.push_back(std::make_unique<ScriptedStepModel>(two_paths, 3, 1));
  CHECK_THROWS_WITH(EnsembleStepModel(std::move(mixed)), Catch::Contains("an ensemble needs one vocabulary"));
}

TEST_CASE("a draw follows the filtered distribution and never picks -inf", "[search][sampling]") {
  const float inf = std::numeric_limits<float>::infinity();
  // p = .5, .3, .2 over tokens 1, 3, 4; the rest impossible.
  std::vector<float> lp = {-inf, std::log(0.5f), -inf, std::log(0.3f), std::log(0.2f), -inf};
  std::vector<int64_t> scratch;
  auto counts = [&](const SamplingOptions& o) {
    std::map<int64_t, int> n;
    for (int i = 0; i < 1000; ++i) ++n[draw_token(lp.data(), 6, o, (i + 0.5) / 1000, &scratch)];
    return n;
  };
  SamplingOptions o;
  auto all = counts(o);  // a uniform grid of u: the counts are the probabilities
  CHECK(all.size() == 3);
  CHECK(std::abs(all[1] - 500) <= 1);
  CHECK(std::abs(all[3] - 300) <= 1);
  CHECK(std::abs(all[4] - 200) <= 1);
  o.top_k = 2;  // .5 and .3, renormalised
  auto top2 = counts(o);
  CHECK(top2.size() == 2);
  CHECK(std::abs(top2[1] - 625) <= 1);
  o.top_k = 0;
  o.top_p = 0.7;  // the smallest set reaching .7: .5 + .3
  CHECK(counts(o).size() == 2);
  o.top_p = 0.4;  // .5 alone reaches it
  CHECK(counts(o) == std::map<int64_t, int>{{1, 1000}});
  o.top_p = 1;
  o.temperature = 2;  // flatter: p ~ sqrt(p)
  auto warm = counts(o);
  CHECK(warm[4] > all[4]);
  CHECK(warm[1] < all[1]);
  o.temperature = 0;  // the likeliest, whatever u
  CHECK(counts(o) == std::map<int64_t, int>{{1, 1000}});
  // The uniform draws are a function of (seed, line, sample, step) alone.
  CHECK(sampling_uniform(1, 2, 3, 4) == sampling_uniform(1, 2, 3, 4));
  CHECK(sampling_uniform(1, 2, 3, 4) != sampling_uniform(1, 2, 3, 5));
  CHECK(sampling_uniform(1, 2, 3, 4) != sampling_uniform(2, 2, 3, 4));
  for (int64_t step = 0; step < 100; ++step) {
    const double u = sampling_uniform(9, 0, 0, step);
    CHECK(u >= 0);
    CHECK(u < 1);
  }
}

TEST_CASE("sampling: temperature 0 is greedy, and a line's draws ignore its batch", "[search][sampling]") {
  torch::NoGradGuard no_grad;
  auto m = random_model(14);
  auto src = random_sources(4, 14);
  SearchOptions o;
  o.max_len_b = 10;
  o.beam = 1;
  TransformerStepModel greedy_model(*m, src, true);
  auto greedy = greedy_search(greedy_model, source_lengths(src), o);
  o.sampling.enabled = true;
  o.sampling.temperature = 0;
  std::vector<std::pair<int64_t, int64_t>> draws = {{0, 0}, {1, 0}, {2, 0}, {3, 0}};
  TransformerStepModel cold_model(*m, src, true);
  auto cold = sample_search(cold_model, source_lengths(src), draws, o);
  for (size_t s = 0; s < greedy.size(); ++s) CHECK(cold[s][0].tokens == greedy[s][0].tokens);

  o.sampling.temperature = 1;
  TransformerStepModel batch_model(*m, src, true);
  auto batch = sample_search(batch_model, source_lengths(src), draws, o);
  // Sentence 2 alone, with its (line, sample) key: the same sample.
  auto one = src.narrow(0, 2, 1);
  TransformerStepModel one_model(*m, one, true);
  auto alone = sample_search(one_model, source_lengths(one), {{2, 0}}, o);
  CHECK(alone[0][0].tokens == batch[2][0].tokens);
  CHECK(alone[0][0].log_prob == Approx(batch[2][0].log_prob).margin(1e-4));
  // Its log-probability is the model's own, as forced decoding gives it.
  auto forced = forced_log_probs(*m, one, {alone[0][0].tokens});
  CHECK(alone[0][0].log_prob == Approx(forced[0]).margin(1e-4));
}

TEST_CASE("a forced prefix: empty changes nothing, greedy's own changes nothing, any is kept",
          "[search][prefix]") {
  torch::NoGradGuard no_grad;
  auto m = random_model(15);
  auto src = random_sources(3, 15);
  const auto lengths = source_lengths(src);
  for (int64_t beam : {1, 4}) {
    SearchOptions o;
    o.beam = beam;
    o.max_len_b = 10;
    TransformerStepModel plain(*m, src, true);
    auto expected = search(plain, lengths, o);
    TransformerStepModel inner(*m, src, true);
    ForcedPrefixStepModel empty(inner, std::vector<std::vector<int64_t>>(static_cast<size_t>(3 * beam)));
    auto got = search(empty, lengths, o);
    for (size_t s = 0; s < got.size(); ++s) {
      CHECK(got[s][0].tokens == expected[s][0].tokens);
      CHECK(got[s][0].log_prob == Approx(expected[s][0].log_prob).margin(1e-5));  // as in the ensemble test
    }
  }
  SearchOptions o;
  o.beam = 1;
  o.max_len_b = 10;
  TransformerStepModel plain(*m, src, true);
  auto greedy = search(plain, lengths, o);
  std::vector<std::vector<int64_t>> own, other;
  for (const auto& h : greedy) {
    own.emplace_back(h[0].tokens.begin(), h[0].tokens.begin() + std::min<size_t>(2, h[0].tokens.size()));
    other.push_back({7, 9, 11});
  }
  TransformerStepModel inner_own(*m, src, true);
  ForcedPrefixStepModel forced_own(inner_own, own);
  auto again = search(forced_own, lengths, o);
  for (size_t s = 0; s < greedy.size(); ++s) CHECK(again[s][0].tokens == greedy[s][0].tokens);
  for (int64_t beam : {1, 4}) {
    o.beam = beam;
    std::vector<std::vector<int64_t>> rows;
    for (const auto& p : other)
      for (int64_t k = 0; k < beam; ++k) rows.push_back(p);
    TransformerStepModel inner(*m, src, true);
    ForcedPrefixStepModel forced(inner, rows);
    auto out = search(forced, lengths, o);
    for (size_t s = 0; s < out.size(); ++s) {
      REQUIRE(out[s][0].tokens.size() >= 3);
      CHECK(std::vector<int64_t>(out[s][0].tokens.begin(), out[s][0].tokens.begin() + 3) == other[s]);
      // Scored as a whole: the forced tokens' log-probabilities count.
      auto forced_score = forced_log_probs(*m, src.narrow(0, static_cast<int64_t>(s), 1), {out[s][0].tokens});
      CHECK(out[s][0].log_prob == Approx(forced_score[0]).margin(1e-4));
    }
  }
}

TEST_CASE("forced scoring through a step model equals the one-pass forced scores", "[search][score]") {
  torch::NoGradGuard no_grad;
  auto m = random_model(16);
  auto src = random_sources(4, 16);
  std::vector<std::vector<int64_t>> targets = {{5, 6, 7}, {}, {9, 9, 9, 9, 9, 9}, {4}};
  auto one_pass = forced_log_probs(*m, src, targets);
  TransformerStepModel model(*m, src, true);
  auto stepped = forced_log_probs(model, targets);
  for (size_t b = 0; b < targets.size(); ++b) CHECK(stepped[b] == Approx(one_pass[b]).margin(1e-4));
}

TEST_CASE("word alignments from attention: pieces merged into words, argmax per target unit",
          "[search][alignment]") {
  const std::string w = "\xE2\x96\x81";  // the word marker
  // Source "red cat" as ▁red ▁ca t (+ eos); target "cat red" as ▁c at ▁red.
  // Queries: bos + 3 target pieces (the last query predicts eos).
  auto cross = torch::tensor({0.7, 0.2, 0.1, 0.0,    // ▁c   -> mostly ▁red, but ▁ca + t = .3
                              0.1, 0.3, 0.6, 0.0,    // at   -> cat
                              0.9, 0.05, 0.05, 0.0,  // ▁red -> red
                              0.0, 0.0, 0.0, 1.0},
                             torch::kDouble)
                   .view({1, 1, 4, 4});
  const std::vector<std::string> src = {w + "red", w + "ca", "t"}, tgt = {w + "c", "at", w + "red"};
  AlignmentOptions o;
  // Target word 0 (▁c at): mean over its pieces of the per-word sums, red .4 vs cat .6.
  CHECK(pharaoh(hard_alignment(cross, src, tgt, o)) == "1-0 0-1");
  o.target_characters = true;  // c a t r e d: each character its piece's row
  CHECK(pharaoh(hard_alignment(cross, src, tgt, o)) == "0-0 1-1 1-2 0-3 0-4 0-5");

  const auto gold = parse_gold_alignment("1-0 0-1 2?1", "gold:1");
  CHECK(gold.sure == std::set<Link>{{1, 0}, {0, 1}});
  CHECK(gold.possible == std::set<Link>{{1, 0}, {0, 1}, {2, 1}});
  AerCounts perfect, half, none;
  perfect.add({{1, 0}, {0, 1}}, gold);
  CHECK(perfect.aer() == 0.0);
  half.add({{1, 0}, {2, 1}}, gold);  // one sure hit, and a possible link: 1 - (1 + 2) / (2 + 2)
  CHECK(half.aer() == Approx(0.25));
  none.add({{0, 0}}, gold);
  CHECK(none.aer() == 1.0);
  CHECK_THROWS_WITH(parse_gold_alignment("0-0 1x2", "gold.align:3"),
                    Catch::Contains("gold.align:3") && Catch::Contains("\"1x2\" is not a link"));
  CHECK_THROWS_WITH(parse_gold_alignment("-1-0", "g"), Catch::Contains("not a link"));
  // Links must lie inside the pair: "red cat" is 2 words, so this gold's 2?1
  // fits a 3-word source only.
  CHECK(count_words(src) == 2);
  CHECK(count_words(tgt) == 2);
  CHECK_NOTHROW(check_gold_alignment(gold, 3, 2));
  CHECK_THROWS_WITH(check_gold_alignment(gold, 2, 2),
                    Catch::Contains("gold:1: link 2-1 lies outside the pair: 2 source words"));
  CHECK_THROWS_WITH(check_gold_alignment(parse_gold_alignment("0-5", "gold:2"), 3, 2),
                    Catch::Contains("gold:2: link 0-5"));
}

// The switch scripts/gpu_check.sh turns: with AIAYN_TEST_DEVICE=cuda the
// model, its gradients, search and attention capture run on the GPU and
// must agree with the CPU. Unset, both sides are the CPU and the paths are
// still exercised (a device mix-up in them would throw).
TEST_CASE("on AIAYN_TEST_DEVICE the model, its gradients, search and attention agree with the CPU",
          "[device][search]") {
  const auto device = test::test_device();
  const double tol = test::device_tolerance();
  auto cpu = random_model(4), other = random_model(4);
  other->to(device);
  auto src = random_sources(6, 4);                  // [6, 9]
  auto tgt = random_sources(6, 5).narrow(1, 0, 7);  // [6, 7]: as decoder input
  SECTION("forward and backward, training mode off and on") {
    for (bool training : {false, true}) {
      cpu->train(training);
      other->train(training);
      // Dropout draws differ across devices: compare without it.
      torch::manual_seed(1);
      auto a = cpu->forward(src, tgt);  // [6, 7, V]
      auto b = other->forward(src.to(device), tgt.to(device));
      if (training && cpu->config().p_drop > 0) continue;
      // Real target positions only: with LibTorch 2.x the decoder's fused
      // self-attention runs causal, which changes padded rows (nothing reads
      // them; models/fused_attention.h), while our CPU kernel masks them.
      const auto real = tgt.ne(kPadId).unsqueeze(-1).to(a.scalar_type());  // [6, 7, 1]
      CHECK(((a - b.cpu()) * real).abs().max().item<double>() < tol);
      (a * real).square().sum().backward();
      (b * real.to(device)).square().sum().backward();
      auto pa = cpu->named_parameters(), pb = other->named_parameters();
      for (const auto& item : pa) {
        INFO(item.key());
        const auto& ga = item.value().grad();
        const auto gb = pb[item.key()].grad().cpu();
        CHECK((ga - gb).abs().max().item<double>() < tol * std::max(1.0, ga.abs().max().item<double>()));
      }
    }
  }
  SECTION("cached beam search and greedy search") {
    for (int64_t beam : {1, 4}) {
      SearchOptions o;
      o.max_len_b = 12;
      o.beam = beam;
      auto a = search(*cpu, src, o);
      auto b = search(*other, src.to(device), o);
      REQUIRE(a.size() == b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        INFO("beam " << beam << ", sentence " << i);
        CHECK(a[i][0].tokens == b[i][0].tokens);
        CHECK(a[i][0].score == Approx(b[i][0].score).margin(1e-3));
      }
    }
  }
  SECTION("attention capture") {
    const std::vector<int64_t> source = {5, 6, 7, 8}, target = {9, 10, 11};
    auto a = capture_attention(*cpu, source, target), b = capture_attention(*other, source, target);
    REQUIRE(a.cross.size() == b.cross.size());
    for (size_t l = 0; l < a.cross.size(); ++l) {
      CHECK((a.cross[l] - b.cross[l].cpu()).abs().max().item<double>() < tol);
      CHECK((a.decoder[l] - b.decoder[l].cpu()).abs().max().item<double>() < tol);
    }
  }
}

namespace {

// The same model behind step() only: the device-generic ranking.
class GenericRanking : public StepModel {
 public:
  explicit GenericRanking(StepModel& inner) : inner_(inner) {}
  int64_t vocab() const override { return inner_.vocab(); }
  int64_t max_positions() const override { return inner_.max_positions(); }
  torch::Device device() const override { return inner_.device(); }
  torch::Tensor step(const torch::Tensor& history) override { return inner_.step(history); }
  void select(const torch::Tensor& rows, const torch::Tensor& sentences) override {
    inner_.select(rows, sentences);
  }

 private:
  StepModel& inner_;
};

}  // namespace

TEST_CASE("beam search ranks from logits as the generic path does, and never returns empty",
          "[search][beam-candidates]") {
  auto m = random_model(3);
  auto src = random_sources(8, 5);
  for (double alpha : {0.0, 0.6}) {
    SearchOptions o;
    o.length_penalty = alpha;
    o.max_len_b = 12;
    o.beam = 4;
    o.nbest = 4;
    TransformerStepModel fast(*m, src, true);
    REQUIRE(fast.has_step_logits());
    auto a = beam_search(fast, source_lengths(src), o);
    TransformerStepModel inner(*m, src, true);
    GenericRanking generic(inner);
    auto b = beam_search(generic, source_lengths(src), o);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      REQUIRE(a[i].size() == b[i].size());
      for (size_t h = 0; h < a[i].size(); ++h) {
        CHECK(a[i][h].tokens == b[i][h].tokens);
        CHECK(a[i][h].score == Approx(b[i][h].score).margin(1e-4));
        CHECK_FALSE(a[i][h].tokens.empty());
      }
    }
  }
}
