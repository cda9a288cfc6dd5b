#include "src/serve/translation_batcher.h"

#include <algorithm>

namespace aiayn {

TranslationBatcher::TranslationBatcher(BatcherOptions options, Decode decode)
    : options_(options), decode_(std::move(decode)) {
  worker_ = std::thread([this] { loop(); });
}

TranslationBatcher::~TranslationBatcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

std::vector<Translation> TranslationBatcher::submit(BatchRequest request) {
  auto pending = std::make_unique<Pending>();
  auto result = pending->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto n = static_cast<int64_t>(request.lines.size());
    if (stats_.queued_sentences + n > options_.max_queue) {
      throw QueueFull("the queue holds " + std::to_string(stats_.queued_sentences) + " sentences; " +
                      std::to_string(n) + " more would pass its limit of " +
                      std::to_string(options_.max_queue) + " (--serve-queue)");
    }
    stats_.queued_sentences += n;
    pending->request = std::move(request);
    pending->arrived = std::chrono::steady_clock::now();
    queue_.push_back(std::move(pending));
  }
  wake_.notify_all();
  return result.get();
}

TranslationBatcher::Stats TranslationBatcher::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

std::vector<std::unique_ptr<TranslationBatcher::Pending>> TranslationBatcher::gather(
    std::unique_lock<std::mutex>& lock) {
  wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
  if (queue_.empty()) return {};
  const std::string key = queue_.front()->request.key;
  auto same_key_tokens = [&] {
    int64_t tokens = 0;
    for (const auto& p : queue_) tokens += p->request.key == key ? p->request.tokens : 0;
    return tokens;
  };
  if (options_.enabled) {
    // Wait for company until the budget is full, the first has waited
    // enough, or requests stop coming (none for a `quiet` while). Both
    // clocks start no earlier than now, when the decoder is free: the
    // clients just answered send again within a moment, and waiting for
    // them merges them with those that came while it decoded.
    const auto now = std::chrono::steady_clock::now();
    const auto deadline = std::max(queue_.front()->arrived, now) + options_.max_wait;
    auto until = [&] {
      if (options_.quiet.count() == 0) return deadline;
      return std::min(deadline, std::max(queue_.back()->arrived, now) + options_.quiet);
    };
    while (!stopping_ && same_key_tokens() < options_.max_tokens &&
           wake_.wait_until(lock, until()) != std::cv_status::timeout) {
    }
  }
  std::vector<std::unique_ptr<Pending>> group;
  int64_t tokens = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    const auto& r = (*it)->request;
    const bool fits =
        group.empty() || (options_.enabled && r.key == key && tokens + r.tokens <= options_.max_tokens);
    if (fits) {
      tokens += r.tokens;
      stats_.queued_sentences -= static_cast<int64_t>(r.lines.size());
      group.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
    if (!options_.enabled) break;
  }
  return group;
}

void TranslationBatcher::decode(std::vector<std::unique_ptr<Pending>>& group) {
  std::vector<std::string> lines, prefixes;
  bool any_prefix = false;
  for (const auto& p : group) {
    const auto& r = p->request;
    lines.insert(lines.end(), r.lines.begin(), r.lines.end());
    for (size_t i = 0; i < r.lines.size(); ++i) {
      prefixes.push_back(i < r.prefixes.size() ? r.prefixes[i] : std::string());
      any_prefix = any_prefix || !prefixes.back().empty();
    }
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    auto results = decode_(lines, any_prefix ? &prefixes : nullptr, group.front()->request.options);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    {
      // Counted before any answer leaves: a client that reads /v1/health
      // after its answer sees its own call.
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.calls;
      stats_.decoding_seconds += took.count();
      stats_.sentences += static_cast<int64_t>(lines.size());
    }
    size_t next = 0;
    for (auto& p : group) {
      const size_t n = p->request.lines.size();
      p->done.set_value(std::vector<Translation>(results.begin() + static_cast<std::ptrdiff_t>(next),
                                                 results.begin() + static_cast<std::ptrdiff_t>(next + n)));
      next += n;
    }
  } catch (...) {
    for (auto& p : group) p->done.set_exception(std::current_exception());
  }
}

void TranslationBatcher::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    auto group = gather(lock);
    if (group.empty()) return;  // stopping, and nothing left
    lock.unlock();
    decode(group);
    lock.lock();
  }
}

}  // namespace aiayn
