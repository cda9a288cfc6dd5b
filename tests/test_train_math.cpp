// The fused training kernels against their definitions: the label-smoothed
// cross-entropy (section 5.4) and Adam (section 5.3); the moving average of
// the weights against its formula.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>

#include "src/ema.h"
#include "src/loss.h"
#include "src/optimizer.h"

using aiayn::label_smoothed_nll;
using aiayn::label_smoothed_nll_composed;

namespace {

struct Result {
  double loss, nll;
  torch::Tensor grad;
};

template <typename Loss>
Result evaluate(Loss&& loss_fn, const torch::Tensor& logits, const torch::Tensor& targets,
                double epsilon) {
  auto z = logits.clone().requires_grad_(true);
  auto sums = loss_fn(z, targets, epsilon);
  (sums.loss * 0.5).backward();  // a non-unit upstream gradient
  return {sums.loss.template item<double>(), sums.nll.template item<double>(), z.grad()};
}

}  // namespace

TEST_CASE("fused label-smoothed loss equals log_softmax, gather and mean", "[loss]") {
  torch::manual_seed(3);
  // 101 pieces: the vector loops' 16-wide tails are exercised too.
  auto logits = torch::randn({37, 101}) * 4;                  // [N, V]
  auto targets = torch::randint(0, 101, {37}, torch::kLong);  // [N]
  for (double epsilon : {0.0, 0.1, 0.3}) {
    INFO("epsilon " << epsilon);
    auto fused = evaluate(label_smoothed_nll, logits, targets, epsilon);
    auto composed = evaluate(label_smoothed_nll_composed, logits, targets, epsilon);
    CHECK(fused.loss == Approx(composed.loss).epsilon(1e-6));
    CHECK(fused.nll == Approx(composed.nll).epsilon(1e-6));
    CHECK((fused.grad - composed.grad).abs().max().item<float>() < 1e-6);
  }
}

TEST_CASE("label-smoothed loss of a hand-computed case", "[loss]") {
  // p = (1/4, 3/4), reference 1: nll = -ln 3/4; against the uniform
  // distribution -(ln 1/4 + ln 3/4) / 2; smoothed 0.9 nll + 0.1 uniform.
  auto logits = torch::tensor({0.0f, std::log(3.0f)}).view({1, 2});  // [1, 2]
  auto targets = torch::tensor({int64_t{1}});                        // [1]
  const double nll = -std::log(0.75), uniform = -(std::log(0.25) + std::log(0.75)) / 2;
  auto r = evaluate(label_smoothed_nll, logits, targets, 0.1);
  CHECK(r.nll == Approx(nll).epsilon(1e-6));
  CHECK(r.loss == Approx(0.9 * nll + 0.1 * uniform).epsilon(1e-6));
  // d loss / d z = 0.5 (p - 0.05 - 0.9 [j = 1]) with the upstream 0.5.
  CHECK(r.grad[0][0].item<float>() == Approx(0.5 * (0.25 - 0.05)).margin(1e-6));
  CHECK(r.grad[0][1].item<float>() == Approx(0.5 * (0.75 - 0.05 - 0.9)).margin(1e-6));
}

TEST_CASE("fused loss is stable for large logits and the same on any thread count", "[loss]") {
  torch::manual_seed(5);
  auto logits = torch::randn({64, 333}) + 1000;  // exp(1000) overflows a float
  auto targets = torch::randint(0, 333, {64}, torch::kLong);
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  auto one = evaluate(label_smoothed_nll, logits, targets, 0.1);
  torch::set_num_threads(2);
  auto two = evaluate(label_smoothed_nll, logits, targets, 0.1);
  torch::set_num_threads(threads);
  auto composed = evaluate(label_smoothed_nll_composed, logits, targets, 0.1);
  REQUIRE(std::isfinite(one.loss));
  CHECK(one.loss == two.loss);
  CHECK(torch::equal(one.grad, two.grad));
  CHECK(one.loss == Approx(composed.loss).epsilon(1e-5));
  // Logits near 1000 carry ~6e-5 of rounding each, on both sides.
  CHECK((one.grad - composed.grad).abs().max().item<float>() < 1e-5);
}

TEST_CASE("a target outside the vocabulary is an error, not a wild read", "[loss]") {
  auto logits = torch::zeros({2, 5});
  CHECK_THROWS_WITH(label_smoothed_nll(logits, torch::tensor({int64_t{1}, int64_t{5}}), 0.1),
                    Catch::Contains("outside the vocabulary"));
  CHECK_THROWS(label_smoothed_nll(logits, torch::tensor({int64_t{1}}), 0.1));
}

namespace {

// Runs our fused Adam and LibTorch's reference side by side for six steps
// with a changing learning rate, and checks they agree to 1e-6.
template <typename Reference, typename Options>
void check_against(double weight_decay, Options options) {
  torch::manual_seed(11);
  // Odd sizes exercise the vector loops' tails; the 1-d one is a bias.
  std::vector<torch::Tensor> ours{torch::randn({37, 29}), torch::randn({41})};
  std::vector<torch::Tensor> theirs, initial;
  torch::OrderedDict<std::string, torch::Tensor> named;
  for (size_t i = 0; i < ours.size(); ++i) {
    theirs.push_back(ours[i].clone().requires_grad_(true));
    initial.push_back(ours[i].clone());
    ours[i].requires_grad_(true);
    named.insert("p" + std::to_string(i), ours[i]);
  }
  aiayn::Adam adam(named, 0.9, 0.98, 1e-9, weight_decay);
  Reference reference(theirs, options);
  for (int step = 1; step <= 6; ++step) {
    const double lr = 1e-3 * step;  // a schedule: the rate changes every step
    static_cast<Options&>(reference.param_groups()[0].options()).lr(lr);
    for (size_t i = 0; i < ours.size(); ++i) {
      auto g = torch::randn(ours[i].sizes()) * static_cast<double>(i + 1);
      ours[i].mutable_grad() = g.clone();
      theirs[i].mutable_grad() = g.clone();
    }
    adam.step(lr);
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    INFO("parameter " << i);
    CHECK((ours[i] - theirs[i]).abs().max().item<float>() < 1e-6);
    CHECK((ours[i] - initial[i]).abs().max().item<float>() > 1e-3);  // it moved
  }
  CHECK(adam.steps() == 6);
}

}  // namespace

TEST_CASE("fused Adam follows torch::optim::Adam step for step", "[optimizer]") {
  check_against<torch::optim::Adam>(0.0, torch::optim::AdamOptions(1.0).betas({0.9, 0.98}).eps(1e-9));
}

TEST_CASE("fused Adam with weight decay follows torch::optim::AdamW step for step", "[optimizer]") {
  // A large decay, so that a coupled (L2) decay or a missing one shows.
  check_against<torch::optim::AdamW>(
      0.5, torch::optim::AdamWOptions(1.0).betas({0.9, 0.98}).eps(1e-9).weight_decay(0.5));
}

TEST_CASE("the moving average of the weights follows its formula, warm-up included", "[ema]") {
  torch::manual_seed(3);
  auto w = torch::randn({4, 3}), b = torch::randn({3});
  torch::OrderedDict<std::string, torch::Tensor> named;
  named.insert("w", w);
  named.insert("b", b);
  aiayn::ExponentialMovingAverage ema(named, 0.9);
  // d = min(0.9, (1 + t) / (10 + t)): 2/11, 3/12, ... until 0.9 from t = 80.
  CHECK(ema.decay_at(1) == Approx(2.0 / 11));
  CHECK(ema.decay_at(80) == Approx(0.9));
  CHECK(ema.decay_at(1000) == Approx(0.9));
  auto ref_w = w.to(torch::kFloat64).clone(), ref_b = b.to(torch::kFloat64).clone();
  for (int64_t t = 1; t <= 100; ++t) {
    w.add_(torch::randn({4, 3}));  // an "update"
    b.mul_(0.97);
    ema.update(t);
    const double d = std::min(0.9, (1.0 + t) / (10.0 + t));
    ref_w = d * ref_w + (1 - d) * w.to(torch::kFloat64);
    ref_b = d * ref_b + (1 - d) * b.to(torch::kFloat64);
  }
  auto avg = ema.weights();
  CHECK((avg["w"].to(torch::kFloat64) - ref_w).abs().max().item<double>() < 1e-5);
  CHECK((avg["b"].to(torch::kFloat64) - ref_b).abs().max().item<double>() < 1e-5);
  CHECK((avg["w"] - w).abs().max().item<float>() > 0.1);  // an average, not a copy

  // A scope puts the average in the parameters and the raw weights back after.
  const auto raw = w.clone();
  {
    aiayn::ExponentialMovingAverage::Scope scope(&ema);
    CHECK(torch::equal(w, avg["w"]));
  }
  CHECK(torch::equal(w, raw));

  // Loading checks names and shapes.
  aiayn::ExponentialMovingAverage other(named, 0.9);
  other.load(avg, "ema.pt");
  CHECK(torch::equal(other.weights()["w"], avg["w"]));
  CHECK_THROWS_WITH(other.load({{"w", avg["w"]}}, "ema.pt"), Catch::Contains("ema.pt") && Catch::Contains("\"b\""));
  CHECK_THROWS_WITH(other.load({{"w", avg["b"]}, {"b", avg["b"]}}, "ema.pt"),
                    Catch::Contains("\"w\" has the wrong shape"));
}
