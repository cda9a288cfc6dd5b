// The fused training kernels against their definitions: the label-smoothed
// cross-entropy (section 5.4) and Adam (section 5.3); the moving average of
// the weights against its formula; the loop's schedule of logs, validations,
// checkpoints and stops.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "models/transformer.h"
#include "src/common/error.h"
#include "src/common/model_config_json.h"
#include "src/train/criterion.h"
#include "src/train/ema.h"
#include "src/train/loss.h"
#include "src/train/optimizer.h"
#include "src/train/rdrop.h"
#include "src/train/train_schedule.h"
#include "src/train/update_step.h"

using aiayn::label_smoothed_nll;
using aiayn::label_smoothed_nll_composed;

namespace {

struct Result {
  double loss, nll;
  torch::Tensor grad;
};

template <typename Loss>
Result evaluate(Loss&& loss_fn, const torch::Tensor& logits, const torch::Tensor& targets, double epsilon) {
  auto z = logits.clone().requires_grad_(true);
  auto sums = loss_fn(z, targets, epsilon);
  (sums.loss * 0.5).backward();  // a non-unit upstream gradient
  return {sums.loss.template item<double>(), sums.nll.template item<double>(), z.grad()};
}

// Two pairs: the second target is one token shorter, so its last position is padding.
aiayn::Batch two_pair_batch() {
  aiayn::Batch batch;
  batch.src = torch::tensor({{5, 6, 7, 3}, {8, 9, 3, 0}}, torch::kLong);           // [2, 4]
  batch.tgt_in = torch::tensor({{2, 10, 11, 12}, {2, 13, 14, 0}}, torch::kLong);   // [2, 4]
  batch.tgt_out = torch::tensor({{10, 11, 12, 3}, {13, 14, 3, 0}}, torch::kLong);  // [2, 4]
  batch.src_padding = batch.src.eq(0);
  batch.tgt_padding = batch.tgt_out.eq(0);
  return batch;
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

// Off the CPU kernel (a GPU; here: double logits, or a non-contiguous
// view) the loss is built from LibTorch ops that keep only the log-sum-exp
// per row for the backward pass; it must equal the composed definition.
TEST_CASE("the loss from ops without the log-softmax equals log_softmax and gather and mean", "[loss]") {
  torch::manual_seed(4);
  auto logits = torch::randn({29, 53}) * 4;                  // [N, V]
  auto targets = torch::randint(0, 53, {29}, torch::kLong);  // [N]
  for (double epsilon : {0.0, 0.1}) {
    INFO("epsilon " << epsilon);
    auto composed = evaluate(label_smoothed_nll_composed, logits, targets, epsilon);
    auto as_double = evaluate(label_smoothed_nll, logits.to(torch::kDouble), targets, epsilon);
    CHECK(as_double.loss == Approx(composed.loss).epsilon(1e-6));
    CHECK(as_double.nll == Approx(composed.nll).epsilon(1e-6));
    CHECK(as_double.grad.scalar_type() == torch::kDouble);
    CHECK((as_double.grad.to(torch::kFloat) - composed.grad).abs().max().item<float>() < 1e-6);
    // A non-contiguous [N, V] view of the same numbers.
    auto strided = [](const torch::Tensor& z, const torch::Tensor& t, double e) {
      return label_smoothed_nll(z.t().contiguous().t(), t, e);
    };
    auto view = evaluate(strided, logits, targets, epsilon);
    CHECK(view.loss == Approx(composed.loss).epsilon(1e-6));
    CHECK((view.grad - composed.grad).abs().max().item<float>() < 1e-6);
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
void check_against(double weight_decay, Options options,
                   aiayn::AdamKernel kernel = aiayn::AdamKernel::automatic) {
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
  aiayn::Adam adam(named, 0.9, 0.98, 1e-9, weight_decay, kernel);
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

// Off the CPU kernel (on a GPU) Adam runs LibTorch 2.x's fused AdamW, else
// the composed ops; both are forced here on the CPU, where LibTorch 2.x has
// the fused kernel too.
TEST_CASE("Adam's other paths follow torch::optim::Adam and AdamW too", "[optimizer]") {
  const auto adam = torch::optim::AdamOptions(1.0).betas({0.9, 0.98}).eps(1e-9);
  const auto adamw = torch::optim::AdamWOptions(1.0).betas({0.9, 0.98}).eps(1e-9).weight_decay(0.5);
  SECTION("composed") {
    check_against<torch::optim::Adam>(0.0, adam, aiayn::AdamKernel::composed);
    check_against<torch::optim::AdamW>(0.5, adamw, aiayn::AdamKernel::composed);
  }
  SECTION("LibTorch's fused AdamW") {
    if (!aiayn::libtorch_fused_adam_available()) {
      CHECK_THROWS_WITH(aiayn::Adam(torch::OrderedDict<std::string, torch::Tensor>(), 0.9, 0.98, 1e-9, 0.0,
                                    aiayn::AdamKernel::libtorch_fused),
                        Catch::Contains("has no fused AdamW"));
      WARN("LibTorch " TORCH_VERSION " has no fused AdamW: only its refusal is tested");
      return;
    }
    check_against<torch::optim::Adam>(0.0, adam, aiayn::AdamKernel::libtorch_fused);
    check_against<torch::optim::AdamW>(0.5, adamw, aiayn::AdamKernel::libtorch_fused);
  }
}

TEST_CASE("the fp16 loss scale halves on overflow and doubles after 2000 good updates up to 2^15",
          "[train][precision]") {
  aiayn::DynamicLossScale scale;
  CHECK(scale.scale() == 32768.0);
  scale.update(true);
  CHECK(scale.scale() == 16384.0);
  for (int i = 0; i < 1999; ++i) scale.update(false);
  CHECK(scale.scale() == 16384.0);
  CHECK(scale.good_updates() == 1999);
  scale.update(false);
  CHECK(scale.scale() == 32768.0);
  CHECK(scale.good_updates() == 0);
  // The ceiling: a summed loss's gradients would overflow fp16 above it.
  for (int i = 0; i < 2000; ++i) scale.update(false);
  CHECK(scale.scale() == 32768.0);
  // Never under 1, however often it overflows.
  for (int i = 0; i < 40; ++i) scale.update(true);
  CHECK(scale.scale() == 1.0);
  // Resumed where a checkpoint left it.
  aiayn::DynamicLossScale resumed(1024.0, 1999);
  resumed.update(false);
  CHECK(resumed.scale() == 2048.0);
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
  CHECK_THROWS_WITH(other.load({{"w", avg["w"]}}, "ema.pt"),
                    Catch::Contains("ema.pt") && Catch::Contains("\"b\""));
  CHECK_THROWS_WITH(other.load({{"w", avg["b"]}, {"b", avg["b"]}}, "ema.pt"),
                    Catch::Contains("\"w\" has the wrong shape"));
}

TEST_CASE("the training schedule: when to log, validate, save and stop", "[train][schedule]") {
  aiayn::TrainConfig c;
  c.log_every = 50;
  c.valid_every = 250;
  c.save_every = 110;
  c.max_steps = 1000;

  CHECK(aiayn::log_due(c, 100));
  CHECK_FALSE(aiayn::log_due(c, 101));
  CHECK(aiayn::validation_due(c, 500, true));
  CHECK_FALSE(aiayn::validation_due(c, 500, false));  // no validation set
  CHECK_FALSE(aiayn::validation_due(c, 510, true));

  // Saves on schedule, and after a validation that improved; with keep_best,
  // after every validation.
  CHECK(aiayn::save_due(c, 220, false, 0));
  CHECK_FALSE(aiayn::save_due(c, 221, false, 0));
  CHECK(aiayn::save_due(c, 250, true, 0));
  CHECK_FALSE(aiayn::save_due(c, 250, true, 2));
  c.keep_best = 3;
  CHECK(aiayn::save_due(c, 250, true, 2));
  CHECK_FALSE(aiayn::save_due(c, 251, false, 2));

  aiayn::RunPosition at;
  at.step = 999;
  CHECK_FALSE(aiayn::reason_to_stop(c, at).has_value());
  at.step = 1000;
  CHECK(aiayn::reason_to_stop(c, at).value() == "reached max_steps 1000");
  at.step = 10;
  c.max_epochs = 2;
  at.next_batch = {2, 3};  // the third epoch is under way
  CHECK_FALSE(aiayn::reason_to_stop(c, at).has_value());
  at.next_batch = {2, 0};
  CHECK(aiayn::reason_to_stop(c, at).value() == "completed max_epochs 2");
  c.max_epochs = 0;
  c.max_minutes = 1.5;
  at.elapsed_seconds = 89;
  CHECK_FALSE(aiayn::reason_to_stop(c, at).has_value());
  at.elapsed_seconds = 90;
  CHECK(aiayn::reason_to_stop(c, at).value() == "used the time budget of 1.5 minutes");
  c.max_minutes = 12;
  at.elapsed_seconds = 720;
  CHECK(aiayn::reason_to_stop(c, at).value() == "used the time budget of 12 minutes");
  c.max_minutes = 0;
  c.patience = 4;
  at.stale_validations = 3;
  CHECK_FALSE(aiayn::reason_to_stop(c, at).has_value());
  at.stale_validations = 4;
  CHECK(aiayn::reason_to_stop(c, at).value() == "validation did not improve 4 times in a row");

  // One more validation at the end only when this session trained past
  // the last one, and not after an interrupt.
  CHECK(aiayn::final_validation_due(c, 1010, 0, true, false));
  CHECK_FALSE(aiayn::final_validation_due(c, 1000, 0, true, false));     // just validated
  CHECK_FALSE(aiayn::final_validation_due(c, 1010, 1010, true, false));  // resumed, stopped at once
  CHECK_FALSE(aiayn::final_validation_due(c, 1010, 0, true, true));
  CHECK_FALSE(aiayn::final_validation_due(c, 1010, 0, false, false));
}

TEST_CASE("the criterion scores a batch's real target positions only", "[train][criterion]") {
  torch::manual_seed(3);
  auto c = aiayn::load_model_config(std::string(AIAYN_SOURCE_DIR) + "/configs/tiny.json");
  c.src_vocab = c.tgt_vocab = 20;
  aiayn::Transformer model(c);
  model->eval();
  aiayn::Batch batch = two_pair_batch();
  batch.tgt_tokens = 7;
  torch::NoGradGuard no_grad;
  for (double epsilon : {0.0, 0.1}) {
    auto sums = aiayn::batch_criterion(*model, batch, epsilon, torch::kCPU);
    // The definition: the whole model's logits, then the real positions picked.
    auto logits = model->forward(batch.src, batch.tgt_in);           // [2, 4, V]
    auto real = batch.tgt_out.ne(0).flatten().nonzero().squeeze(1);  // [7]
    auto expected =
        aiayn::label_smoothed_nll_composed(logits.reshape({-1, logits.size(-1)}).index_select(0, real),
                                           batch.tgt_out.flatten().index_select(0, real), epsilon);
    CHECK(sums.loss.item<double>() == Approx(expected.loss.item<double>()).epsilon(1e-5));
    CHECK(sums.nll.item<double>() == Approx(expected.nll.item<double>()).epsilon(1e-5));
  }
  // Padding content changes nothing.
  auto other = batch;
  other.tgt_in = batch.tgt_in.clone();
  other.tgt_in[1][3] = 17;
  CHECK(aiayn::batch_criterion(*model, other, 0.1, torch::kCPU).loss.item<double>() ==
        Approx(aiayn::batch_criterion(*model, batch, 0.1, torch::kCPU).loss.item<double>()).epsilon(1e-6));
}

TEST_CASE("R-Drop: two passes' cross-entropy plus their symmetric KL and nothing without dropout",
          "[train][criterion][rdrop]") {
  torch::manual_seed(4);
  const int64_t n = 6, vocab = 11;
  auto logits = torch::randn({2 * n, vocab}) * 3;  // [2N, V]
  auto targets = torch::randint(vocab, {n}, torch::kLong);
  for (double alpha : {0.0, 1.0, 5.0}) {
    auto sums = aiayn::rdrop_loss(logits, targets, 0.1, alpha);
    // The paper's loss, halved: CE1 + CE2 + alpha/2 (KL(P1||P2) + KL(P2||P1)).
    auto ce1 = aiayn::label_smoothed_nll_composed(logits.narrow(0, 0, n), targets, 0.1);
    auto ce2 = aiayn::label_smoothed_nll_composed(logits.narrow(0, n, n), targets, 0.1);
    auto l1 = torch::log_softmax(logits.narrow(0, 0, n), -1),
         l2 = torch::log_softmax(logits.narrow(0, n, n), -1);
    auto kl12 = (l1.exp() * (l1 - l2)).sum().item<double>(),
         kl21 = (l2.exp() * (l2 - l1)).sum().item<double>();
    const double paper = ce1.loss.item<double>() + ce2.loss.item<double>() + alpha / 2 * (kl12 + kl21);
    CHECK(sums.loss.item<double>() == Approx(paper / 2).epsilon(1e-5));
    CHECK(sums.nll.item<double>() ==
          Approx((ce1.nll.item<double>() + ce2.nll.item<double>()) / 2).epsilon(1e-5));
  }
  CHECK_THROWS(aiayn::rdrop_loss(logits, targets.narrow(0, 0, n - 1), 0.1, 1.0));

  auto c = aiayn::load_model_config(std::string(AIAYN_SOURCE_DIR) + "/configs/tiny.json");
  c.src_vocab = c.tgt_vocab = 20;
  c.p_drop = 0.3;
  aiayn::Transformer model(c);
  aiayn::Batch batch = two_pair_batch();
  torch::NoGradGuard no_grad;
  // Without dropout both passes agree: the KL is 0 and the loss the plain criterion's.
  model->eval();
  CHECK(aiayn::rdrop_criterion(*model, batch, 0.1, 5.0, torch::kCPU).loss.item<double>() ==
        Approx(aiayn::batch_criterion(*model, batch, 0.1, torch::kCPU).loss.item<double>()).epsilon(1e-5));
  // With dropout the passes differ (the same masks for both calls: the same seed).
  model->train();
  torch::manual_seed(9);
  const double with_kl = aiayn::rdrop_criterion(*model, batch, 0.1, 5.0, torch::kCPU).loss.item<double>();
  torch::manual_seed(9);
  const double without = aiayn::rdrop_criterion(*model, batch, 0.1, 0.0, torch::kCPU).loss.item<double>();
  CHECK(with_kl > without + 1e-4);
}

TEST_CASE("the update step: non-finite losses skip, K in a row end training, gradients per token",
          "[train][update]") {
  aiayn::TrainConfig config;
  config.max_bad_steps = 3;
  config.lr_schedule = aiayn::LrSchedule::inverse_sqrt;
  config.lr = 0.1;
  config.warmup_steps = 1;
  auto w = torch::ones({3}).requires_grad_();
  torch::OrderedDict<std::string, torch::Tensor> named;
  named.insert("w", w);
  aiayn::Adam adam(named, 0.9, 0.98, 1e-9);
  aiayn::UpdateStep update({w}, adam, config, 4);
  // backward(g): every element's gradient grows by g, as a batch's backward would.
  auto backward = [&](double g) { (w * g).sum().backward(); };
  auto weights_are_ones = [&] { return torch::equal(w.detach(), torch::ones({3})); };
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();

  // The test double of a diverging batch: a NaN loss. Skipped, gradients
  // zero, weights untouched.
  backward(2.0);
  auto bad = aiayn::Tally::of(nan, nan, 10, 10);
  CHECK(update.apply(bad, 1) == aiayn::UpdateStep::Outcome::skipped_loss);
  CHECK(w.grad().abs().sum().item<double>() == 0.0);
  CHECK(weights_are_ones());

  // A finite loss: applied, the gradients divided by the update's target
  // tokens first (8 / 4 = 2 per element, norm sqrt(12)).
  backward(8.0);
  auto good = aiayn::Tally::of(1.0, 1.0, 4, 4);
  CHECK(update.apply(good, 2) == aiayn::UpdateStep::Outcome::applied);
  CHECK(update.grad_norm() == Approx(std::sqrt(12.0)));
  CHECK((w.detach() < 1.0).all().item<bool>());
  CHECK(w.grad().abs().sum().item<double>() == 0.0);

  // The count of non-finite losses restarts after a good update; the third
  // in a row ends training, naming the step.
  for (int64_t step : {3, 4}) {
    backward(1.0);
    auto infinite = aiayn::Tally::of(inf, inf, 4, 4);
    CHECK(update.apply(infinite, step) == aiayn::UpdateStep::Outcome::skipped_loss);
  }
  backward(1.0);
  auto last = aiayn::Tally::of(nan, nan, 4, 4);
  CHECK_THROWS_AS(update.apply(last, 5), aiayn::DivergenceError);
  auto again = aiayn::Tally::of(nan, nan, 4, 4);
  CHECK_THROWS_WITH(update.apply(again, 6),
                    Catch::StartsWith("training diverged: 4 non-finite losses in a row, the last at step 6"));

  // A finite loss with an overflowing gradient is skipped too.
  auto v = torch::ones({2}).requires_grad_();
  torch::OrderedDict<std::string, torch::Tensor> named_v;
  named_v.insert("v", v);
  aiayn::Adam adam_v(named_v, 0.9, 0.98, 1e-9);
  aiayn::UpdateStep update_v({v}, adam_v, config, 4);
  (v * inf).sum().backward();
  auto finite = aiayn::Tally::of(1.0, 1.0, 2, 2);
  CHECK(update_v.apply(finite, 1) == aiayn::UpdateStep::Outcome::skipped_gradient);
  CHECK(torch::equal(v.detach(), torch::ones({2})));
}

TEST_CASE("under fp16 the update step unscales the gradients and halves the scale on overflow",
          "[train][precision]") {
  aiayn::TrainConfig config;
  config.precision = aiayn::Precision::fp16;
  config.lr_schedule = aiayn::LrSchedule::inverse_sqrt;
  config.lr = 0.1;
  config.warmup_steps = 1;
  auto w = torch::ones({3}).requires_grad_();
  torch::OrderedDict<std::string, torch::Tensor> named;
  named.insert("w", w);
  aiayn::Adam adam(named, 0.9, 0.98, 1e-9);
  aiayn::UpdateStep update({w}, adam, config, 4);
  REQUIRE(update.loss_multiplier() == 32768.0);
  // The backward pass of the scaled loss: 8 per element, times the scale;
  // divided by the scale and 4 target tokens: 2 per element again.
  (w * (8.0 * update.loss_multiplier())).sum().backward();
  auto good = aiayn::Tally::of(1.0, 1.0, 4, 4);
  CHECK(update.apply(good, 1) == aiayn::UpdateStep::Outcome::applied);
  CHECK(update.grad_norm() == Approx(std::sqrt(12.0)));
  // An overflowing gradient: skipped, weights kept, the scale halved.
  const auto before = w.detach().clone();
  (w * std::numeric_limits<double>::infinity()).sum().backward();
  auto overflowed = aiayn::Tally::of(1.0, 1.0, 4, 4);
  CHECK(update.apply(overflowed, 2) == aiayn::UpdateStep::Outcome::skipped_gradient);
  CHECK(torch::equal(w.detach(), before));
  CHECK(update.loss_multiplier() == 16384.0);
  REQUIRE(update.loss_scale().has_value());
  CHECK(update.loss_scale()->good_updates() == 0);
}
