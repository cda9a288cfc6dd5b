// What a checkpoint's meta.json records of a training run: where it stands
// (step, data position, validation history, fp16's loss scale) and what it
// was trained with (the tokenizers, the weights kind). Written by
// src/train/checkpoint_writer.h and read back here, through one
// to_json/from_json pair, so that the schema is written down once.
// Decoding reads only the vocabulary part (src/decode/checkpoint_reader.h).
#pragma once
#include <nlohmann/json.hpp>

#include <limits>
#include <string>

#include "src/data/batch_position.h"
#include "src/decode/checkpoint_reader.h"
#include "src/train/train_config.h"

namespace aiayn {

struct TrainingState {
  int64_t step = 0;             // updates done
  BatchPosition position;       // the next batch
  int64_t skipped_updates = 0;  // non-finite losses so far
  // The best validation result so far, lower is better: -BLEU when BLEU is
  // computed, else the loss.
  double best_valid = std::numeric_limits<double>::infinity();
  int64_t stale_validations = 0;  // since the best
  double train_seconds = 0;       // wall time spent training so far
  // This checkpoint's own validation result (same scale as best_valid), NaN
  // when it was saved without a validation at its step.
  double valid_criterion = std::numeric_limits<double>::quiet_NaN();
  nlohmann::json batching;  // what `position` refers to (data and batching settings)
  // fp16's dynamic loss scale (src/train/loss_scale.h) and its good updates
  // in a row; 0 when training is not fp16.
  double loss_scale = 0;
  int64_t loss_scale_good_updates = 0;
};

struct CheckpointMeta {
  TrainingState state;
  CheckpointVocabulary vocabulary;
  // For the reader of the file; training does not need them back.
  int64_t optimizer_steps = 0;  // Adam's step count (bias correction)
  int64_t parameters = 0;
  std::string weights = "raw";   // model.pt holds: raw, ema (the moving average) or averaged
  std::string averaged_weights;  // "averaged": what each averaged model.pt held; else ""
  double ema_decay = 0;          // 0: no moving average
};

nlohmann::json to_json(const CheckpointMeta& meta);
// `path` names the file in errors: InputError for a missing or mistyped key
// or another format.
CheckpointMeta checkpoint_meta_from_json(const nlohmann::json& j, const std::string& path);
CheckpointMeta read_checkpoint_meta(const std::string& dir);

// The whole experiment config a checkpoint was trained with, read as
// strictly as a config file: resuming refuses a key it does not know
// (decoding reads only the model section: read_checkpoint_model).
ExperimentConfig read_checkpoint_config(const std::string& dir);

}  // namespace aiayn
