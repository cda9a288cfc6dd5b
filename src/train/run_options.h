// How one training run is started: where it writes, what it resumes or
// starts from, on which device and process group. The config (what is
// trained) is src/train/train_config.h's.
#pragma once
#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <string>

#include "src/train/update_step.h"

namespace aiayn {

class Communicator;

struct RunOptions {
  std::string save_dir;  // checkpoints, logs, metrics, tokenizer, token caches
  bool resume = false;   // continue from save_dir/last
  // Start from these weights (fine-tuning, or a benchmark from given weights):
  // a checkpoint or save directory, or a model.pt-style file. Optimizer,
  // schedule and data position start fresh. Not with resume.
  std::string init;
  torch::Device device = torch::kCPU;
  int threads = 1;            // already applied to LibTorch; also for encoding
  std::string config_path;    // for the "how to resume" message
  bool progress_bar = false;  // redraw a status line (stdout is a terminal)
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

}  // namespace aiayn
