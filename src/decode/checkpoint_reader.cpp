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

std::string resolve_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / "meta.json")) return path;
  if (fs::exists(fs::path(path) / "last" / "meta.json")) {
    return (fs::path(path) / fs::read_symlink(fs::path(path) / "last")).string();
  }
  if (!fs::exists(path)) throw InputError(path + ": checkpoint not found");
  throw InputError(path + ": not a checkpoint (no meta.json, and no last/meta.json)");
}

ModelConfig read_checkpoint_model(const std::string& dir) {
  const auto path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(path)) throw InputError(path + ": missing from the checkpoint");
  auto config = load_model_config(path);
  validate_model_config(config, path);
  require_vocab(config, path);
  return config;
}

nlohmann::json to_json(const CheckpointVocabulary& v) {
  return {{"tokenizer_hash", hex64(v.tokenizer_hash)},
          {"vocab_size", v.vocab_size},
          {"src_tokenizer_hash",
           v.src_tokenizer_hash == 0 ? nlohmann::json() : nlohmann::json(hex64(v.src_tokenizer_hash))},
          {"src_vocab_size", v.src_vocab_size}};
}

CheckpointVocabulary checkpoint_vocabulary_from_json(const nlohmann::json& j, const std::string& path) {
  CheckpointVocabulary v;
  try {
    if (integer_at(j, "format", path) != kCheckpointFormat) {
      throw InputError(path + ": checkpoint format " + j.at("format").dump() + " is not " +
                       std::to_string(kCheckpointFormat));
    }
    v.tokenizer_hash = std::stoull(j.at("tokenizer_hash").get<std::string>(), nullptr, 16);
    v.vocab_size = integer_at(j, "vocab_size", path);
    // Absent or null: one joint vocabulary.
    if (j.contains("src_tokenizer_hash") && !j["src_tokenizer_hash"].is_null()) {
      v.src_tokenizer_hash = std::stoull(j["src_tokenizer_hash"].get<std::string>(), nullptr, 16);
      v.src_vocab_size = integer_at(j, "src_vocab_size", path);
    } else if (j.contains("src_vocab_size")) {
      v.src_vocab_size = integer_at(j, "src_vocab_size", path);
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": damaged checkpoint metadata: " + e.what());
  } catch (const std::logic_error& e) {  // std::stoull on a bad hash
    throw InputError(path + ": damaged checkpoint metadata: bad tokenizer_hash");
  }
  return v;
}

CheckpointVocabulary read_checkpoint_vocabulary(const std::string& dir) {
  const auto path = (fs::path(dir) / "meta.json").string();
  if (!fs::exists(path)) throw InputError(path + ": missing from the checkpoint");
  return checkpoint_vocabulary_from_json(read_json_file(path), path);
}

void load_weights(TransformerImpl& model, const std::string& dir, bool raw) {
  const fs::path raw_file = fs::path(dir) / "raw_model.pt";
  if (raw && !fs::exists(raw_file)) {
    throw InputError(raw_file.string() +
                     ": missing: this checkpoint holds one set of weights, "
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
      throw InputError(path.string() + ": " + p.key() + " has shape " + c10::str(it->second.sizes()) +
                       ", the model needs " + c10::str(p.value().sizes()));
    }
    p.value().copy_(it->second);
  }
}

Tokenizer load_checkpoint_tokenizer(const std::string& dir) {
  const auto meta = read_checkpoint_vocabulary(dir);
  auto tokenizer = Tokenizer::load((fs::path(dir) / "spm.model").string());
  if (tokenizer.hash() != meta.tokenizer_hash || tokenizer.vocab_size() != meta.vocab_size) {
    throw InputError(dir + "/spm.model: does not match the checkpoint (hash " + hex64(tokenizer.hash()) +
                     ", vocabulary " + std::to_string(tokenizer.vocab_size()) +
                     "; the checkpoint was trained with " + hex64(meta.tokenizer_hash) + ", " +
                     std::to_string(meta.vocab_size) + ")");
  }
  return tokenizer;
}

TokenizerPair load_checkpoint_tokenizers(const std::string& dir) {
  auto target = load_checkpoint_tokenizer(dir);
  const auto meta = read_checkpoint_vocabulary(dir);
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
  Transformer model(read_checkpoint_model(dir));
  load_weights(*model, dir, raw);
  model->to(device);
  model->eval();
  return model;
}

Transformer load_averaged_model(const std::vector<std::string>& dirs, const torch::Device& device, bool raw) {
  if (dirs.empty()) throw InputError("no checkpoint given");
  if (dirs.size() == 1) return load_model(dirs[0], device, raw);
  const auto config = read_checkpoint_model(dirs[0]);
  const auto meta = read_checkpoint_vocabulary(dirs[0]);
  Transformer model(config);
  std::map<std::string, torch::Tensor> sum;
  for (const auto& dir : dirs) {
    if (model_config_to_json(read_checkpoint_model(dir)) != model_config_to_json(config)) {
      throw InputError(dir + ": a different architecture from " + dirs[0] +
                       "; only checkpoints of one model can be averaged");
    }
    const auto other_meta = read_checkpoint_vocabulary(dir);
    if (other_meta.tokenizer_hash != meta.tokenizer_hash ||
        other_meta.src_tokenizer_hash != meta.src_tokenizer_hash) {
      throw InputError(dir + ": another tokenizer than " + dirs[0] + "; cannot average them");
    }
    load_weights(*model, dir, raw);
    torch::NoGradGuard no_grad;
    for (const auto& p : model->named_parameters()) {
      auto v = p.value().to(torch::kFloat64);
      auto it = sum.find(p.key());
      if (it == sum.end())
        sum[p.key()] = v.clone();
      else
        it->second.add_(v);
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

}  // namespace aiayn
