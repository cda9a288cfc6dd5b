#include "src/train/run_directory.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <filesystem>

#include "src/common/error.h"

namespace aiayn {

namespace fs = std::filesystem;

void RunDirectory::prepare(const std::string& dir, bool resume) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_path_error(dir, "cannot create the checkpoint directory", ec.value());
  if (!fs::is_directory(dir)) throw InputError(dir + ": is not a directory (--save-dir)");
  // Temporaries left by a run that was killed mid-write are garbage.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0 || name.rfind(".old-", 0) == 0 ||
        name.find(".tmp-") != std::string::npos) {
      fs::remove_all(entry.path(), ec);
    }
  }
  const auto probe = fs::path(dir) / ".write-test";
  std::ofstream(probe) << "x";
  if (!fs::exists(probe)) throw io_error(dir, "checkpoint directory is not writable");
  fs::remove(probe, ec);
  if (!resume && fs::exists(fs::path(dir) / "last")) {
    throw InputError(dir +
                     ": already holds checkpoints; continue them with --resume, or choose "
                     "another --save-dir");
  }
  if (resume && !fs::exists(fs::path(dir) / "last")) {
    throw InputError(dir + ": --resume, but there is no checkpoint (no " + dir + "/last)");
  }
}

RunDirectory::RunDirectory(std::string dir, int rank) : dir_(std::move(dir)), writer_(rank <= 0) {
  if (!writer_) {
    log_ = std::make_shared<spdlog::logger>("train", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    log_->set_pattern("[%Y-%m-%d %H:%M:%S] [rank " + std::to_string(rank) + "] %v");
    log_->set_level(spdlog::level::err);
    return;
  }
  auto console = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>((fs::path(dir_) / "train.log").string());
  log_ = std::make_shared<spdlog::logger>("train", spdlog::sinks_init_list{console, file});
  log_->set_pattern("[%Y-%m-%d %H:%M:%S] %v");
  log_->flush_on(spdlog::level::info);
  metrics_.open(fs::path(dir_) / "metrics.jsonl", std::ios::app);
}

void RunDirectory::metric(nlohmann::json record, double seconds) {
  if (!writer_) return;
  record["time"] = seconds;
  metrics_ << record.dump() << "\n";
  metrics_.flush();
}

void RunDirectory::record_batch(const nlohmann::json& record) {
  if (!writer_) return;
  if (!batches_.is_open()) {
    const auto path = (fs::path(dir_) / "batches.jsonl").string();
    batches_.open(path, std::ios::app);
    if (!batches_) throw io_error(path, "cannot open for writing (--record-batches)");
  }
  batches_ << record.dump() << "\n";
  batches_.flush();
  if (!batches_) throw io_error(dir_ + "/batches.jsonl", "write failed (--record-batches)");
}

}  // namespace aiayn
