#include "src/decode/checkpoint_reader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "src/common/error.h"
#include "src/common/hash.h"
#include "src/common/json_reader.h"

namespace aiayn {

namespace fs = std::filesystem;

std::string read_checkpoint_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file + ": missing from the checkpoint");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::map<std::string, torch::Tensor> read_tensors(const std::string& file) {
  const fs::path path = file;
  std::string bytes = read_checkpoint_file(file);
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

std::vector<std::string> best_validated(const std::vector<std::string>& dirs, int64_t count) {
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

namespace {

// nlohmann's get<int64_t> casts a float, which is undefined past int64's
// range ({"format": 1.5e300}, fuzz/fuzz_meta.cpp): integers must be integers.
int64_t meta_integer(const nlohmann::json& j, const char* key, const std::string& path) {
  const auto& v = j.at(key);
  if (!v.is_number_integer()) throw InputError(path + ": key \"" + key + "\" must be an integer, got " + v.dump());
  return v.get<int64_t>();
}

}  // namespace

CheckpointMeta read_checkpoint_meta(const std::string& dir) {
  auto path = (fs::path(dir) / "meta.json").string();
  if (!fs::exists(path)) throw InputError(path + ": missing from the checkpoint");
  auto j = read_json_file(path);
  CheckpointMeta m;
  try {
    if (meta_integer(j, "format", path) != kCheckpointFormat) {
      throw InputError(path + ": checkpoint format " + j.at("format").dump() + " is not " +
                       std::to_string(kCheckpointFormat));
    }
    m.state.step = meta_integer(j, "step", path);
    m.state.position.epoch = meta_integer(j, "epoch", path);
    m.state.position.index = meta_integer(j, "batch_index", path);
    m.state.skipped_updates = meta_integer(j, "skipped_updates", path);
    if (!j.at("best_valid").is_null()) m.state.best_valid = j.at("best_valid").get<double>();
    m.state.stale_validations = meta_integer(j, "stale_validations", path);
    m.state.train_seconds = j.at("train_seconds").get<double>();
    // Absent in checkpoints written before it existed: not validated.
    if (j.contains("valid_criterion") && !j["valid_criterion"].is_null()) {
      m.state.valid_criterion = j["valid_criterion"].get<double>();
    }
    if (j.contains("batching")) m.state.batching = j["batching"];
    if (j.contains("loss_scale") && !j["loss_scale"].is_null()) {
      m.state.loss_scale = j["loss_scale"].at("scale").get<double>();
      m.state.loss_scale_good_updates = meta_integer(j["loss_scale"], "good_updates", path);
    }
    m.tokenizer_hash = std::stoull(j.at("tokenizer_hash").get<std::string>(), nullptr, 16);
    m.vocab_size = meta_integer(j, "vocab_size", path);
    // Absent or null: one joint vocabulary.
    if (j.contains("src_tokenizer_hash") && !j["src_tokenizer_hash"].is_null()) {
      m.src_tokenizer_hash = std::stoull(j["src_tokenizer_hash"].get<std::string>(), nullptr, 16);
      m.src_vocab_size = meta_integer(j, "src_vocab_size", path);
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

void load_weights_file(TransformerImpl& model, const std::string& file) {
  const fs::path path = file;
  auto weights = read_tensors(path);
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
    if (model_config_to_json(other.model) != model_config_to_json(config.model)) {
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
  auto dirs = best_validated(checkpoint_dirs(save_dir), count);
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

}  // namespace aiayn
