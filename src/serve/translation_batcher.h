// Requests that arrive together are decoded together: the batcher gathers
// the sentences of concurrent requests that share their decoding options,
// up to a token budget or a short wait after the first, decodes them in one
// call (the translator sorts them into length-sorted batches), and hands
// each request its own lines back, in its order.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/decode/translator.h"

namespace aiayn {

struct BatcherOptions {
  int64_t max_tokens = 4096;                 // source tokens gathered before decoding at once
  std::chrono::microseconds max_wait{5000};  // after the first request, at most this long
  std::chrono::microseconds quiet{1000};     // or until none came for this long; 0: wait max_wait
  bool enabled = true;                       // false: every request decoded alone, in arrival order
  int64_t max_queue = 1024;                  // sentences waiting; beyond, submit() refuses
};

// One request's work: its lines, their prefixes ("" = none, or empty for
// all), and its options; `key` names the options, so that only requests with
// equal keys share a decoding call.
struct BatchRequest {
  std::vector<std::string> lines;
  std::vector<std::string> prefixes;
  TranslateOptions options;
  std::string key;
  int64_t tokens = 0;  // its source tokens, for the budget
};

class TranslationBatcher {
 public:
  // decode(lines, prefixes or null, options): the translator's call.
  using Decode = std::function<std::vector<Translation>(
      const std::vector<std::string>&, const std::vector<std::string>*, const TranslateOptions&)>;
  TranslationBatcher(BatcherOptions options, Decode decode);
  ~TranslationBatcher();  // finishes every request queued, then stops
  TranslationBatcher(const TranslationBatcher&) = delete;
  TranslationBatcher& operator=(const TranslationBatcher&) = delete;

  // Queues the request and waits for its translations; QueueFull when the
  // queue holds max_queue sentences already. Decoding errors are rethrown.
  std::vector<Translation> submit(BatchRequest request);
  struct QueueFull : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  // What /v1/health reports: sentences waiting, decoding calls made and
  // sentences decoded so far (their ratio is the mean batch), and the time
  // spent decoding (over wall time, how busy the decoder is).
  struct Stats {
    int64_t queued_sentences = 0, calls = 0, sentences = 0;
    double decoding_seconds = 0;
  };
  Stats stats() const;

 private:
  struct Pending {
    BatchRequest request;
    std::promise<std::vector<Translation>> done;
    std::chrono::steady_clock::time_point arrived;
  };
  void loop();
  // The requests of the next call: the oldest, and those after it with its key, within the budget.
  std::vector<std::unique_ptr<Pending>> gather(std::unique_lock<std::mutex>& lock);
  void decode(std::vector<std::unique_ptr<Pending>>& group);

  BatcherOptions options_;
  Decode decode_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Pending>> queue_;
  Stats stats_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace aiayn
