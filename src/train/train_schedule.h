// When the training loop logs, validates, saves and stops: pure functions of
// the config and where the run stands, so that the policy is read in one
// place and tested without training (tests/test_train_math.cpp). The
// learning-rate schedule of section 5.3 is src/train/optimizer.h's.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "src/data/batch_position.h"
#include "src/train/train_config.h"

namespace aiayn {

// Where a run stands after an update.
struct RunPosition {
  int64_t step = 0;               // updates done
  BatchPosition next_batch;       // the stream's position
  double elapsed_seconds = 0;     // training time, that of earlier sessions included
  int64_t stale_validations = 0;  // validations since the best
};

// After update `step`: a log line every log_every updates.
bool log_due(const TrainConfig& config, int64_t step);
// A validation every valid_every updates, when there is a validation set.
bool validation_due(const TrainConfig& config, int64_t step, bool have_validation);
// A checkpoint every save_every updates, and after a validation that
// improved, so that `best` always points at the best model validated so
// far; with keep_best, after every validation (each is a candidate for
// best:K). `stale_validations` is counted after this step's validation.
bool save_due(const TrainConfig& config, int64_t step, bool validated, int64_t stale_validations);
// Why the run should stop before its next update (max_steps, max_epochs at
// an epoch's end, max_minutes, patience), or nothing.
std::optional<std::string> reason_to_stop(const TrainConfig& config, const RunPosition& at);
// Whether the end of the run validates once more: when this session
// trained and the last update was not validated (max_steps not a multiple
// of valid_every, a time limit), so that `best` has seen the end of
// training. An interrupted run skips it: the user asked to stop.
bool final_validation_due(const TrainConfig& config, int64_t step, int64_t steps_at_start,
                          bool have_validation, bool interrupted);

}  // namespace aiayn
