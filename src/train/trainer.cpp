#include "src/train/trainer.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "aiayn_version.h"
#include "models/transformer.h"
#include "src/common/app.h"
#include "src/common/blas_kernel.h"
#include "src/common/error.h"
#include "src/common/hash.h"
#include "src/common/text_reader.h"
#include "src/data/batching.h"
#include "src/data/bpe_dropout.h"
#include "src/data/token_cache.h"
#include "src/data/tokenizer.h"
#include "src/decode/bleu.h"
#include "src/decode/translator.h"
#include "src/train/checkpoint_writer.h"
#include "src/train/criterion.h"
#include "src/train/distributed.h"
#include "src/train/ema.h"
#include "src/train/loss.h"
#include "src/train/optimizer.h"
#include "src/train/train_schedule.h"
#include "src/train/update_step.h"

namespace aiayn {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

std::string clock_string(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(seconds);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

// A corpus ready for batching: its cache and the pairs that pass the filters.
struct Corpus {
  TokenCache cache;
  std::vector<int64_t> pairs;
};

class Trainer {
 public:
  Trainer(const ExperimentConfig& config, const RunOptions& options)
      : config_(config), options_(options) {}
  TrainResult run();

 private:
  void prepare_save_dir();
  void setup_logging();
  void setup_tokenizer();
  void load_data();
  // With several ranks, rank 0 prepares the save directory, tokenizer and
  // token caches first; the others then open what it made.
  void prepare();
  bool leader() const { return comm_ == nullptr || comm_->rank() == 0; }
  // Every rank stops when any rank has a reason to (limits, signals).
  std::optional<std::string> agree_on_stop(std::optional<std::string> reason, bool* interrupted);
  Corpus load_corpus(const std::string& src, const std::string& tgt, const std::string& name);
  void restore(const std::string& dir);
  // --init as a checkpoint directory, or "" (a weights file, or no --init).
  std::string init_checkpoint() const;
  void initialise_weights();
  // The moving average (train.ema_decay), started from the weights as they
  // are; rank 0 alone keeps one, as it alone validates and saves.
  void start_ema();
  // `epoch`: the batch's, for BPE-dropout's draw.
  Tally forward_backward(const std::vector<int64_t>& pairs, int64_t epoch);
  // BPE-dropout (data.bpe_dropout), checked to give back the cache at p = 0.
  void setup_bpe_dropout();
  // One update over update_freq x world_size batches (src/train/update_step.h);
  // false when it was skipped (the step count does not advance).
  bool update();
  double validate();
  void validate_and_track();
  void log_progress(const Tally& since_log, double seconds_since_log, double grad_norm);
  void draw_progress_bar() const;
  void checkpoint(bool validated);
  void finish(bool interrupted);
  std::optional<std::string> stop_reason() const;
  double elapsed() const;
  // The directory `last` points at, or "" when there is none yet.
  std::string resolve_checkpoint_or_empty() const;
  nlohmann::json batching_key() const;
  void metric(nlohmann::json record);

  ExperimentConfig config_;
  RunOptions options_;
  Communicator* comm_ = options_.communicator;
  std::shared_ptr<spdlog::logger> log_;
  std::ofstream metrics_;
  std::optional<TokenizerPair> tokenizers_;
  std::optional<Corpus> train_, valid_;
  std::optional<BpeDropout> source_dropout_, target_dropout_;  // one of them when joint
  std::vector<std::string> valid_src_text_, valid_tgt_text_;  // for validation BLEU
  std::optional<BatchPlanner> planner_;
  std::optional<BatchStream> stream_;
  Transformer model_{nullptr};
  std::optional<Adam> adam_;
  std::optional<UpdateStep> update_step_;
  std::optional<ExponentialMovingAverage> ema_;
  std::vector<torch::Tensor> params_;
  TrainingState state_;
  Clock::time_point start_;
  double seconds_before_ = 0;  // train_seconds of the checkpoint resumed from
  int64_t steps_at_start_ = 0;
  Tally update_tally_;  // the current update's sums
  std::string last_checkpoint_;
};

void Trainer::prepare_save_dir() {
  const auto& dir = options_.save_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_path_error(dir, "cannot create the checkpoint directory", ec.value());
  if (!fs::is_directory(dir)) throw InputError(dir + ": is not a directory (--save-dir)");
  // Temporaries left by a run that was killed mid-write are garbage.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0 || name.rfind(".old-", 0) == 0 ||
        name.find(".tmp-") != std::string::npos) {
      fs::remove_all(entry.path(), ec);
    }
  }
  const auto probe = fs::path(dir) / ".write-test";
  std::ofstream(probe) << "x";
  if (!fs::exists(probe)) throw io_error(dir, "checkpoint directory is not writable");
  fs::remove(probe, ec);
  if (!options_.resume && fs::exists(fs::path(dir) / "last")) {
    throw InputError(dir + ": already holds checkpoints; continue them with --resume, or choose "
                           "another --save-dir");
  }
  if (options_.resume && !fs::exists(fs::path(dir) / "last")) {
    throw InputError(dir + ": --resume, but there is no checkpoint (no " + dir + "/last)");
  }
}

void Trainer::setup_logging() {
  if (!leader()) {
    // The other ranks see the same (all-reduced) numbers: they report errors only.
    log_ = std::make_shared<spdlog::logger>(
        "train", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    log_->set_pattern("[%Y-%m-%d %H:%M:%S] [rank " + std::to_string(comm_->rank()) + "] %v");
    log_->set_level(spdlog::level::err);
    return;
  }
  auto console = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(
      (fs::path(options_.save_dir) / "train.log").string());
  log_ = std::make_shared<spdlog::logger>("train", spdlog::sinks_init_list{console, file});
  log_->set_pattern("[%Y-%m-%d %H:%M:%S] %v");
  log_->flush_on(spdlog::level::info);
  metrics_.open(fs::path(options_.save_dir) / "metrics.jsonl", std::ios::app);
}

void Trainer::metric(nlohmann::json record) {
  if (!leader()) return;
  record["time"] = elapsed();
  metrics_ << record.dump() << "\n";
  metrics_.flush();
}

void Trainer::setup_tokenizer() {
  const auto& d = config_.data;
  // Given models must be the ones a checkpoint was trained with.
  auto check_given = [&](const TokenizerPair& saved, const std::string& what, const std::string& fix) {
    for (auto [path, tokenizer] : {std::pair{d.spm_model, &saved.target}, {d.spm_src_model, &saved.source}}) {
      if (!path.empty() && Tokenizer::load(path).hash() != tokenizer->hash()) {
        throw InputError(path + ": differs from the tokenizer " + what + "; " + fix);
      }
    }
  };
  if (options_.resume) {
    tokenizers_ = load_checkpoint_tokenizers(resolve_checkpoint(options_.save_dir));
    check_given(*tokenizers_, "the checkpoints in " + options_.save_dir + " were trained with",
                "resume with the same one");
  } else if (const auto dir = init_checkpoint(); !dir.empty()) {
    // The weights' embeddings are only meaningful with their own tokenizer.
    tokenizers_ = load_checkpoint_tokenizers(dir);
    check_given(*tokenizers_, dir + " was trained with", "--init needs the same one (or no data.spm_model)");
  } else if (!d.spm_model.empty()) {
    auto target = Tokenizer::load(d.spm_model);
    tokenizers_ = TokenizerPair{d.joint_vocabulary ? target : Tokenizer::load(d.spm_src_model), target,
                                !d.joint_vocabulary};
  } else if (!options_.init.empty()) {
    throw InputError("--init " + options_.init + ": a weights file needs the tokenizer it was "
                     "trained with: set data.spm_model");
  } else if (!leader()) {
    auto target = Tokenizer::load((fs::path(options_.save_dir) / "spm.model").string());
    tokenizers_ = TokenizerPair{
        d.joint_vocabulary ? target : Tokenizer::load((fs::path(options_.save_dir) / "spm.src.model").string()),
        target, !d.joint_vocabulary};
  } else {
    TokenizerTrainOptions o;
    o.model_type = d.spm_type;
    o.vocab_size = d.vocab_size;
    o.character_coverage = d.character_coverage;
    o.split_digits = d.split_digits;
    o.seed = config_.train.seed;
    o.threads = options_.threads;
    const auto prefix = (fs::path(options_.save_dir) / "spm").string();
    if (d.joint_vocabulary) {
      log_->info("training a {} SentencePiece model ({} pieces, joint) on {} and {}", d.spm_type,
                 d.vocab_size, d.train_src, d.train_tgt);
      Tokenizer::train({d.train_src, d.train_tgt}, prefix, o);
      auto joint = Tokenizer::load(prefix + ".model");
      tokenizers_ = TokenizerPair{joint, joint};
    } else {
      log_->info("training two {} SentencePiece models ({} pieces each): source on {}, target on {}",
                 d.spm_type, d.vocab_size, d.train_src, d.train_tgt);
      Tokenizer::train({d.train_src}, prefix + ".src", o);
      Tokenizer::train({d.train_tgt}, prefix, o);
      tokenizers_ = TokenizerPair{Tokenizer::load(prefix + ".src.model"), Tokenizer::load(prefix + ".model"), true};
    }
  }
  config_.model.src_vocab = tokenizers_->source.vocab_size();
  config_.model.tgt_vocab = tokenizers_->target.vocab_size();
}

Corpus Trainer::load_corpus(const std::string& src, const std::string& tgt,
                            const std::string& name) {
  CorpusSpec spec;
  spec.src_path = src;
  spec.tgt_path = tgt;
  spec.cache_dir = (fs::path(options_.save_dir) / "cache").string();
  spec.skip_invalid_utf8 = config_.data.skip_invalid_utf8;
  spec.threads = options_.threads;
  auto cache = TokenCache::open_or_build(spec, tokenizers_->source, tokenizers_->target,
                                         [&](const std::string& m) { log_->info("{}", m); });
  FilterOptions f;
  f.max_length = std::min(config_.data.max_length, config_.model.max_positions - 1);
  f.max_ratio = config_.data.max_ratio;
  FilterReport report;
  auto pairs = filter_pairs(cache, f, &report, src + " / " + tgt);
  log_->info("{}: {}", name, report.describe());
  return {std::move(cache), std::move(pairs)};
}

std::string Trainer::init_checkpoint() const {
  if (options_.init.empty() || !fs::is_directory(options_.init)) return "";
  return resolve_checkpoint(options_.init);
}

void Trainer::initialise_weights() {
  const auto dir = init_checkpoint();
  const auto file = dir.empty() ? options_.init : (fs::path(dir) / "model.pt").string();
  load_weights_file(*model_, file);
  log_->info("initialised from {} (weights only: optimizer, schedule and data start fresh)", file);
}

void Trainer::restore(const std::string& dir) {
  auto saved = read_checkpoint_config(dir);
  if (model_config_to_json(saved.model) != model_config_to_json(config_.model)) {
    throw InputError(dir + "/config.json: the checkpoint's model differs from the config's (" +
                     model_config_to_json(saved.model).dump() + " vs " +
                     model_config_to_json(config_.model).dump() +
                     "); resume with the same model");
  }
  auto meta = read_checkpoint_meta(dir);
  if (!meta.state.batching.is_null() && meta.state.batching != batching_key()) {
    throw InputError(dir + "/meta.json: the checkpoint was trained with other data or batching "
                     "settings (" + meta.state.batching.dump() + ", now " + batching_key().dump() +
                     "); resume with the same ones so the data position stays meaningful");
  }
  start_ema();
  load_training_weights(*model_, ema_ ? &*ema_ : nullptr, dir);
  load_optimizer(*adam_, dir, meta.state.step);
  load_rng(dir);
  state_ = meta.state;
  seconds_before_ = meta.state.train_seconds;
  log_->info("resumed from {} at step {} (epoch {}, batch {})", dir, state_.step,
             state_.position.epoch + 1, state_.position.index);
}

void Trainer::start_ema() {
  if (config_.train.ema_decay > 0 && leader() && !ema_) {
    ema_.emplace(model_->named_parameters(), config_.train.ema_decay);
  }
}

std::string Trainer::resolve_checkpoint_or_empty() const {
  if (!fs::exists(fs::path(options_.save_dir) / "last")) return "";
  return resolve_checkpoint(options_.save_dir);
}

// What an (epoch, batch index) position means: resuming with other data or
// batching settings would silently skip or repeat pairs.
nlohmann::json Trainer::batching_key() const {
  return {{"train_cache", fs::path(train_->cache.path()).filename().string()},
          {"max_tokens", config_.train.max_tokens},
          {"seed", config_.train.seed},
          {"max_length", config_.data.max_length},
          {"max_ratio", config_.data.max_ratio}};
}

double Trainer::elapsed() const {
  return seconds_before_ + std::chrono::duration<double>(Clock::now() - start_).count();
}

Tally Trainer::forward_backward(const std::vector<int64_t>& pairs, int64_t epoch) {
  Resampling resampling;
  if (target_dropout_) {
    const BpeDropout* target = &*target_dropout_;
    resampling = {source_dropout_ ? &*source_dropout_ : target, target, config_.data.bpe_dropout,
                  config_.train.seed, epoch,
                  std::min(config_.data.max_length, config_.model.max_positions - 1)};
  }
  auto batch = make_batch(train_->cache, pairs, resampling);
  auto sums = batch_criterion(*model_, batch, config_.train.label_smoothing, options_.device);
  sums.loss.backward();
  return {sums.loss.item<double>(), sums.nll.item<double>(), batch.src_tokens, batch.tgt_tokens};
}

// Each entry of AIAYN_INJECT_NAN_AT (comma-separated steps; repeat a step to
// fail its retries too) makes one update's loss NaN: a fault-injection hook
// so tests can exercise the non-finite-loss handling.
bool inject_nan(int64_t step) {
  static std::vector<int64_t> steps = [] {
    std::vector<int64_t> out;
    if (const char* env = std::getenv("AIAYN_INJECT_NAN_AT")) {
      std::stringstream in(env);
      std::string item;
      while (std::getline(in, item, ',')) out.push_back(std::stoll(item));
    }
    return out;
  }();
  auto it = std::find(steps.begin(), steps.end(), step);
  if (it == steps.end()) return false;
  steps.erase(it);
  return true;
}

// Batch j of the update `step` draws its dropout masks from a generator
// seeded by (seed, step, j) alone, so training is the same whichever rank
// (or how many ranks) computes the batch.
uint64_t batch_seed(int64_t seed, int64_t step, int64_t j) {
  const int64_t key[3] = {seed, step, j};
  return hash_bytes(key, sizeof key) >> 1;
}

bool Trainer::update() {
  // An update is update_freq x world_size consecutive batches of the stream;
  // rank r computes every world_size-th of them, starting at r.
  const int world = comm_ ? comm_->world_size() : 1, rank = comm_ ? comm_->rank() : 0;
  Tally tally;
  for (int64_t j = 0; j < config_.train.update_freq * world; ++j) {
    const int64_t epoch = stream_->position().epoch;  // the epoch next() draws from
    const auto& pairs = stream_->next();
    if (j % world != rank) continue;
    torch::manual_seed(batch_seed(config_.train.seed, state_.step + 1, j));
    tally.add(forward_backward(pairs, epoch));
  }
  if (inject_nan(state_.step + 1)) tally.loss = std::nan("");
  const auto outcome = update_step_->apply(tally, state_.step + 1);
  if (outcome != UpdateStep::Outcome::applied) {
    ++state_.skipped_updates;
    log_->warn("step {}: non-finite {}, update skipped", state_.step + 1,
               outcome == UpdateStep::Outcome::skipped_loss ? "loss" : "gradient norm");
    return false;
  }
  update_tally_ = tally;
  ++state_.step;
  if (ema_) ema_->update(state_.step);
  return true;
}

double Trainer::validate() {
  torch::NoGradGuard no_grad;
  // What is scored is what a checkpoint's model.pt holds: the average, if any.
  ExponentialMovingAverage::Scope averaged(ema_ ? &*ema_ : nullptr);
  model_->eval();
  BatchingOptions o;
  o.max_tokens = config_.train.max_tokens;
  BatchPlanner planner(valid_->cache, valid_->pairs, o);
  double nll = 0;
  int64_t tokens = 0;
  for (const auto& pairs : planner.epoch(0)) {
    auto batch = make_batch(valid_->cache, pairs);
    nll += batch_criterion(*model_, batch, 0.0, options_.device).nll.item<double>();
    tokens += batch.tgt_tokens;
  }
  const double loss = nll / static_cast<double>(tokens);
  nlohmann::json record = {{"kind", "valid"}, {"step", state_.step}, {"loss", loss}, {"ppl", std::exp(loss)}};
  std::string bleu_text;
  double criterion = loss;
  if (config_.train.valid_bleu) {
    // BLEU of the model's own translations (sacreBLEU-compatible, cased).
    Translator translator(model_, *tokenizers_, options_.device);
    TranslateOptions o;
    o.search.beam = config_.train.valid_beam;
    o.search.length_penalty = config_.train.valid_alpha;
    auto results = translator.translate(valid_src_text_, o);
    std::vector<std::string> hyps;
    for (const auto& r : results) hyps.push_back(r.texts.empty() ? "" : r.texts[0]);
    auto bleu = corpus_bleu(hyps, valid_tgt_text_);
    record["bleu"] = bleu.score;
    bleu_text = ", " + bleu.format();
    criterion = -bleu.score;
  }
  model_->train();
  log_->info("validation at step {}: loss {:.4f}, perplexity {:.2f}{} ({} sentences)", state_.step,
             loss, std::exp(loss), bleu_text, valid_->pairs.size());
  metric(record);
  return criterion;
}

// A status line redrawn in place, for terminals only (CI and pipes get the
// periodic log lines alone).
void Trainer::draw_progress_bar() const {
  const auto& c = config_.train;
  double done = static_cast<double>(state_.step) / c.max_steps;
  if (c.max_minutes > 0) done = std::max(done, elapsed() / (c.max_minutes * 60));
  const int width = 30, filled = static_cast<int>(std::min(1.0, done) * width);
  std::printf("\r\033[K[%s%s] %3.0f%% step %lld | loss %.3f | %s", std::string(filled, '#').c_str(),
              std::string(width - filled, '.').c_str(), 100 * std::min(1.0, done),
              static_cast<long long>(state_.step),
              update_tally_.tgt_tokens ? update_tally_.loss / update_tally_.tgt_tokens : 0.0,
              clock_string(elapsed()).c_str());
  std::fflush(stdout);
}

void Trainer::log_progress(const Tally& t, double seconds, double grad_norm) {
  const auto& c = config_.train;
  if (options_.progress_bar) std::printf("\r\033[K");
  const double loss = t.loss / t.tgt_tokens, nll = t.nll / t.tgt_tokens;
  const double lr = learning_rate(c, config_.model.d_model, std::max<int64_t>(state_.step, 1));
  // ETA against whichever limit comes first.
  const double per_step = (elapsed() - seconds_before_) /
                          std::max<int64_t>(1, state_.step - steps_at_start_);
  double eta = (c.max_steps - state_.step) * per_step;
  if (c.max_minutes > 0) eta = std::min(eta, c.max_minutes * 60 - elapsed());
  log_->info(
      "step {}/{} | epoch {} | loss {:.3f} | ppl {:.2f} | lr {:.3g} | src tok/s {:.0f} | "
      "tgt tok/s {:.0f} | gnorm {:.3f} | {} elapsed | ETA {}",
      state_.step, c.max_steps, stream_->position().epoch + 1, loss, std::exp(nll), lr,
      t.src_tokens / seconds, t.tgt_tokens / seconds, grad_norm, clock_string(elapsed()),
      clock_string(eta));
  metric({{"kind", "train"}, {"step", state_.step}, {"epoch", stream_->position().epoch + 1},
          {"loss", loss}, {"nll", nll}, {"ppl", std::exp(nll)}, {"lr", lr},
          {"src_tok_s", t.src_tokens / seconds}, {"tgt_tok_s", t.tgt_tokens / seconds},
          {"gnorm", grad_norm}});
}

void Trainer::checkpoint(bool validated) {
  // The criterion belongs to the checkpoint only when it validated this step.
  if (!validated) state_.valid_criterion = std::numeric_limits<double>::quiet_NaN();
  state_.position = stream_->position();
  state_.train_seconds = elapsed();
  state_.batching = batching_key();
  last_checkpoint_ = save_checkpoint(options_.save_dir, *model_, &*adam_, config_, state_,
                                     *tokenizers_, ema_ ? &*ema_ : nullptr);
  if (validated && state_.stale_validations == 0) {
    link_checkpoint(options_.save_dir, "best", last_checkpoint_);
  }
  prune_checkpoints(options_.save_dir, config_.train.keep_last, config_.train.keep_best);
  log_->info("saved {}", last_checkpoint_);
}

// Validates, and counts validations since the best (patience, `best`).
void Trainer::validate_and_track() {
  const double criterion = validate();
  state_.valid_criterion = criterion;
  if (criterion < state_.best_valid) {
    state_.best_valid = criterion;
    state_.stale_validations = 0;
  } else {
    ++state_.stale_validations;
  }
}

// The last update's model is saved, and validated when the schedule says
// so (src/train/train_schedule.h).
void Trainer::finish(bool interrupted) {
  const auto last = resolve_checkpoint_or_empty();
  const bool saved = !last.empty() && read_checkpoint_meta(last).state.step == state_.step;
  const bool validate_now = final_validation_due(config_.train, state_.step, steps_at_start_,
                                                 valid_.has_value(), interrupted);
  if (validate_now) validate_and_track();
  // Saved again after a validation, so that the checkpoint's state has seen it.
  if (!saved || validate_now) {
    checkpoint(validate_now);
  } else if (last_checkpoint_.empty()) {
    last_checkpoint_ = last;  // resumed and stopped at once: nothing new to save
  }
}

std::optional<std::string> Trainer::stop_reason() const {
  return reason_to_stop(config_.train,
                        {state_.step, stream_->position(), elapsed(), state_.stale_validations});
}

void Trainer::load_data() {
  validate_model_config(config_.model, "model");
  const auto& d = config_.data;
  if (d.train_src.empty() || d.train_tgt.empty()) {
    throw InputError((options_.config_path.empty() ? std::string("config") : options_.config_path) +
                     ": key \"data.train_src\" and \"data.train_tgt\" must name the training files");
  }
  if (config_.train.keep_best > 0 && d.valid_src.empty()) {
    throw InputError((options_.config_path.empty() ? std::string("config") : options_.config_path) +
                     ": key \"train.keep_best\" needs a validation set (data.valid_src and "
                     "data.valid_tgt) to rank checkpoints by");
  }
  train_ = load_corpus(d.train_src, d.train_tgt, "training data");
  setup_bpe_dropout();
  if (!d.valid_src.empty() && leader()) {  // rank 0 alone validates
    valid_ = load_corpus(d.valid_src, d.valid_tgt, "validation data");
    if (config_.train.valid_bleu) {
      for (auto [path, lines] : {std::pair{d.valid_src, &valid_src_text_}, {d.valid_tgt, &valid_tgt_text_}}) {
        LineReader reader(path);
        std::string line;
        while (reader.next(&line)) lines->push_back(line);
      }
    }
  }
}

void Trainer::setup_bpe_dropout() {
  const double p = config_.data.bpe_dropout;
  if (p <= 0) return;
  target_dropout_.emplace(tokenizers_->target);
  if (!tokenizers_->joint()) source_dropout_.emplace(tokenizers_->source);
  // At p = 0 the re-merge must give SentencePiece's own pieces back; a model
  // that is not BPE (or that BPE-dropout cannot follow) shows here, not as
  // silently wrong training data.
  std::vector<int64_t> again;
  for (int side = 0; side < 2; ++side) {
    const BpeDropout& dropout = side == 0 && source_dropout_ ? *source_dropout_ : *target_dropout_;
    int64_t differ = 0, first = -1;
    for (int64_t pair : train_->pairs) {
      auto ids = side == 0 ? train_->cache.src_ids(pair) : train_->cache.tgt_ids(pair);
      dropout.resample(ids.data(), static_cast<int64_t>(ids.size()), 0.0, 0, &again);
      if (again != ids && differ++ == 0) first = pair;
    }
    if (differ > 0) {
      const auto& t = side == 0 ? tokenizers_->source : tokenizers_->target;
      throw InputError(t.path() + ": data.bpe_dropout: re-merging does not reproduce this model's "
                       "segmentation (" + std::to_string(differ) + " lines, the first line " +
                       std::to_string(first + 1) + "); BPE-dropout needs a BPE SentencePiece model");
    }
  }
  log_->info("subword regularisation: BPE-dropout p={}, drawn afresh each epoch for every training "
             "pair (seeded by seed, epoch, pair); validation keeps the cached segmentation", p);
}

void Trainer::prepare() {
  if (comm_ == nullptr) {
    prepare_save_dir();
    setup_logging();
    setup_tokenizer();
    load_data();
    return;
  }
  if (leader()) {
    try {
      prepare_save_dir();
      setup_logging();
      setup_tokenizer();
      load_data();
    } catch (const std::exception& e) {
      comm_->publish("setup", e.what());
      throw;
    }
    comm_->publish("setup", "ok");
    return;
  }
  setup_logging();
  auto status = comm_->await("setup", "waiting for rank 0 to prepare the data");
  if (status != "ok") throw InputError("rank 0 could not start: " + status);
  setup_tokenizer();
  load_data();
}

std::optional<std::string> Trainer::agree_on_stop(std::optional<std::string> reason,
                                                  bool* interrupted) {
  if (comm_ == nullptr) return reason;
  auto flags = torch::tensor({reason ? 1.0 : 0.0, *interrupted ? 1.0 : 0.0}, torch::kDouble);  // [2]
  comm_->all_reduce_sum({flags}, "stop agreement before step " + std::to_string(state_.step + 1));
  *interrupted = flags[1].item<double>() > 0;
  if (!reason && flags[0].item<double>() > 0) {
    reason = *interrupted ? "interrupted" : "another rank reached a limit";
  }
  return reason;
}

TrainResult Trainer::run() {
  start_ = Clock::now();
  if (!options_.init.empty() && !fs::exists(options_.init)) {
    throw InputError("--init " + options_.init + ": no such file or checkpoint directory");
  }
  prepare();

  torch::manual_seed(config_.train.seed);
  model_ = Transformer(config_.model);
  model_->to(options_.device);
  model_->train();
  adam_.emplace(model_->named_parameters(), config_.train.adam_beta1, config_.train.adam_beta2,
                config_.train.adam_eps, config_.train.weight_decay);
  for (auto& p : model_->parameters()) params_.push_back(p);
  update_step_.emplace(params_, *adam_, config_.train, config_.model.d_model, comm_);
  if (options_.resume) restore(resolve_checkpoint(options_.save_dir));
  if (!options_.resume && !options_.init.empty() && leader()) initialise_weights();
  // The same seed gives every rank the same weights; the broadcast makes
  // sure of it (and of resumed weights) before the first update.
  if (comm_ != nullptr) comm_->broadcast(params_, "broadcast of rank 0's weights");
  start_ema();  // unless restore() started it from the checkpoint
  steps_at_start_ = state_.step;
  log_->info("{}", model_->summary());
  log_->info("threads: {} on {}", describe_threads(), options_.device.str());
  log_->info("BLAS: {}", describe_blas());
  if (ema_) {
    log_->info("weights: moving average, decay {} (validation scores it; checkpoints hold it as "
               "model.pt, the raw weights as raw_model.pt)", ema_->decay());
  }
  // What this run ran on, first in metrics.jsonl, so figures from different
  // machines are told apart.
  metric({{"kind", "run"}, {"version", AIAYN_VERSION}, {"libtorch", TORCH_VERSION},
          {"blas", describe_blas()}, {"blas_kernel", openblas_kernel()}, {"cpu", describe_cpu()},
          {"threads", describe_threads()}, {"device", options_.device.str()},
          {"resumed_at", state_.step}});
  log_->info("config: {}", config_.to_json().dump());
  if (comm_ != nullptr) {
    log_->info("data-parallel over {} ranks: an update is {} batches of up to {} tokens",
               comm_->world_size(), comm_->world_size() * config_.train.update_freq,
               config_.train.max_tokens);
  }

  BatchingOptions b;
  b.max_tokens = config_.train.max_tokens;
  b.seed = config_.train.seed;
  planner_.emplace(train_->cache, train_->pairs, b);
  stream_.emplace(*planner_, state_.position);

  TrainResult result;
  Tally since_log;
  auto log_start = Clock::now();
  std::optional<std::string> reason;
  while (true) {
    reason = stop_reason();
    bool interrupted = options_.stop_requested && options_.stop_requested->load();
    if (!reason && interrupted) reason = "interrupted";
    reason = agree_on_stop(reason, &interrupted);
    if (reason) {
      result.interrupted = interrupted;
      break;
    }
    if (!update()) continue;  // skipped: the same step is tried with the next batch
    since_log.add(update_tally_);
    if (!leader()) continue;
    const auto& c = config_.train;
    if (options_.progress_bar) draw_progress_bar();
    if (log_due(c, state_.step) && since_log.tgt_tokens > 0) {
      double seconds = std::chrono::duration<double>(Clock::now() - log_start).count();
      log_progress(since_log, seconds, update_step_->grad_norm());
      since_log = {};
      log_start = Clock::now();
    }
    const bool validated = validation_due(c, state_.step, valid_.has_value());
    if (validated) validate_and_track();
    if (save_due(c, state_.step, validated, state_.stale_validations)) checkpoint(validated);
  }
  if (leader()) finish(result.interrupted);
  // No rank leaves (taking the store or its group with it) before rank 0 has saved.
  if (comm_ != nullptr) comm_->barrier("final checkpoint");
  result.steps = state_.step;
  result.last_checkpoint = last_checkpoint_;
  result.stop_reason = *reason;
  if (result.interrupted) {
    log_->info("interrupted at step {}; continue with: aiayn-train --config {} --save-dir {} --resume",
               state_.step, options_.config_path, options_.save_dir);
  } else {
    log_->info("done: {} after {} steps ({} skipped), {}", *reason, state_.step,
               state_.skipped_updates, clock_string(elapsed()));
  }
  return result;
}

}  // namespace

TrainResult train(const ExperimentConfig& config, const RunOptions& options) {
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
