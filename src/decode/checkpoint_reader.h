// Reading checkpoints back: what translate, the attention export and the
// decoding choice need, without the optimizer or the training data. The
// writer is src/train/checkpoint_writer.h.
//
// A checkpoint is a directory a user can read:
//
//   checkpoint_<step>/config.json   the experiment config (model, data, train;
//                                   src/train/train_config.h)
//   checkpoint_<step>/meta.json     step, data position, tokenizer hash, vocab size, ...
//                                   (src/train/training_state.h)
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

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "src/common/model_config_json.h"
#include "src/data/tokenizer.h"

namespace aiayn {

// meta.json's "format"; a reader refuses any other.
constexpr int kCheckpointFormat = 1;

// The tokenizers a checkpoint was trained with, as meta.json records them:
// all that decoding reads of that file (the training state is
// src/train/training_state.h's).
struct CheckpointVocabulary {
  uint64_t tokenizer_hash = 0;  // spm.model
  int64_t vocab_size = 0;
  uint64_t src_tokenizer_hash = 0;  // spm.src.model; 0 = one joint vocabulary
  int64_t src_vocab_size = 0;       // the source side's (the joint size when joint)
};

nlohmann::json to_json(const CheckpointVocabulary& vocabulary);
// Checks meta.json's format too; `path` names the file in errors.
CheckpointVocabulary checkpoint_vocabulary_from_json(const nlohmann::json& j, const std::string& path);

// A checkpoint directory, or a save directory (then its `last`).
std::string resolve_checkpoint(const std::string& path);

// Reading back; each throws InputError naming the file for missing or damaged
// parts. Only config.json's "model" section is read, and only meta.json's
// vocabulary: a newer trainer's keys elsewhere do not stop decoding.
ModelConfig read_checkpoint_model(const std::string& dir);
CheckpointVocabulary read_checkpoint_vocabulary(const std::string& dir);
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

// A file of a checkpoint, whole; InputError naming it when it is missing.
std::string read_checkpoint_file(const std::string& file);
// A {name: tensor} file (model.pt, optimizer.pt, rng.pt); InputError naming
// it when it is missing or damaged.
std::map<std::string, torch::Tensor> read_tensors(const std::string& file);

}  // namespace aiayn
