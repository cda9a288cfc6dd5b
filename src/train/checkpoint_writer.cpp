#include "src/train/checkpoint_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>

#include "src/common/error.h"
#include "src/common/hash.h"
#include "src/common/json_reader.h"
#include "src/train/checkpoint_list.h"

namespace aiayn {

namespace fs = std::filesystem;

namespace {

void write_synced(const fs::path& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw io_error(path.string(), "cannot write");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      if (n == 0) errno = EIO;
      const int error = errno;
      ::close(fd);
      errno = error;
      throw io_error(path.string(), "cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    throw io_error(path.string(), "cannot write (sync)");
  }
}

void sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string pickle(const std::map<std::string, torch::Tensor>& tensors) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [k, v] : tensors) dict.insert(k, v.detach().cpu().contiguous());
  auto bytes = torch::pickle_save(dict);
  return std::string(bytes.begin(), bytes.end());
}

// Puts the finished directory `tmp` in place as `final_dir`. An existing
// one (a step saved again) is moved aside first and removed only once the
// new one is in place.
void install_directory(const fs::path& tmp, const fs::path& final_dir) {
  const fs::path old =
      final_dir.parent_path() / (".old-" + final_dir.filename().string() + "-" + std::to_string(getpid()));
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  sync_dir(final_dir.parent_path());
  std::error_code ec;
  fs::remove_all(old, ec);
}

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "checkpoint_%08lld", static_cast<long long>(step));
  return buf;
}

}  // namespace

std::string save_checkpoint(const std::string& save_dir, TransformerImpl& model, const Adam* adam,
                            const ExperimentConfig& config, const TrainingState& state,
                            const TokenizerPair& tokenizers, const ExponentialMovingAverage* ema) {
  const Tokenizer& tokenizer = tokenizers.target;
  const fs::path final_dir = fs::path(save_dir) / step_name(state.step);
  const fs::path tmp =
      fs::path(save_dir) / (".tmp-" + step_name(state.step) + "-" + std::to_string(getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  if (!fs::create_directories(tmp, ec)) {
    throw IOError(save_dir + ": cannot create a checkpoint directory: " + ec.message());
  }
  try {
    std::map<std::string, torch::Tensor> weights;
    for (const auto& p : model.named_parameters()) weights[p.key()] = p.value();
    if (ema != nullptr) {
      write_synced(tmp / "model.pt", pickle(ema->weights()));
      write_synced(tmp / "raw_model.pt", pickle(weights));
    } else {
      write_synced(tmp / "model.pt", pickle(weights));
    }
    if (adam != nullptr) write_synced(tmp / "optimizer.pt", pickle(adam->state()));
    write_synced(tmp / "rng.pt", pickle({{"cpu", at::detail::getDefaultCPUGenerator().get_state()}}));
    write_synced(tmp / "spm.model", read_checkpoint_file(tokenizer.path()));
    if (!tokenizers.joint())
      write_synced(tmp / "spm.src.model", read_checkpoint_file(tokenizers.source.path()));
    write_synced(tmp / "config.json", config.to_json().dump(2) + "\n");
    CheckpointMeta meta;
    meta.state = state;
    meta.vocabulary = {tokenizer.hash(), tokenizer.vocab_size(),
                       tokenizers.joint() ? 0 : tokenizers.source.hash(), tokenizers.source.vocab_size()};
    meta.optimizer_steps = adam ? adam->steps() : 0;
    meta.parameters = model.parameter_count();
    meta.weights = ema != nullptr ? "ema" : "raw";
    meta.ema_decay = ema != nullptr ? ema->decay() : 0;
    write_synced(tmp / "meta.json", to_json(meta).dump(2) + "\n");
    sync_dir(tmp);
    install_directory(tmp, final_dir);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw IOError(save_dir + ": cannot write checkpoint: " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  link_checkpoint(save_dir, "last", final_dir.string());
  return final_dir.string();
}

void link_checkpoint(const std::string& save_dir, const std::string& link, const std::string& target) {
  const fs::path tmp = fs::path(save_dir) / ("." + link + ".tmp-" + std::to_string(getpid()));
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_directory_symlink(fs::path(target).filename(), tmp, ec);
  if (!ec) fs::rename(tmp, fs::path(save_dir) / link, ec);  // atomic replacement
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw IOError(save_dir + "/" + link + ": cannot link it to " + target + ": " + ec.message());
  }
  sync_dir(save_dir);
}

void prune_checkpoints(const std::string& save_dir, int64_t keep_last, int64_t keep_best) {
  std::vector<std::string> dirs = checkpoint_dirs(save_dir);
  std::vector<std::string> protect;
  std::error_code ec;
  for (const char* link : {"last", "best"}) {
    auto target = fs::read_symlink(fs::path(save_dir) / link, ec);
    if (!ec) protect.push_back((fs::path(save_dir) / target).string());
  }
  if (keep_best > 0) {
    for (const auto& d : best_validated(dirs, keep_best)) protect.push_back(d);
  }
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < dirs.size(); ++i) {
    if (std::find(protect.begin(), protect.end(), dirs[i]) == protect.end()) {
      fs::remove_all(dirs[i], ec);
    }
  }
}

void load_training_weights(TransformerImpl& model, const std::string& dir) {
  const fs::path raw_file = fs::path(dir) / "raw_model.pt", file = fs::path(dir) / "model.pt";
  load_weights_file(model, (fs::exists(raw_file) ? raw_file : file).string());
}

void load_average(ExponentialMovingAverage& ema, const std::string& dir) {
  // Without raw_model.pt the run kept no average: it starts from the weights.
  if (!fs::exists(fs::path(dir) / "raw_model.pt")) return;
  const fs::path file = fs::path(dir) / "model.pt";
  ema.load(read_tensors(file.string()), file.string());
}

void load_optimizer(Adam& adam, const std::string& dir, int64_t steps) {
  const auto path = fs::path(dir) / "optimizer.pt";
  adam.load_state(read_tensors(path), steps, path.string());
}

void load_rng(const std::string& dir) {
  const auto path = fs::path(dir) / "rng.pt";
  auto state = read_tensors(path);
  if (!state.count("cpu")) throw InputError(path.string() + ": no cpu generator state");
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state["cpu"]);
}

std::string write_averaged_checkpoint(const std::vector<std::string>& dirs, const std::string& save_dir,
                                      const std::string& name) {
  auto model = load_averaged_model(dirs, torch::kCPU);
  const std::string& newest = dirs.back();
  const fs::path final_dir = fs::path(save_dir) / name;
  const fs::path tmp = fs::path(save_dir) / (".tmp-" + name + "-" + std::to_string(getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    fs::create_directories(tmp);
    std::map<std::string, torch::Tensor> weights;
    for (const auto& p : model->named_parameters()) weights[p.key()] = p.value();
    write_synced(tmp / "model.pt", pickle(weights));
    // model.pt here averages what each model.pt held (the moving average, for
    // a run with train.ema_decay); there is no raw_model.pt beside it.
    auto meta = read_checkpoint_meta(newest);
    meta.averaged_weights = meta.weights;
    meta.weights = "averaged";
    // Keys this version does not know (a newer trainer's) are kept.
    auto json = read_json_file((fs::path(newest) / "meta.json").string());
    json.update(to_json(meta));
    write_synced(tmp / "meta.json", json.dump(2) + "\n");
    for (const char* file : {"config.json", "spm.model", "spm.src.model"}) {
      if (std::string(file) == "spm.src.model" && !fs::exists(fs::path(newest) / file)) continue;
      write_synced(tmp / file, read_checkpoint_file(fs::path(newest) / file));
    }
    nlohmann::json sources = nlohmann::json::array();
    for (const auto& d : dirs) sources.push_back(fs::path(d).filename().string());
    write_synced(tmp / "averaged_from.json", sources.dump(2) + "\n");
    sync_dir(tmp);
    install_directory(tmp, final_dir);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw IOError(save_dir + ": cannot write the averaged checkpoint: " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return final_dir.string();
}

std::string average_into(const std::string& save_dir, const std::string& spec) {
  const auto dirs = checkpoints_to_average(save_dir, spec);
  const auto out = write_averaged_checkpoint(dirs, save_dir, "averaged");
  std::string text = "averaged " + std::to_string(dirs.size()) + " checkpoints (" + spec + ":";
  for (const auto& d : dirs) text += " " + fs::path(d).filename().string();
  return text + ") into " + out;
}

}  // namespace aiayn
