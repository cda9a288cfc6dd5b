// Training (paper section 5): from a config to checkpoints, with exact resume.
#pragma once
#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <string>

#include "src/common/train_config.h"
#include "src/train/update_step.h"

namespace aiayn {

class Communicator;

struct RunOptions {
  std::string save_dir;           // checkpoints, logs, metrics, tokenizer, token caches
  bool resume = false;            // continue from save_dir/last
  // Start from these weights (fine-tuning, or a benchmark from given weights):
  // a checkpoint or save directory, or a model.pt-style file. Optimizer,
  // schedule and data position start fresh. Not with resume.
  std::string init;
  torch::Device device = torch::kCPU;
  int threads = 1;                // already applied to LibTorch; also for encoding
  std::string config_path;        // for the "how to resume" message
  bool progress_bar = false;      // redraw a status line (stdout is a terminal)
  // Append every batch an update draws to save_dir/batches.jsonl, for a
  // reference implementation to replay the same batch order (bench/).
  bool record_batches = false;
  // Set by a signal handler: finish the update, checkpoint, return.
  const std::atomic<bool>* stop_requested = nullptr;
  // Data-parallel training (src/train/distributed.h): this rank's process group, or
  // null for one process. Rank 0 alone writes checkpoints, logs and metrics.
  Communicator* communicator = nullptr;
  // A test double for faults: called with this rank's sums over an update's
  // batches and the update's number, before the update step sees them; the
  // tests make a loss non-finite with it. Null in the apps.
  std::function<void(int64_t step, Tally& tally)> before_update;
};

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
