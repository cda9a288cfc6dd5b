// Checkpoints: a directory a user can read, written atomically.
//
//   checkpoint_<step>/config.json   the experiment config (model, data, train)
//   checkpoint_<step>/meta.json     step, data position, tokenizer hash, vocab size, ...
//   checkpoint_<step>/model.pt      weights: {name: tensor}, readable by torch.load;
//                                   with train.ema_decay, the moving average
//   checkpoint_<step>/raw_model.pt  with train.ema_decay only: the raw weights
//   checkpoint_<step>/optimizer.pt  Adam moments: {exp_avg.<name>, exp_avg_sq.<name>}
//   checkpoint_<step>/rng.pt        the CPU random generator's state
//   checkpoint_<step>/spm.model     the SentencePiece model (the target side's
//                                   with separate vocabularies)
//   checkpoint_<step>/spm.src.model with separate vocabularies: the source side's
//   last, best                      symbolic links to checkpoint directories
//
// A checkpoint is written under a temporary name, every file fsynced, and
// renamed into place; links are replaced by rename too. A kill at any moment
// leaves every earlier checkpoint and link intact.
#pragma once
#include <torch/torch.h>

#include <limits>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "src/batching.h"
#include "src/ema.h"
#include "src/optimizer.h"
#include "src/tokenizer.h"
#include "src/train_config.h"

namespace aiayn {

struct TrainingState {
  int64_t step = 0;             // updates done
  BatchPosition position;       // the next batch
  int64_t skipped_updates = 0;  // non-finite losses so far
  // The best validation result so far, lower is better: -BLEU when BLEU is
  // computed, else the loss.
  double best_valid = std::numeric_limits<double>::infinity();
  int64_t stale_validations = 0;                                 // since the best
  double train_seconds = 0;     // wall time spent training so far
  // This checkpoint's own validation result (same scale as best_valid), NaN
  // when it was saved without a validation at its step.
  double valid_criterion = std::numeric_limits<double>::quiet_NaN();
  nlohmann::json batching;      // what `position` refers to (data and batching settings)
};

struct CheckpointMeta {
  TrainingState state;
  uint64_t tokenizer_hash = 0;    // spm.model
  int64_t vocab_size = 0;
  uint64_t src_tokenizer_hash = 0;  // spm.src.model; 0 = one joint vocabulary
  int64_t src_vocab_size = 0;
};

// Writes checkpoint_<step> under save_dir and points `last` at it. With an
// `ema`, model.pt holds its average and raw_model.pt the model's own weights.
// Returns the checkpoint's directory.
std::string save_checkpoint(const std::string& save_dir, TransformerImpl& model, const Adam* adam,
                            const ExperimentConfig& config, const TrainingState& state,
                            const TokenizerPair& tokenizers,
                            const ExponentialMovingAverage* ema = nullptr);

// Points save_dir/<link> (e.g. "best") at checkpoint directory `target`.
void link_checkpoint(const std::string& save_dir, const std::string& link,
                     const std::string& target);

// Deletes all but the newest `keep_last` checkpoint_<step> directories and
// the `keep_best` with the best validation results, sparing those `last`
// and `best` point at.
void prune_checkpoints(const std::string& save_dir, int64_t keep_last, int64_t keep_best = 0);

// A checkpoint directory, or a save directory (then its `last`).
std::string resolve_checkpoint(const std::string& path);

// Reading back; each throws InputError naming the file for missing or damaged parts.
ExperimentConfig read_checkpoint_config(const std::string& dir);
CheckpointMeta read_checkpoint_meta(const std::string& dir);
// The weights translation uses: model.pt (the moving average when the run
// kept one). raw = true asks for the raw weights of an EMA run instead
// (raw_model.pt; a run without EMA has only raw weights, in model.pt).
void load_weights(TransformerImpl& model, const std::string& dir, bool raw = false);
// For resuming: the raw weights into `model` and, given an `ema`, the average
// into it (an average started from the weights when the checkpoint has none).
void load_training_weights(TransformerImpl& model, ExponentialMovingAverage* ema,
                           const std::string& dir);
// The same from a weights file: a checkpoint's model.pt, or any torch.save'd
// {name: tensor} dict with the model's names (Python's torch.load format).
void load_weights_file(TransformerImpl& model, const std::string& path);
void load_optimizer(Adam& adam, const std::string& dir, int64_t steps);
void load_rng(const std::string& dir);
// The tokenizer stored with the checkpoint (the target side's when the
// vocabularies are separate), checked against its recorded hash.
Tokenizer load_checkpoint_tokenizer(const std::string& dir);
// Both sides' (the same joint one twice, or spm.src.model and spm.model).
TokenizerPair load_checkpoint_tokenizers(const std::string& dir);

// Builds the model a checkpoint describes and loads its weights (eval mode).
// With several directories the weights are their average (section 6.1: the
// last 5 or 20 checkpoints); they must share the architecture and tokenizer.
Transformer load_model(const std::string& dir, const torch::Device& device, bool raw = false);
Transformer load_averaged_model(const std::vector<std::string>& dirs, const torch::Device& device,
                                bool raw = false);

// The newest `count` checkpoint_<step> directories of save_dir, oldest first.
std::vector<std::string> last_checkpoints(const std::string& save_dir, int64_t count);
// The `count` checkpoints with the best validation results (as fairseq's
// --keep-best-checkpoints), in step order; InputError when none was validated.
std::vector<std::string> best_checkpoints(const std::string& save_dir, int64_t count);
// "last:K", "best:K", or "K" (= last:K), as `aiayn-train --average` takes it.
std::vector<std::string> checkpoints_to_average(const std::string& save_dir, const std::string& spec);

// Writes the average of `dirs` as save_dir/<name> (config, tokenizer and
// metadata of the newest, no optimizer state). Returns its path.
std::string write_averaged_checkpoint(const std::vector<std::string>& dirs,
                                      const std::string& save_dir, const std::string& name);

}  // namespace aiayn
