// Training batches built ahead on a thread of their own. BPE-dropout's draw
// (src/data/bpe_dropout.h) re-segments every pair of a batch before it can
// run; on the training thread each update waited for it. (Off it, updates
// ran only 1.03x faster on two cores, bench/bpe_dropout.sh: the draw is not
// what makes BPE-dropout's updates slow; docs/notes.md.) The draw is a
// function of (seed, epoch, pair, side), so building a batch early changes
// none of its bits: the prefetcher follows its own copy of the batch stream
// from the trainer's position and hands over, in order, the batches this
// rank computes.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "src/data/batching.h"

namespace aiayn {

struct PrefetchPlan {
  BatchPosition start;  // the trainer's stream position when training (re)starts
  int64_t group = 1;    // batches per update: update_freq x world size
  int64_t world = 1;    // rank r computes batches r, r + world, ... of each group
  int64_t rank = 0;
  int64_t depth = 4;  // batches held ready
};

class BatchPrefetcher {
 public:
  // `cache`, `planner` and the resamplers in `resampling` must outlive the
  // prefetcher; resampling.epoch is set per batch.
  BatchPrefetcher(const TokenCache& cache, const BatchPlanner& planner, Resampling resampling,
                  PrefetchPlan plan);
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // This rank's next batch, which must hold `pairs` (what the trainer's own
  // stream gave; a mismatch is a logic error). Waits while it is being built;
  // rethrows what building it threw.
  Batch take(const std::vector<int64_t>& pairs);

 private:
  void run();

  const TokenCache& cache_;
  const BatchPlanner& planner_;
  Resampling resampling_;
  PrefetchPlan plan_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace aiayn
