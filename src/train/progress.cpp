#include "src/train/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace aiayn {

std::string clock_string(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(seconds);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

double eta_seconds(int64_t step, int64_t max_steps, double max_minutes, int64_t steps_at_start,
                   double elapsed, double seconds_before) {
  const double per_step = (elapsed - seconds_before) / std::max<int64_t>(1, step - steps_at_start);
  double eta = (max_steps - step) * per_step;
  if (max_minutes > 0) eta = std::min(eta, max_minutes * 60 - elapsed);
  return eta;
}

ProgressReporter::ProgressReporter(int64_t max_steps, double max_minutes, bool bar)
    : max_steps_(max_steps), max_minutes_(max_minutes), bar_(bar) {}

void ProgressReporter::draw(int64_t step, double elapsed) const {
  if (!bar_) return;
  double done = static_cast<double>(step) / max_steps_;
  if (max_minutes_ > 0) done = std::max(done, elapsed / (max_minutes_ * 60));
  const int width = 30, filled = static_cast<int>(std::min(1.0, done) * width);
  std::printf("\r\033[K[%s%s] %3.0f%% step %lld | loss %.3f | %s", std::string(filled, '#').c_str(),
              std::string(width - filled, '.').c_str(), 100 * std::min(1.0, done),
              static_cast<long long>(step), last_loss_, clock_string(elapsed).c_str());
  std::fflush(stdout);
}

std::string ProgressReporter::line(const ProgressInterval& t, nlohmann::json* record) {
  if (bar_) std::printf("\r\033[K");
  const double loss = t.loss_sum / t.tgt_tokens, nll = t.nll_sum / t.tgt_tokens;
  last_loss_ = loss;
  char text[320];
  std::snprintf(text, sizeof text,
                "step %lld/%lld | epoch %lld | loss %.3f | ppl %.2f | lr %.3g | src tok/s %.0f | "
                "tgt tok/s %.0f | gnorm %.3f | %s elapsed | ETA %s",
                static_cast<long long>(t.step), static_cast<long long>(max_steps_),
                static_cast<long long>(t.epoch), loss, std::exp(nll), t.lr, t.src_tokens / t.seconds,
                t.tgt_tokens / t.seconds, t.grad_norm, clock_string(t.elapsed).c_str(),
                clock_string(t.eta).c_str());
  *record = {{"kind", "train"},
             {"step", t.step},
             {"epoch", t.epoch},
             {"loss", loss},
             {"nll", nll},
             {"ppl", std::exp(nll)},
             {"lr", t.lr},
             {"src_tok_s", t.src_tokens / t.seconds},
             {"tgt_tok_s", t.tgt_tokens / t.seconds},
             {"gnorm", t.grad_norm}};
  return text;
}

}  // namespace aiayn
