#include "src/train/train_schedule.h"

#include <sstream>

namespace aiayn {

bool log_due(const TrainConfig& c, int64_t step) { return step % c.log_every == 0; }

bool validation_due(const TrainConfig& c, int64_t step, bool have_validation) {
  return have_validation && step % c.valid_every == 0;
}

bool save_due(const TrainConfig& c, int64_t step, bool validated, int64_t stale_validations) {
  return step % c.save_every == 0 || (validated && (stale_validations == 0 || c.keep_best > 0));
}

std::optional<std::string> reason_to_stop(const TrainConfig& c, const RunPosition& at) {
  if (at.step >= c.max_steps) return "reached max_steps " + std::to_string(c.max_steps);
  if (c.max_epochs > 0 && at.next_batch.epoch >= c.max_epochs && at.next_batch.index == 0) {
    return "completed max_epochs " + std::to_string(c.max_epochs);
  }
  if (c.max_minutes > 0 && at.elapsed_seconds >= c.max_minutes * 60) {
    std::ostringstream minutes;  // "12", "1.5": as the user wrote it, not "12.000000"
    minutes << c.max_minutes;
    return "used the time budget of " + minutes.str() + " minutes";
  }
  if (c.patience > 0 && at.stale_validations >= c.patience) {
    return "validation did not improve " + std::to_string(c.patience) + " times in a row";
  }
  return std::nullopt;
}

bool final_validation_due(const TrainConfig& c, int64_t step, int64_t steps_at_start, bool have_validation,
                          bool interrupted) {
  return have_validation && !interrupted && step > steps_at_start && step % c.valid_every != 0;
}

}  // namespace aiayn
