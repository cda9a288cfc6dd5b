// A run's save directory (checkpoints, train.log, metrics.jsonl, tokenizer,
// token caches): made ready for a fresh start or a resume, and the log and
// metrics that go into it besides checkpoints.
#pragma once
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <memory>
#include <string>

namespace aiayn {

class RunDirectory {
 public:
  // Creates `dir` or checks it, and removes the temporaries of a run killed
  // mid-write. Refuses a fresh start over checkpoints and a resume without
  // one (InputError), an unwritable directory (IOError); both name `dir`.
  static void prepare(const std::string& dir, bool resume);

  // rank < 0: a single process; rank 0 of several: the writer of the log
  // file and metrics; another rank: errors to stderr only, as every rank
  // sees the same all-reduced numbers.
  RunDirectory(std::string dir, int rank);

  const std::string& path() const { return dir_; }
  spdlog::logger& log() const { return *log_; }
  // Appends a record to metrics.jsonl with its time (training seconds);
  // nothing on ranks other than 0.
  void metric(nlohmann::json record, double seconds);
  // Appends a record to batches.jsonl (RunOptions::record_batches);
  // nothing on ranks other than 0.
  void record_batch(const nlohmann::json& record);

 private:
  std::string dir_;
  bool writer_;
  std::shared_ptr<spdlog::logger> log_;
  std::ofstream metrics_, batches_;
};

}  // namespace aiayn
