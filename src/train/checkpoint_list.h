// A save directory's checkpoints by step and by validation result: which to
// keep (prune_checkpoints) and which to average (`aiayn-train --average`).
// They read each checkpoint's training state, so they live with training.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace aiayn {

// The save directory's complete checkpoint_<step> directories, oldest first.
std::vector<std::string> checkpoint_dirs(const std::string& save_dir);
// The `count` validated directories of `dirs` with the lowest criterion (a
// tie goes to the later step), in step order; none when none was validated.
std::vector<std::string> best_validated(const std::vector<std::string>& dirs, int64_t count);

// The newest `count` checkpoint_<step> directories of save_dir, oldest first.
std::vector<std::string> last_checkpoints(const std::string& save_dir, int64_t count);
// The `count` checkpoints with the best validation results (as fairseq's
// --keep-best-checkpoints), in step order; InputError when none was validated.
std::vector<std::string> best_checkpoints(const std::string& save_dir, int64_t count);
// "last:K", "best:K", or "K" (= last:K), as `aiayn-train --average` takes it.
std::vector<std::string> checkpoints_to_average(const std::string& save_dir, const std::string& spec);

}  // namespace aiayn
