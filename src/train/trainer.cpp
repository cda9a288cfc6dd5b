#include "src/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "aiayn_version.h"
#include "models/transformer.h"
#include "src/common/app.h"
#include "src/common/blas_kernel.h"
#include "src/common/build_info.h"
#include "src/common/error.h"
#include "src/common/hash.h"
#include "src/common/precision.h"
#include "src/data/batch_prefetch.h"
#include "src/data/batching.h"
#include "src/decode/checkpoint_reader.h"
#include "src/train/checkpoint_writer.h"
#include "src/train/criterion.h"
#include "src/train/distributed.h"
#include "src/train/ema.h"
#include "src/train/optimizer.h"
#include "src/train/progress.h"
#include "src/train/rdrop.h"
#include "src/train/train_schedule.h"
#include "src/train/training_setup.h"
#include "src/train/update_step.h"
#include "src/train/validator.h"

namespace aiayn {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// Batch j of the update `step` draws its dropout masks from a generator
// seeded by (seed, step, j) alone, so training is the same whichever rank
// (or how many ranks) computes the batch.
uint64_t batch_seed(int64_t seed, int64_t step, int64_t j) {
  const int64_t key[3] = {seed, step, j};
  return hash_bytes(key, sizeof key) >> 1;
}

// The checks a run passes before anything is set up or written.
void check_can_start(const ExperimentConfig& config, const RunOptions& options) {
  if (!options.init.empty() && !fs::exists(options.init)) {
    throw InputError("--init " + options.init + ": no such file or checkpoint directory");
  }
  if (const auto why = precision_unavailable_reason(config.train.precision, options.device); !why.empty()) {
    throw InputError(options.config_path + ": train.precision: " + why);
  }
}

// The config with the vocabulary sizes of the tokenizers the setup found.
ExperimentConfig with_vocabulary(ExperimentConfig config, const TokenizerPair& tokenizers) {
  config.model.src_vocab = tokenizers.source.vocab_size();
  config.model.tgt_vocab = tokenizers.target.vocab_size();
  return config;
}

// A fresh model: the seed makes its weights, the same on every rank.
Transformer make_model(const ExperimentConfig& config, const torch::Device& device) {
  torch::manual_seed(config.train.seed);
  Transformer model(config.model);
  model->to(device);
  model->train();
  return model;
}

BatchingOptions batching_options(const TrainConfig& c) {
  BatchingOptions b;
  b.max_tokens = c.max_tokens;
  b.seed = c.seed;
  return b;
}

// fp16's loss scale as a resumed state left it (a fresh run's starts in UpdateStep).
std::optional<DynamicLossScale> resumed_loss_scale(const TrainConfig& c, const TrainingState& state) {
  if (c.precision != Precision::fp16 || state.loss_scale <= 0) return std::nullopt;
  return DynamicLossScale(state.loss_scale, state.loss_scale_good_updates);
}

// The training loop (section 5) and the state it carries between updates.
// The constructor builds every part, in order, before the loop starts:
// what it does at each step is the schedule's to say
// (src/train/train_schedule.h); how an update is applied is the update
// step's (src/train/update_step.h); the setup, validation, checkpoints and
// progress are units of their own.
class Trainer {
 public:
  Trainer(const ExperimentConfig& config, const RunOptions& options);
  TrainResult run();

 private:
  // Restores weights, optimizer and generator from a checkpoint; its state.
  TrainingState restore(const std::string& dir);
  void initialise_weights();
  // The moving average (train.ema_decay) of the weights as they now are;
  // rank 0 alone keeps one, as it alone validates and saves.
  void start_ema();
  void log_run_header();
  // The loop's steps.
  std::optional<std::string> stop_reason(bool* interrupted);
  // Every rank stops when any rank has a reason to (limits, signals).
  std::optional<std::string> agree_on_stop(std::optional<std::string> reason, bool* interrupted);
  // One update over update_freq x world_size batches; false when it was
  // skipped (the step count does not advance).
  bool update();
  // `epoch`: the batch's, for BPE-dropout's draw.
  Tally forward_backward(const std::vector<int64_t>& pairs, int64_t epoch);
  // data.bpe_dropout's resamplers for `epoch`; none without it.
  Resampling resampling(int64_t epoch) const;
  std::unique_ptr<BatchPrefetcher> make_prefetcher() const;
  void after_update(Tally& since_log, Clock::time_point& log_start);
  void log_skip(UpdateStep::Outcome outcome);
  void validate_and_track();
  void log_progress(const Tally::Values& since_log, double seconds_since_log);
  void checkpoint(bool validated);
  void finish(bool interrupted);
  TrainResult report(bool interrupted, const std::string& reason);

  bool leader() const { return comm_ == nullptr || comm_->rank() == 0; }
  double elapsed() const;
  nlohmann::json batching_key() const;
  spdlog::logger& log() const { return setup_.run_dir->log(); }
  void metric(nlohmann::json record) { setup_.run_dir->metric(std::move(record), elapsed()); }
  // --record-batches: the corpus lines (1-based) of batch j of the next update.
  void record_batch(int64_t j, int64_t epoch, const std::vector<int64_t>& pairs);

  // In the order the constructor builds them.
  Clock::time_point start_ = Clock::now();
  RunOptions options_;
  Communicator* comm_ = options_.communicator;
  // Where the last progress line left off: its step and collective seconds.
  int64_t step_at_log_ = 0;
  double reduce_seconds_at_log_ = 0, sync_seconds_at_log_ = 0;
  TrainingSetup setup_;
  ExperimentConfig config_;             // with the tokenizers' vocabulary sizes
  std::optional<Validator> validator_;  // only with validation data (rank 0)
  Transformer model_;
  std::vector<torch::Tensor> params_;
  Adam adam_;
  std::string last_checkpoint_;  // written by this run, or the one resumed from
  double seconds_before_ = 0;    // train_seconds of the checkpoint resumed from
  int64_t saved_step_ = -1;      // the step of the newest checkpoint on disk
  TrainingState state_;          // restore() sets the three above first
  int64_t steps_at_start_ = state_.step;
  UpdateStep update_step_;
  std::optional<ExponentialMovingAverage> ema_;  // only with train.ema_decay (rank 0)
  BatchPlanner planner_;
  BatchStream stream_;
  // With data.bpe_dropout only: its draw runs ahead on another thread.
  std::unique_ptr<BatchPrefetcher> prefetcher_ = make_prefetcher();
  ProgressReporter progress_;
  Tally update_tally_;  // the current update's sums, on the device
};

Trainer::Trainer(const ExperimentConfig& config, const RunOptions& options)
    : options_(options),
      setup_(set_up_training(config, options)),
      config_(with_vocabulary(config, setup_.data.tokenizers)),
      model_(make_model(config_, options_.device)),
      params_(model_->parameters()),
      adam_(model_->named_parameters(), config_.train.adam_beta1, config_.train.adam_beta2,
            config_.train.adam_eps, config_.train.weight_decay),
      state_(options_.resume ? restore(resolve_checkpoint(options_.save_dir)) : TrainingState{}),
      update_step_(params_, adam_, config_.train, config_.model.d_model, comm_,
                   resumed_loss_scale(config_.train, state_)),
      planner_(setup_.data.train.cache, setup_.data.train.pairs, batching_options(config_.train)),
      stream_(planner_, state_.position),
      progress_(config_.train.max_steps, config_.train.max_minutes, options_.progress_bar) {
  if (setup_.data.valid) validator_.emplace(setup_.data, config_.train, options_.device);
  if (!options_.resume && !options_.init.empty() && leader()) initialise_weights();
  // The same seed gives every rank the same weights; the broadcast makes
  // sure of it (and of resumed weights) before the first update.
  if (comm_ != nullptr) comm_->broadcast(params_, "broadcast of rank 0's weights");
  start_ema();
  log_run_header();
}

TrainResult Trainer::run() {
  Tally since_log;
  auto log_start = Clock::now();
  bool interrupted = false;
  std::optional<std::string> reason;
  while (!(reason = stop_reason(&interrupted))) {
    if (!update()) continue;  // skipped: the same step is tried with the next batch
    since_log.add(update_tally_);
    if (leader()) after_update(since_log, log_start);
  }
  if (leader()) finish(interrupted);
  // No rank leaves (taking the store or its group with it) before rank 0 has saved.
  if (comm_ != nullptr) comm_->barrier("final checkpoint");
  return report(interrupted, *reason);
}

void Trainer::initialise_weights() {
  const auto dir = init_checkpoint(options_);
  const auto file = dir.empty() ? options_.init : (fs::path(dir) / "model.pt").string();
  load_weights_file(*model_, file);
  log().info("initialised from {} (weights only: optimizer, schedule and data start fresh)", file);
}

TrainingState Trainer::restore(const std::string& dir) {
  auto saved = read_checkpoint_config(dir);
  if (model_config_to_json(saved.model) != model_config_to_json(config_.model)) {
    throw InputError(dir + "/config.json: the checkpoint's model differs from the config's (" +
                     model_config_to_json(saved.model).dump() + " vs " +
                     model_config_to_json(config_.model).dump() + "); resume with the same model");
  }
  auto meta = read_checkpoint_meta(dir);
  if (!meta.state.batching.is_null() && meta.state.batching != batching_key()) {
    throw InputError(dir +
                     "/meta.json: the checkpoint was trained with other data or batching "
                     "settings (" +
                     meta.state.batching.dump() + ", now " + batching_key().dump() +
                     "); resume with the same ones so the data position stays meaningful");
  }
  load_training_weights(*model_, dir);
  load_optimizer(adam_, dir, meta.state.step);
  load_rng(dir);
  seconds_before_ = meta.state.train_seconds;
  saved_step_ = meta.state.step;
  last_checkpoint_ = dir;  // until this run writes one
  log().info("resumed from {} at step {} (epoch {}, batch {})", dir, meta.state.step,
             meta.state.position.epoch + 1, meta.state.position.index);
  return meta.state;
}

void Trainer::start_ema() {
  if (config_.train.ema_decay <= 0 || !leader()) return;
  ema_.emplace(model_->named_parameters(), config_.train.ema_decay);
  // A resumed run's average is its checkpoint's model.pt (when the run kept one).
  if (options_.resume) load_average(*ema_, resolve_checkpoint(options_.save_dir));
}

void Trainer::log_run_header() {
  log().info("{}", model_->summary());
  log().info("threads: {} on {}", describe_threads(), options_.device.str());
  if (const auto p = config_.train.precision; p != Precision::fp32) {
    log().info(
        "precision: {} matrix products under autocast; weights, Adam and the loss fp32{}{}", to_string(p),
        p == Precision::fp16 ? "; dynamic loss scale from " + std::to_string(update_step_.loss_multiplier())
                             : "",
        options_.device.is_cpu() && !cpu_has_native_bf16()
            ? " (this CPU has no native bf16: expect it slower)"
            : "");
  }
  if (options_.device.is_cuda())
    log().info("TF32 for fp32 CUDA products: {}", config_.train.tf32 ? "on" : "off");
  const auto build = build_info();
  log().info("{}", describe_build(build));
  log().info("BLAS: {}", build.blas);
  if (ema_) {
    log().info(
        "weights: moving average, decay {} (validation scores it; checkpoints hold it as "
        "model.pt, the raw weights as raw_model.pt)",
        ema_->decay());
  }
  // What this run ran on, first in metrics.jsonl, so figures from different
  // machines are told apart.
  metric({{"kind", "run"},
          {"version", AIAYN_VERSION},
          {"libtorch", TORCH_VERSION},
          {"build", build_json(build)},
          {"blas", build.blas},
          {"blas_kernel", openblas_kernel()},
          {"cpu", describe_cpu()},
          {"threads", describe_threads()},
          {"device", options_.device.str()},
          {"resumed_at", state_.step}});
  log().info("config: {}", config_.to_json().dump());
  if (comm_ != nullptr) {
    log().info("data-parallel over {} ranks: an update is {} batches of up to {} tokens", comm_->world_size(),
               comm_->world_size() * config_.train.update_freq, config_.train.max_tokens);
  }
}

// What an (epoch, batch index) position means: resuming with other data or
// batching settings would silently skip or repeat pairs.
nlohmann::json Trainer::batching_key() const {
  return {{"train_cache", fs::path(setup_.data.train.cache.path()).filename().string()},
          {"max_tokens", config_.train.max_tokens},
          {"seed", config_.train.seed},
          {"max_length", config_.data.max_length},
          {"max_ratio", config_.data.max_ratio}};
}

double Trainer::elapsed() const {
  return seconds_before_ + std::chrono::duration<double>(Clock::now() - start_).count();
}

std::optional<std::string> Trainer::stop_reason(bool* interrupted) {
  auto reason =
      reason_to_stop(config_.train, {state_.step, stream_.position(), elapsed(), state_.stale_validations});
  *interrupted = options_.stop_requested && options_.stop_requested->load();
  if (!reason && *interrupted) reason = "interrupted";
  return agree_on_stop(reason, interrupted);
}

std::optional<std::string> Trainer::agree_on_stop(std::optional<std::string> reason, bool* interrupted) {
  if (comm_ == nullptr) return reason;
  auto flags = torch::tensor({reason ? 1.0 : 0.0, *interrupted ? 1.0 : 0.0}, torch::kDouble);  // [2]
  comm_->all_reduce_sum({flags}, "stop agreement before step " + std::to_string(state_.step + 1));
  *interrupted = flags[1].item<double>() > 0;
  if (!reason && flags[0].item<double>() > 0) {
    reason = *interrupted ? "interrupted" : "another rank reached a limit";
  }
  return reason;
}

Resampling Trainer::resampling(int64_t epoch) const {
  const auto& data = setup_.data;
  if (!data.target_dropout) return {};
  const BpeDropout* target = &*data.target_dropout;
  return {data.source_dropout ? &*data.source_dropout : target,
          target,
          config_.data.bpe_dropout,
          config_.train.seed,
          epoch,
          std::min(config_.data.max_length, config_.model.max_positions - 1)};
}

std::unique_ptr<BatchPrefetcher> Trainer::make_prefetcher() const {
  if (!setup_.data.target_dropout) return nullptr;
  PrefetchPlan plan;
  plan.start = state_.position;
  plan.world = comm_ ? comm_->world_size() : 1;
  plan.rank = comm_ ? comm_->rank() : 0;
  plan.group = config_.train.update_freq * plan.world;
  return std::make_unique<BatchPrefetcher>(setup_.data.train.cache, planner_, resampling(0), plan);
}

Tally Trainer::forward_backward(const std::vector<int64_t>& pairs, int64_t epoch) {
  auto batch =
      prefetcher_ ? prefetcher_->take(pairs) : make_batch(setup_.data.train.cache, pairs, resampling(epoch));
  LossSums sums;
  {
    // Autocast for the forward pass only; the backward pass follows the
    // forward's types, as torch.autocast prescribes.
    AutocastScope autocast(config_.train.precision, options_.device);
    const auto& t = config_.train;
    sums = t.rdrop_alpha > 0
               ? rdrop_criterion(*model_, batch, t.label_smoothing, t.rdrop_alpha, options_.device)
               : batch_criterion(*model_, batch, t.label_smoothing, options_.device);
  }
  const double multiplier = update_step_.loss_multiplier();  // fp16's loss scale, else 1
  (multiplier == 1.0 ? sums.loss : sums.loss * multiplier).backward();
  return Tally::of(sums.loss, sums.nll, batch.src_tokens, batch.tgt_tokens);
}

void Trainer::record_batch(int64_t j, int64_t epoch, const std::vector<int64_t>& pairs) {
  std::vector<int64_t> lines(pairs.size());
  std::transform(pairs.begin(), pairs.end(), lines.begin(), [](int64_t pair) { return pair + 1; });
  setup_.run_dir->record_batch(
      {{"update", state_.step + 1}, {"batch", j}, {"epoch", epoch}, {"lines", lines}});
}

bool Trainer::update() {
  // An update is update_freq x world_size consecutive batches of the stream;
  // rank r computes every world_size-th of them, starting at r.
  const int world = comm_ ? comm_->world_size() : 1, rank = comm_ ? comm_->rank() : 0;
  Tally tally;
  for (int64_t j = 0; j < config_.train.update_freq * world; ++j) {
    const int64_t epoch = stream_.position().epoch;  // the epoch next() draws from
    const auto& pairs = stream_.next();
    if (options_.record_batches) record_batch(j, epoch, pairs);
    if (j % world != rank) continue;
    torch::manual_seed(batch_seed(config_.train.seed, state_.step + 1, j));
    tally.add(forward_backward(pairs, epoch));
  }
  if (options_.before_update) options_.before_update(state_.step + 1, tally);
  const auto outcome = update_step_.apply(tally, state_.step + 1);
  if (outcome != UpdateStep::Outcome::applied) {
    ++state_.skipped_updates;
    log_skip(outcome);
    return false;
  }
  update_tally_ = tally;
  ++state_.step;
  if (ema_) ema_->update(state_.step);
  return true;
}

void Trainer::log_skip(UpdateStep::Outcome outcome) {
  const auto& scale = update_step_.loss_scale();
  if (outcome == UpdateStep::Outcome::skipped_gradient && scale) {
    log().warn("step {}: fp16 gradient overflow, update skipped; loss scale now {}", state_.step + 1,
               scale->scale());
    return;
  }
  log().warn("step {}: non-finite {}, update skipped", state_.step + 1,
             outcome == UpdateStep::Outcome::skipped_loss ? "loss" : "gradient norm");
}

// Rank 0's part of a step after its update: progress, validation, checkpoint,
// each when the schedule says so.
void Trainer::after_update(Tally& since_log, Clock::time_point& log_start) {
  const auto& c = config_.train;
  progress_.draw(state_.step, elapsed());
  if (log_due(c, state_.step) && !since_log.empty()) {
    // The interval's one read of the sums: it waits for the device.
    const auto values = since_log.read();
    const double seconds = std::chrono::duration<double>(Clock::now() - log_start).count();
    log_progress(values, seconds);
    since_log = {};
    log_start = Clock::now();
  }
  const bool validated = validation_due(c, state_.step, validator_.has_value());
  if (validated) validate_and_track();
  if (save_due(c, state_.step, validated, state_.stale_validations)) checkpoint(validated);
}

// Validates what a checkpoint's model.pt holds (the average, if any), and
// counts validations since the best (patience, `best`).
void Trainer::validate_and_track() {
  ExponentialMovingAverage::Scope averaged(ema_ ? &*ema_ : nullptr);
  const auto v = validator_->run(model_);
  nlohmann::json record = {
      {"kind", "valid"}, {"step", state_.step}, {"loss", v.loss}, {"ppl", std::exp(v.loss)}};
  if (v.bleu) record["bleu"] = *v.bleu;
  log().info("validation at step {}: loss {:.4f}, perplexity {:.2f}{} ({} sentences)", state_.step, v.loss,
             std::exp(v.loss), v.bleu ? ", " + v.bleu_text : std::string(), v.sentences);
  metric(record);
  state_.valid_criterion = v.criterion();
  if (v.criterion() < state_.best_valid) {
    state_.best_valid = v.criterion();
    state_.stale_validations = 0;
  } else {
    ++state_.stale_validations;
  }
}

void Trainer::log_progress(const Tally::Values& t, double seconds) {
  const auto& c = config_.train;
  ProgressInterval interval;
  interval.step = state_.step;
  interval.epoch = stream_.position().epoch + 1;
  interval.loss_sum = t.loss;
  interval.nll_sum = t.nll;
  interval.src_tokens = t.src_tokens;
  interval.tgt_tokens = t.tgt_tokens;
  interval.seconds = seconds;
  interval.grad_norm = update_step_.grad_norm();
  interval.lr = learning_rate(c, config_.model.d_model, std::max<int64_t>(state_.step, 1));
  interval.elapsed = elapsed();
  interval.eta = eta_seconds(state_.step, c.max_steps, c.max_minutes, steps_at_start_, interval.elapsed,
                             seconds_before_);
  nlohmann::json record;
  std::string line = progress_.line(interval, &record);
  const int64_t since = std::max(step_at_log_, steps_at_start_);
  if (comm_ != nullptr && state_.step > since) {
    // Per update: the gradient all-reduce, what a slower link or more ranks
    // would add (bench/multihost.sh), apart from the wait for the slowest
    // rank that the loss all-reduce before it absorbs.
    const double updates = static_cast<double>(state_.step - since);
    const double reduce_ms =
        1000 * (update_step_.gradient_reduce_seconds() - reduce_seconds_at_log_) / updates;
    const double wait_ms = 1000 * (update_step_.sync_seconds() - sync_seconds_at_log_) / updates;
    record["allreduce_ms"] = reduce_ms;
    record["rank_wait_ms"] = wait_ms;
    line +=
        fmt::format(" | all-reduce {:.1f} ms, waiting for ranks {:.1f} ms per update", reduce_ms, wait_ms);
    reduce_seconds_at_log_ = update_step_.gradient_reduce_seconds();
    sync_seconds_at_log_ = update_step_.sync_seconds();
  }
  step_at_log_ = state_.step;
  log().info("{}", line);
  metric(record);
}

void Trainer::checkpoint(bool validated) {
  // The criterion belongs to the checkpoint only when it validated this step.
  if (!validated) state_.valid_criterion = std::numeric_limits<double>::quiet_NaN();
  state_.position = stream_.position();
  state_.train_seconds = elapsed();
  state_.batching = batching_key();
  // Saved when training fp16 only: a resume in another precision drops it.
  const auto& scale = update_step_.loss_scale();
  state_.loss_scale = scale ? scale->scale() : 0.0;
  state_.loss_scale_good_updates = scale ? scale->good_updates() : 0;
  last_checkpoint_ = save_checkpoint(options_.save_dir, *model_, &adam_, config_, state_,
                                     setup_.data.tokenizers, ema_ ? &*ema_ : nullptr);
  saved_step_ = state_.step;
  if (validated && state_.stale_validations == 0) {
    link_checkpoint(options_.save_dir, "best", last_checkpoint_);
  }
  prune_checkpoints(options_.save_dir, config_.train.keep_last, config_.train.keep_best);
  log().info("saved {}", last_checkpoint_);
}

// The last update's model is saved, and validated when the schedule says
// so (src/train/train_schedule.h).
void Trainer::finish(bool interrupted) {
  const bool saved = saved_step_ == state_.step;
  const bool validate_now =
      final_validation_due(config_.train, state_.step, steps_at_start_, validator_.has_value(), interrupted);
  if (validate_now) validate_and_track();
  // Saved again after a validation, so that the checkpoint's state has seen it.
  if (!saved || validate_now) checkpoint(validate_now);
}

TrainResult Trainer::report(bool interrupted, const std::string& reason) {
  if (interrupted) {
    log().info("interrupted at step {}; continue with: aiayn-train --config {} --save-dir {} --resume",
               state_.step, options_.config_path, options_.save_dir);
  } else {
    log().info("done: {} after {} steps ({} skipped), {}", reason, state_.step, state_.skipped_updates,
               clock_string(elapsed()));
  }
  TrainResult result;
  result.steps = state_.step;
  result.last_checkpoint = last_checkpoint_;
  result.skipped_updates = state_.skipped_updates;
  result.interrupted = interrupted;
  result.stop_reason = reason;
  return result;
}

}  // namespace

TrainResult train(const ExperimentConfig& config, const RunOptions& options) {
  // The run's device is the current one for all it does (kernels, caches,
  // NCCL), so a rank on cuda:3 never opens a context on GPU 0.
  c10::OptionalDeviceGuard on_device;
  if (!options.device.is_cpu()) on_device.reset_device(options.device);
  check_can_start(config, options);
  if (options.device.is_cuda()) set_cuda_tf32(config.train.tf32);
  return Trainer(config, options).run();
}

std::string model_summary(const std::string& config_path, int64_t vocab) {
  auto config = load_model_config(config_path);
  if (vocab > 0) config.src_vocab = config.tgt_vocab = vocab;
  require_vocab(config, config_path);
  Transformer model(config);
  return config_path + ": " + model->summary();
}

}  // namespace aiayn
