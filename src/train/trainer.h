// Training (paper section 5): from a config to checkpoints, with exact resume.
#pragma once
#include <torch/torch.h>

#include <string>

#include "src/train/run_options.h"
#include "src/train/train_config.h"
#include "src/train/training_state.h"

namespace aiayn {

struct TrainResult {
  int64_t steps = 0;
  std::string last_checkpoint;
  int64_t skipped_updates = 0;  // non-finite losses or gradients, in this run and those resumed
  bool interrupted = false;
  std::string stop_reason;
};

// `aiayn-train --summary`: the model a config file describes, built with a
// joint vocabulary of `vocab` pieces (0: the config's own sizes, which must
// then be set). "CONFIG: <summary>"; InputError naming the file otherwise.
std::string model_summary(const std::string& config_path, int64_t vocab);

// Trains as configured. Throws InputError for bad input (config, data,
// save directory, checkpoint); never overwrites existing checkpoints on a
// failed start.
TrainResult train(const ExperimentConfig& config, const RunOptions& options);

}  // namespace aiayn
