// A run's setup before its first update: the save directory and its log,
// the tokenizers (chosen among four sources), the training and validation
// corpora with their filters, and BPE-dropout's resamplers. With several
// ranks, rank 0 prepares the directory, tokenizer and token caches first
// and publishes the outcome; the others then open what it made.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/data/bpe_dropout.h"
#include "src/data/token_cache.h"
#include "src/data/tokenizer.h"
#include "src/train/run_directory.h"
#include "src/train/run_options.h"
#include "src/train/train_config.h"

namespace aiayn {

// A corpus ready for batching: its cache and the pairs that pass the filters.
struct Corpus {
  TokenCache cache;
  std::vector<int64_t> pairs;
};

struct TrainingData {
  TokenizerPair tokenizers;
  Corpus train;
  std::optional<Corpus> valid;                              // rank 0 alone validates
  std::vector<std::string> valid_src_text, valid_tgt_text;  // for validation BLEU
  // data.bpe_dropout: the target side's resampler, and the source side's
  // when the vocabularies are separate.
  std::optional<BpeDropout> source_dropout, target_dropout;
};

struct TrainingSetup {
  std::unique_ptr<RunDirectory> run_dir;
  TrainingData data;
};

// Sets the run up as the config and options say. Throws InputError naming
// the file or key for bad input, on every rank when rank 0 failed.
TrainingSetup set_up_training(const ExperimentConfig& config, const RunOptions& options);

// --init as a checkpoint directory (its last checkpoint), or "" for a
// weights file or no --init.
std::string init_checkpoint(const RunOptions& options);

}  // namespace aiayn
