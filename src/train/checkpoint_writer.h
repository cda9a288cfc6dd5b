// Writing checkpoints (src/decode/checkpoint_reader.h has their layout,
// src/train/training_state.h their meta.json), and
// restoring the training state only a trainer needs: optimizer moments, the
// random generator, the moving average.
//
// A checkpoint is written under a temporary name, every file fsynced, and
// renamed into place; links are replaced by rename too. A kill at any moment
// leaves every earlier checkpoint and link intact.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/transformer.h"
#include "src/data/tokenizer.h"
#include "src/decode/checkpoint_reader.h"
#include "src/train/ema.h"
#include "src/train/optimizer.h"
#include "src/train/train_config.h"
#include "src/train/training_state.h"

namespace aiayn {

// Writes checkpoint_<step> under save_dir and points `last` at it. With an
// `ema`, model.pt holds its average and raw_model.pt the model's own weights.
// Returns the checkpoint's directory.
std::string save_checkpoint(const std::string& save_dir, TransformerImpl& model, const Adam* adam,
                            const ExperimentConfig& config, const TrainingState& state,
                            const TokenizerPair& tokenizers, const ExponentialMovingAverage* ema = nullptr);

// Points save_dir/<link> (e.g. "best") at checkpoint directory `target`.
void link_checkpoint(const std::string& save_dir, const std::string& link, const std::string& target);

// Deletes all but the newest `keep_last` checkpoint_<step> directories and
// the `keep_best` with the best validation results, sparing those `last`
// and `best` point at.
void prune_checkpoints(const std::string& save_dir, int64_t keep_last, int64_t keep_best = 0);

// Writes the average of `dirs` as save_dir/<name> (config, tokenizer and
// metadata of the newest, no optimizer state). Returns its path.
std::string write_averaged_checkpoint(const std::vector<std::string>& dirs, const std::string& save_dir,
                                      const std::string& name);

// `aiayn-train --average SPEC`: averages the checkpoints of save_dir that
// SPEC picks (checkpoints_to_average) into save_dir/averaged. Returns what
// to print: "averaged 5 checkpoints (last:5: checkpoint_... ...) into DIR".
std::string average_into(const std::string& save_dir, const std::string& spec);

// For resuming: the raw weights into `model` (raw_model.pt when the run kept
// an average, else model.pt).
void load_training_weights(TransformerImpl& model, const std::string& dir);
// The average a checkpoint holds (model.pt beside raw_model.pt) into `ema`,
// which was started from the restored weights; unchanged when it holds none
// (a run without EMA resumed with it: the average starts here).
void load_average(ExponentialMovingAverage& ema, const std::string& dir);
void load_optimizer(Adam& adam, const std::string& dir, int64_t steps);
void load_rng(const std::string& dir);

}  // namespace aiayn
