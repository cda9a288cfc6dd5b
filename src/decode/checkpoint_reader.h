// Reading checkpoints back: what translate, the attention export and the
// decoding choice need, without the optimizer or the training data. The
// writer is src/train/checkpoint_writer.h.
//
// A checkpoint is a directory a user can read:
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

#pragma once
#include <torch/torch.h>

#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "src/common/train_config.h"
#include "src/data/batch_position.h"
#include "src/data/tokenizer.h"

namespace aiayn {

// meta.json's "format"; a reader refuses any other.
constexpr int kCheckpointFormat = 1;

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
  // fp16's dynamic loss scale (src/train/loss_scale.h) and its good updates
  // in a row; 0 when training is not fp16.
  double loss_scale = 0;
  int64_t loss_scale_good_updates = 0;
};

struct CheckpointMeta {
  TrainingState state;
  uint64_t tokenizer_hash = 0;    // spm.model
  int64_t vocab_size = 0;
  uint64_t src_tokenizer_hash = 0;  // spm.src.model; 0 = one joint vocabulary
  int64_t src_vocab_size = 0;
};

// A checkpoint directory, or a save directory (then its `last`).
std::string resolve_checkpoint(const std::string& path);

// Reading back; each throws InputError naming the file for missing or damaged parts.
ExperimentConfig read_checkpoint_config(const std::string& dir);
CheckpointMeta read_checkpoint_meta(const std::string& dir);
// The weights translation uses: model.pt (the moving average when the run
// kept one). raw = true asks for the raw weights of an EMA run instead
// (raw_model.pt; a run without EMA has only raw weights, in model.pt).
void load_weights(TransformerImpl& model, const std::string& dir, bool raw = false);
// The same from a weights file: a checkpoint's model.pt, or any torch.save'd
// {name: tensor} dict with the model's names (Python's torch.load format).
void load_weights_file(TransformerImpl& model, const std::string& path);
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

// The save directory's complete checkpoint_<step> directories, oldest first.
std::vector<std::string> checkpoint_dirs(const std::string& save_dir);
// The `count` validated directories of `dirs` with the lowest criterion (a
// tie goes to the later step), in step order; none when none was validated.
std::vector<std::string> best_validated(const std::vector<std::string>& dirs, int64_t count);

// A file of a checkpoint, whole; InputError naming it when it is missing.
std::string read_checkpoint_file(const std::string& file);
// A {name: tensor} file (model.pt, optimizer.pt, rng.pt); InputError naming
// it when it is missing or damaged.
std::map<std::string, torch::Tensor> read_tensors(const std::string& file);

}  // namespace aiayn
