// What a trainer shows while it runs: a log line (and metrics.jsonl record)
// per log interval, and on a terminal a status line redrawn in place. It
// takes the values to show, and reads nothing of the trainer's.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace aiayn {

// h:mm:ss; "?" for a negative or non-finite time.
std::string clock_string(double seconds);

// One log interval's figures: sums over its updates and where the run stands.
struct ProgressInterval {
  int64_t step = 0;                  // updates done
  int64_t epoch = 0;                 // 1-based
  double loss_sum = 0, nll_sum = 0;  // over the interval's target tokens
  int64_t src_tokens = 0, tgt_tokens = 0;
  double seconds = 0;    // the interval's wall time
  double grad_norm = 0;  // the last update's
  double lr = 0;         // the last update's learning rate
  double elapsed = 0;    // the run's training seconds, resumed runs' included
  double eta = 0;        // seconds to the first limit
};

// Seconds left to whichever limit comes first, at this process's pace:
// steps since it started over the seconds they took.
double eta_seconds(int64_t step, int64_t max_steps, double max_minutes, int64_t steps_at_start,
                   double elapsed, double seconds_before);

class ProgressReporter {
 public:
  // bar: redraw a status line (stdout is a terminal); CI and pipes get the
  // log lines alone.
  ProgressReporter(int64_t max_steps, double max_minutes, bool bar);
  // The status line after an update.
  void draw(int64_t step, double elapsed) const;
  // The interval's log line (returned; the bar is cleared first) and its
  // metrics record in `record`.
  std::string line(const ProgressInterval& interval, nlohmann::json* record);

 private:
  int64_t max_steps_;
  double max_minutes_;
  bool bar_;
  double last_loss_ = 0;  // the bar's: the host reads no loss between log lines
};

}  // namespace aiayn
