// The check that every rank of a data-parallel job starts on the same
// settings and files. Each rank reads its own config and data; a rank given
// another file would otherwise train silently on other data, its gradients
// averaged with the rest.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "src/train/run_options.h"
#include "src/train/train_config.h"

namespace aiayn {

// What this rank trains on: every config key ("train.max_tokens"), each data
// file by its contents (paths may differ between hosts; the bytes may not),
// --resume and --init, and this executable's LibTorch.
nlohmann::json rank_fingerprint(const ExperimentConfig& config, const RunOptions& options);

// "" when every fingerprint equals rank 0's; else one line naming the first
// rank and key that differ, with both values.
std::string first_disagreement(const std::vector<nlohmann::json>& fingerprints);

// Exchanges the fingerprints through the store and throws InputError with
// first_disagreement's line on every rank when they differ, before any rank
// writes to the run directory.
void require_ranks_agree(const ExperimentConfig& config, const RunOptions& options);

}  // namespace aiayn
