#include "src/data/batch_prefetch.h"

#include <stdexcept>
#include <utility>

namespace aiayn {

BatchPrefetcher::BatchPrefetcher(const TokenCache& cache, const BatchPlanner& planner, Resampling resampling,
                                 PrefetchPlan plan)
    : cache_(cache), planner_(planner), resampling_(resampling), plan_(plan), thread_([this] { run(); }) {}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void BatchPrefetcher::run() {
  try {
    BatchStream stream(planner_, plan_.start);
    for (int64_t k = 0;; ++k) {
      const int64_t epoch = stream.position().epoch;  // the epoch next() draws from
      auto pairs = stream.next();
      if ((k % plan_.group) % plan_.world != plan_.rank) continue;  // another rank's batch
      Resampling r = resampling_;
      r.epoch = epoch;
      Batch batch = make_batch(cache_, pairs, r);
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || static_cast<int64_t>(ready_.size()) < plan_.depth; });
      if (stopping_) return;
      ready_.push_back(std::move(batch));
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
    changed_.notify_all();
  }
}

Batch BatchPrefetcher::take(const std::vector<int64_t>& pairs) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || error_; });
  if (ready_.empty()) std::rethrow_exception(error_);
  Batch batch = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  if (batch.pairs != pairs) {
    throw std::logic_error("batch prefetcher: out of step with the trainer's batch stream");
  }
  return batch;
}

}  // namespace aiayn
