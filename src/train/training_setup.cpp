#include "src/train/training_setup.h"

#include <algorithm>
#include <filesystem>

#include "src/common/error.h"
#include "src/common/text_reader.h"
#include "src/data/batching.h"
#include "src/decode/checkpoint_reader.h"
#include "src/train/distributed.h"
#include "src/train/rank_agreement.h"

namespace aiayn {

namespace fs = std::filesystem;

namespace {

// The tokenizers, in order of precedence: a resumed run's, an --init
// checkpoint's, data.spm_model, or trained here (rank 0; the other ranks
// load what it trained). Given models must be the ones a checkpoint used.
TokenizerPair choose_tokenizers(const ExperimentConfig& config, const RunOptions& options, bool leader,
                                spdlog::logger& log) {
  const auto& d = config.data;
  auto check_given = [&](const TokenizerPair& saved, const std::string& what, const std::string& fix) {
    for (auto [path, tokenizer] : {std::pair{d.spm_model, &saved.target}, {d.spm_src_model, &saved.source}}) {
      if (!path.empty() && Tokenizer::load(path).hash() != tokenizer->hash()) {
        throw InputError(path + ": differs from the tokenizer " + what + "; " + fix);
      }
    }
  };
  auto pair_of = [&](const std::string& target_path, const std::string& source_path) {
    auto target = Tokenizer::load(target_path);
    return TokenizerPair{d.joint_vocabulary ? target : Tokenizer::load(source_path), target,
                         !d.joint_vocabulary};
  };
  if (options.resume) {
    auto saved = load_checkpoint_tokenizers(resolve_checkpoint(options.save_dir));
    check_given(saved, "the checkpoints in " + options.save_dir + " were trained with",
                "resume with the same one");
    return saved;
  }
  if (const auto dir = init_checkpoint(options); !dir.empty()) {
    // The weights' embeddings are only meaningful with their own tokenizer.
    auto saved = load_checkpoint_tokenizers(dir);
    check_given(saved, dir + " was trained with", "--init needs the same one (or no data.spm_model)");
    return saved;
  }
  if (!d.spm_model.empty()) return pair_of(d.spm_model, d.spm_src_model);
  if (!options.init.empty()) {
    throw InputError("--init " + options.init +
                     ": a weights file needs the tokenizer it was "
                     "trained with: set data.spm_model");
  }
  const auto prefix = (fs::path(options.save_dir) / "spm").string();
  if (!leader) return pair_of(prefix + ".model", prefix + ".src.model");
  TokenizerTrainOptions o;
  o.model_type = to_string(d.spm_type);
  o.vocab_size = d.vocab_size;
  o.character_coverage = d.character_coverage;
  o.split_digits = d.split_digits;
  o.seed = config.train.seed;
  o.threads = options.threads;
  if (d.joint_vocabulary) {
    log.info("training a {} SentencePiece model ({} pieces, joint) on {} and {}", to_string(d.spm_type),
             d.vocab_size, d.train_src, d.train_tgt);
    Tokenizer::train({d.train_src, d.train_tgt}, prefix, o);
  } else {
    log.info("training two {} SentencePiece models ({} pieces each): source on {}, target on {}",
             to_string(d.spm_type), d.vocab_size, d.train_src, d.train_tgt);
    Tokenizer::train({d.train_src}, prefix + ".src", o);
    Tokenizer::train({d.train_tgt}, prefix, o);
  }
  return pair_of(prefix + ".model", prefix + ".src.model");
}

Corpus load_corpus(const ExperimentConfig& config, const RunOptions& options, const TokenizerPair& tokenizers,
                   const std::string& src, const std::string& tgt, const std::string& name,
                   spdlog::logger& log) {
  CorpusSpec spec;
  spec.src_path = src;
  spec.tgt_path = tgt;
  spec.cache_dir = (fs::path(options.save_dir) / "cache").string();
  spec.skip_invalid_utf8 = config.data.skip_invalid_utf8;
  spec.threads = options.threads;
  auto cache = TokenCache::open_or_build(spec, tokenizers.source, tokenizers.target,
                                         [&](const std::string& m) { log.info("{}", m); });
  FilterOptions f;
  f.max_length = std::min(config.data.max_length, config.model.max_positions - 1);
  f.max_ratio = config.data.max_ratio;
  FilterReport report;
  auto pairs = filter_pairs(cache, f, &report, src + " / " + tgt);
  log.info("{}: {}", name, report.describe());
  return {std::move(cache), std::move(pairs)};
}

// BPE-dropout's resamplers (data.bpe_dropout), checked to give back the
// cache at p = 0: a model that is not BPE (or that BPE-dropout cannot
// follow) shows here, not as silently wrong training data.
void set_up_bpe_dropout(double p, TrainingData& data, spdlog::logger& log) {
  if (p <= 0) return;
  data.target_dropout.emplace(data.tokenizers.target);
  if (!data.tokenizers.joint()) data.source_dropout.emplace(data.tokenizers.source);
  std::vector<int64_t> again;
  for (int side = 0; side < 2; ++side) {
    const BpeDropout& dropout =
        side == 0 && data.source_dropout ? *data.source_dropout : *data.target_dropout;
    int64_t differ = 0, first = -1;
    for (int64_t pair : data.train.pairs) {
      auto ids = side == 0 ? data.train.cache.src_ids(pair) : data.train.cache.tgt_ids(pair);
      dropout.resample(ids.data(), static_cast<int64_t>(ids.size()), 0.0, 0, &again);
      if (again != ids && differ++ == 0) first = pair;
    }
    if (differ > 0) {
      const auto& t = side == 0 ? data.tokenizers.source : data.tokenizers.target;
      throw InputError(t.path() +
                       ": data.bpe_dropout: re-merging does not reproduce this model's "
                       "segmentation (" +
                       std::to_string(differ) + " lines, the first line " + std::to_string(first + 1) +
                       "); BPE-dropout needs a BPE SentencePiece model");
    }
  }
  log.info(
      "subword regularisation: BPE-dropout p={}, drawn afresh each epoch for every training "
      "pair (seeded by seed, epoch, pair); validation keeps the cached segmentation",
      p);
}

TrainingData load_data(const ExperimentConfig& config, const RunOptions& options, bool leader,
                       spdlog::logger& log) {
  const auto& d = config.data;
  const std::string origin = options.config_path.empty() ? std::string("config") : options.config_path;
  if (d.train_src.empty() || d.train_tgt.empty()) {
    throw InputError(origin + ": key \"data.train_src\" and \"data.train_tgt\" must name the training files");
  }
  if (config.train.keep_best > 0 && d.valid_src.empty()) {
    throw InputError(origin +
                     ": key \"train.keep_best\" needs a validation set (data.valid_src and "
                     "data.valid_tgt) to rank checkpoints by");
  }
  auto tokenizers = choose_tokenizers(config, options, leader, log);
  auto train = load_corpus(config, options, tokenizers, d.train_src, d.train_tgt, "training data", log);
  TrainingData data{std::move(tokenizers), std::move(train), std::nullopt, {}, {},
                    std::nullopt,          std::nullopt};
  set_up_bpe_dropout(d.bpe_dropout, data, log);
  if (!d.valid_src.empty() && leader) {
    data.valid =
        load_corpus(config, options, data.tokenizers, d.valid_src, d.valid_tgt, "validation data", log);
    if (config.train.valid_bleu) {
      data.valid_src_text = read_lines(d.valid_src);
      data.valid_tgt_text = read_lines(d.valid_tgt);
    }
  }
  return data;
}

// Rank 0's part (or a single process's): the directory, its log, the data.
TrainingSetup set_up_first(const ExperimentConfig& config, const RunOptions& options, int rank) {
  RunDirectory::prepare(options.save_dir, options.resume);
  auto run_dir = std::make_unique<RunDirectory>(options.save_dir, rank);
  auto data = load_data(config, options, /*leader=*/true, run_dir->log());
  return {std::move(run_dir), std::move(data)};
}

}  // namespace

std::string init_checkpoint(const RunOptions& options) {
  if (options.init.empty() || !fs::is_directory(options.init)) return "";
  return resolve_checkpoint(options.init);
}

TrainingSetup set_up_training(const ExperimentConfig& config, const RunOptions& options) {
  validate_model_config(config.model, options.config_path.empty() ? "config" : options.config_path);
  Communicator* comm = options.communicator;
  if (comm == nullptr) return set_up_first(config, options, -1);
  require_ranks_agree(config, options);
  if (comm->rank() == 0) {
    std::optional<TrainingSetup> setup;
    try {
      setup.emplace(set_up_first(config, options, 0));
    } catch (const std::exception& e) {
      comm->publish("setup", e.what());
      throw;
    }
    comm->publish("setup", "ok");
    return std::move(*setup);
  }
  auto run_dir = std::make_unique<RunDirectory>(options.save_dir, comm->rank());
  auto status = comm->await("setup", "waiting for rank 0 to prepare the data");
  if (status != "ok") throw InputError("rank 0 could not start: " + status);
  auto data = load_data(config, options, /*leader=*/false, run_dir->log());
  return {std::move(run_dir), std::move(data)};
}

}  // namespace aiayn
