#include "src/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "src/error.h"
#include "src/hash.h"
#include "src/json_reader.h"

namespace aiayn {

namespace fs = std::filesystem;

namespace {

constexpr int kFormat = 1;

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

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": missing from the checkpoint");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string pickle(const std::map<std::string, torch::Tensor>& tensors) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [k, v] : tensors) dict.insert(k, v.detach().cpu().contiguous());
  auto bytes = torch::pickle_save(dict);
  return std::string(bytes.begin(), bytes.end());
}

std::map<std::string, torch::Tensor> unpickle(const fs::path& path) {
  std::string bytes = read_bytes(path);
  std::map<std::string, torch::Tensor> out;
  try {
    auto value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
    for (const auto& entry : value.toGenericDict()) {
      out[entry.key().toStringRef()] = entry.value().toTensor();
    }
  } catch (const c10::Error& e) {
    throw InputError(path.string() + ": damaged or not a tensor dictionary");
  }
  return out;
}

// Puts the finished directory `tmp` in place as `final_dir`. An existing
// one (a step saved again) is moved aside first and removed only once the
// new one is in place.
void install_directory(const fs::path& tmp, const fs::path& final_dir) {
  const fs::path old = final_dir.parent_path() /
                       (".old-" + final_dir.filename().string() + "-" + std::to_string(getpid()));
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
  const fs::path tmp = fs::path(save_dir) / (".tmp-" + step_name(state.step) + "-" +
                                             std::to_string(getpid()));
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
    write_synced(tmp / "rng.pt",
                 pickle({{"cpu", at::detail::getDefaultCPUGenerator().get_state()}}));
    write_synced(tmp / "spm.model", read_bytes(tokenizer.path()));
    if (!tokenizers.joint()) write_synced(tmp / "spm.src.model", read_bytes(tokenizers.source.path()));
    write_synced(tmp / "config.json", config.to_json().dump(2) + "\n");
    const auto& s = state;
    nlohmann::json meta = {
        {"format", kFormat},
        {"step", s.step},
        {"epoch", s.position.epoch},
        {"batch_index", s.position.index},
        {"skipped_updates", s.skipped_updates},
        {"best_valid", std::isfinite(s.best_valid) ? nlohmann::json(s.best_valid) : nlohmann::json()},
        {"stale_validations", s.stale_validations},
        {"valid_criterion", std::isfinite(s.valid_criterion) ? nlohmann::json(s.valid_criterion) : nlohmann::json()},
        {"train_seconds", s.train_seconds},
        {"batching", s.batching},
        {"optimizer_steps", adam ? adam->steps() : 0},
        {"tokenizer_hash", hex64(tokenizer.hash())},
        {"vocab_size", tokenizer.vocab_size()},
        {"src_tokenizer_hash", tokenizers.joint() ? nlohmann::json() : nlohmann::json(hex64(tokenizers.source.hash()))},
        {"src_vocab_size", tokenizers.source.vocab_size()},
        {"parameters", model.parameter_count()},
        {"weights", ema != nullptr ? "ema" : "raw"},
        {"ema_decay", ema != nullptr ? nlohmann::json(ema->decay()) : nlohmann::json()},
    };
    write_synced(tmp / "meta.json", meta.dump(2) + "\n");
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

void link_checkpoint(const std::string& save_dir, const std::string& link,
                     const std::string& target) {
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

namespace {

// The save directory's complete checkpoint_<step> directories, oldest first.
std::vector<std::string> checkpoint_dirs(const std::string& save_dir) {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(save_dir, ec)) {
    auto name = e.path().filename().string();
    if (e.is_directory() && !e.is_symlink() && name.rfind("checkpoint_", 0) == 0 &&
        fs::exists(e.path() / "meta.json")) {
      dirs.push_back(e.path().string());
    }
  }
  if (ec) throw InputError(save_dir + ": cannot list checkpoints: " + ec.message());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// The `count` validated directories with the lowest criterion (a tie goes to
// the later step), in step order.
std::vector<std::string> best_of(const std::vector<std::string>& dirs, int64_t count) {
  std::vector<std::pair<double, std::string>> scored;
  for (const auto& d : dirs) {
    const double c = read_checkpoint_meta(d).state.valid_criterion;
    if (std::isfinite(c)) scored.emplace_back(c, d);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  });
  if (static_cast<int64_t>(scored.size()) > count) scored.resize(static_cast<size_t>(count));
  std::vector<std::string> out;
  for (const auto& [c, d] : scored) out.push_back(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

void prune_checkpoints(const std::string& save_dir, int64_t keep_last, int64_t keep_best) {
  std::vector<std::string> dirs = checkpoint_dirs(save_dir);
  std::vector<std::string> protect;
  std::error_code ec;
  for (const char* link : {"last", "best"}) {
    auto target = fs::read_symlink(fs::path(save_dir) / link, ec);
    if (!ec) protect.push_back((fs::path(save_dir) / target).string());
  }
  if (keep_best > 0) {
    for (const auto& d : best_of(dirs, keep_best)) protect.push_back(d);
  }
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < dirs.size(); ++i) {
    if (std::find(protect.begin(), protect.end(), dirs[i]) == protect.end()) {
      fs::remove_all(dirs[i], ec);
    }
  }
}

std::string resolve_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / "meta.json")) return path;
  if (fs::exists(fs::path(path) / "last" / "meta.json")) {
    return (fs::path(path) / fs::read_symlink(fs::path(path) / "last")).string();
  }
  if (!fs::exists(path)) throw InputError(path + ": checkpoint not found");
  throw InputError(path + ": not a checkpoint (no meta.json, and no last/meta.json)");
}

ExperimentConfig read_checkpoint_config(const std::string& dir) {
  auto path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(path)) throw InputError(path + ": missing from the checkpoint");
  return parse_experiment_config(read_json_file(path), path);
}

CheckpointMeta read_checkpoint_meta(const std::string& dir) {
  auto path = (fs::path(dir) / "meta.json").string();
  if (!fs::exists(path)) throw InputError(path + ": missing from the checkpoint");
  auto j = read_json_file(path);
  CheckpointMeta m;
  try {
    if (j.at("format").get<int>() != kFormat) {
      throw InputError(path + ": checkpoint format " + j.at("format").dump() + " is not " +
                       std::to_string(kFormat));
    }
    m.state.step = j.at("step").get<int64_t>();
    m.state.position.epoch = j.at("epoch").get<int64_t>();
    m.state.position.index = j.at("batch_index").get<int64_t>();
    m.state.skipped_updates = j.at("skipped_updates").get<int64_t>();
    if (!j.at("best_valid").is_null()) m.state.best_valid = j.at("best_valid").get<double>();
    m.state.stale_validations = j.at("stale_validations").get<int64_t>();
    m.state.train_seconds = j.at("train_seconds").get<double>();
    // Absent in checkpoints written before it existed: not validated.
    if (j.contains("valid_criterion") && !j["valid_criterion"].is_null()) {
      m.state.valid_criterion = j["valid_criterion"].get<double>();
    }
    if (j.contains("batching")) m.state.batching = j["batching"];
    m.tokenizer_hash = std::stoull(j.at("tokenizer_hash").get<std::string>(), nullptr, 16);
    m.vocab_size = j.at("vocab_size").get<int64_t>();
    // Absent or null: one joint vocabulary.
    if (j.contains("src_tokenizer_hash") && !j["src_tokenizer_hash"].is_null()) {
      m.src_tokenizer_hash = std::stoull(j["src_tokenizer_hash"].get<std::string>(), nullptr, 16);
      m.src_vocab_size = j.at("src_vocab_size").get<int64_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": damaged checkpoint metadata: " + e.what());
  } catch (const std::logic_error& e) {  // std::stoull on a bad hash
    throw InputError(path + ": damaged checkpoint metadata: bad tokenizer_hash");
  }
  return m;
}

void load_weights(TransformerImpl& model, const std::string& dir, bool raw) {
  const fs::path raw_file = fs::path(dir) / "raw_model.pt";
  if (raw && !fs::exists(raw_file)) {
    throw InputError(raw_file.string() + ": missing: this checkpoint holds one set of weights, "
                     "model.pt (trained without train.ema_decay, or an average written by "
                     "aiayn-train --average); drop --raw-weights");
  }
  load_weights_file(model, (raw ? raw_file : fs::path(dir) / "model.pt").string());
}

void load_training_weights(TransformerImpl& model, ExponentialMovingAverage* ema,
                           const std::string& dir) {
  const fs::path raw_file = fs::path(dir) / "raw_model.pt", file = fs::path(dir) / "model.pt";
  const bool has_raw = fs::exists(raw_file);
  load_weights_file(model, (has_raw ? raw_file : file).string());
  if (ema == nullptr) return;
  if (has_raw) {
    ema->load(unpickle(file), file.string());
  } else {  // a run without EMA resumed with it: the average starts here
    std::map<std::string, torch::Tensor> weights;
    for (const auto& p : model.named_parameters()) weights[p.key()] = p.value();
    ema->load(weights, file.string());
  }
}

void load_weights_file(TransformerImpl& model, const std::string& file) {
  const fs::path path = file;
  auto weights = unpickle(path);
  torch::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    auto it = weights.find(p.key());
    if (it == weights.end()) throw InputError(path.string() + ": no tensor " + p.key());
    if (!it->second.sizes().equals(p.value().sizes())) {
      throw InputError(path.string() + ": " + p.key() + " has shape " +
                       c10::str(it->second.sizes()) + ", the model needs " +
                       c10::str(p.value().sizes()));
    }
    p.value().copy_(it->second);
  }
}

void load_optimizer(Adam& adam, const std::string& dir, int64_t steps) {
  const auto path = fs::path(dir) / "optimizer.pt";
  adam.load_state(unpickle(path), steps, path.string());
}

void load_rng(const std::string& dir) {
  const auto path = fs::path(dir) / "rng.pt";
  auto state = unpickle(path);
  if (!state.count("cpu")) throw InputError(path.string() + ": no cpu generator state");
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state["cpu"]);
}

Tokenizer load_checkpoint_tokenizer(const std::string& dir) {
  auto meta = read_checkpoint_meta(dir);
  auto tokenizer = Tokenizer::load((fs::path(dir) / "spm.model").string());
  if (tokenizer.hash() != meta.tokenizer_hash || tokenizer.vocab_size() != meta.vocab_size) {
    throw InputError(dir + "/spm.model: does not match the checkpoint (hash " +
                     hex64(tokenizer.hash()) + ", vocabulary " +
                     std::to_string(tokenizer.vocab_size()) + "; the checkpoint was trained with " +
                     hex64(meta.tokenizer_hash) + ", " + std::to_string(meta.vocab_size) + ")");
  }
  return tokenizer;
}

TokenizerPair load_checkpoint_tokenizers(const std::string& dir) {
  auto target = load_checkpoint_tokenizer(dir);
  const auto meta = read_checkpoint_meta(dir);
  const auto path = (fs::path(dir) / "spm.src.model").string();
  if (meta.src_tokenizer_hash == 0) return {target, target};
  if (!fs::exists(path)) {
    throw InputError(path + ": missing from the checkpoint (its meta.json names a source vocabulary)");
  }
  auto source = Tokenizer::load(path);
  if (source.hash() != meta.src_tokenizer_hash || source.vocab_size() != meta.src_vocab_size) {
    throw InputError(path + ": does not match the checkpoint (hash " + hex64(source.hash()) +
                     "; the checkpoint was trained with " + hex64(meta.src_tokenizer_hash) + ")");
  }
  return {source, target, true};
}

Transformer load_model(const std::string& dir, const torch::Device& device, bool raw) {
  auto config = read_checkpoint_config(dir);
  Transformer model(config.model);
  load_weights(*model, dir, raw);
  model->to(device);
  model->eval();
  return model;
}

}  // namespace aiayn

namespace aiayn {

Transformer load_averaged_model(const std::vector<std::string>& dirs,
                                const torch::Device& device, bool raw) {
  if (dirs.empty()) throw InputError("no checkpoint given");
  if (dirs.size() == 1) return load_model(dirs[0], device, raw);
  const auto config = read_checkpoint_config(dirs[0]);
  const auto meta = read_checkpoint_meta(dirs[0]);
  Transformer model(config.model);
  std::map<std::string, torch::Tensor> sum;
  for (const auto& dir : dirs) {
    auto other = read_checkpoint_config(dir);
    if (other.model.to_json() != config.model.to_json()) {
      throw InputError(dir + ": a different architecture from " + dirs[0] +
                       "; only checkpoints of one model can be averaged");
    }
    const auto other_meta = read_checkpoint_meta(dir);
    if (other_meta.tokenizer_hash != meta.tokenizer_hash ||
        other_meta.src_tokenizer_hash != meta.src_tokenizer_hash) {
      throw InputError(dir + ": another tokenizer than " + dirs[0] + "; cannot average them");
    }
    load_weights(*model, dir, raw);
    torch::NoGradGuard no_grad;
    for (const auto& p : model->named_parameters()) {
      auto v = p.value().to(torch::kFloat64);
      auto it = sum.find(p.key());
      if (it == sum.end()) sum[p.key()] = v.clone();
      else it->second.add_(v);
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    p.value().copy_(sum[p.key()] / static_cast<double>(dirs.size()));
  }
  model->to(device);
  model->eval();
  return model;
}

std::vector<std::string> last_checkpoints(const std::string& save_dir, int64_t count) {
  auto dirs = checkpoint_dirs(save_dir);
  if (static_cast<int64_t>(dirs.size()) > count) dirs.erase(dirs.begin(), dirs.end() - count);
  if (dirs.empty()) throw InputError(save_dir + ": holds no checkpoint_<step> directories");
  return dirs;
}

std::vector<std::string> best_checkpoints(const std::string& save_dir, int64_t count) {
  auto dirs = best_of(checkpoint_dirs(save_dir), count);
  if (dirs.empty()) {
    throw InputError(save_dir + ": holds no validated checkpoint (best:K needs a validation set; "
                                "use last:K)");
  }
  return dirs;
}

std::vector<std::string> checkpoints_to_average(const std::string& save_dir, const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string kind = colon == std::string::npos ? "last" : spec.substr(0, colon);
  const std::string number = colon == std::string::npos ? spec : spec.substr(colon + 1);
  int64_t count = 0;
  try {
    size_t used = 0;
    count = std::stoll(number, &used);
    if (used != number.size()) count = 0;
  } catch (const std::exception&) {
    count = 0;
  }
  if (count <= 0 || (kind != "last" && kind != "best")) {
    throw InputError("--average " + spec + ": give last:K or best:K with K >= 1 (or K alone, = last:K)");
  }
  return kind == "best" ? best_checkpoints(save_dir, count) : last_checkpoints(save_dir, count);
}

std::string write_averaged_checkpoint(const std::vector<std::string>& dirs,
                                      const std::string& save_dir, const std::string& name) {
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
    auto meta = nlohmann::json::parse(read_bytes(fs::path(newest) / "meta.json"));
    meta["averaged_weights"] = meta.value("weights", "raw");
    meta["weights"] = "averaged";
    write_synced(tmp / "meta.json", meta.dump(2) + "\n");
    for (const char* file : {"config.json", "spm.model", "spm.src.model"}) {
      if (std::string(file) == "spm.src.model" && !fs::exists(fs::path(newest) / file)) continue;
      write_synced(tmp / file, read_bytes(fs::path(newest) / file));
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

}  // namespace aiayn
