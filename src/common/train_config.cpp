#include "src/common/train_config.h"

#include "src/common/error.h"
#include "src/common/json_reader.h"

namespace aiayn {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

DataConfig read_data(JsonObjectReader& r) {
  DataConfig d;
  d.train_src = r.string("train_src", d.train_src);
  d.train_tgt = r.string("train_tgt", d.train_tgt);
  d.valid_src = r.string("valid_src", d.valid_src);
  d.valid_tgt = r.string("valid_tgt", d.valid_tgt);
  d.spm_model = r.string("spm_model", d.spm_model);
  d.joint_vocabulary = r.boolean("joint_vocabulary", d.joint_vocabulary);
  d.spm_src_model = r.string("spm_src_model", d.spm_src_model);
  d.vocab_size = r.integer("vocab_size", d.vocab_size, 8, int64_t{1} << 24);
  d.spm_type = r.choice("spm_type", d.spm_type, {"bpe", "unigram"});
  d.character_coverage = r.number("character_coverage", d.character_coverage, 0.9, 1.0);
  d.split_digits = r.boolean("split_digits", d.split_digits);
  d.max_length = r.integer("max_length", d.max_length, 1, 1 << 20);
  d.max_ratio = r.number("max_ratio", d.max_ratio, 0.0, 1e6);
  d.skip_invalid_utf8 = r.boolean("skip_invalid_utf8", d.skip_invalid_utf8);
  d.bpe_dropout = r.number("bpe_dropout", d.bpe_dropout, 0.0, 1.0, true);
  r.reject_unknown();
  if (d.bpe_dropout > 0 && d.spm_type != "bpe") {
    r.fail("bpe_dropout", "BPE-dropout needs a BPE model (data.spm_type \"bpe\")");
  }
  if (d.joint_vocabulary && !d.spm_src_model.empty()) {
    r.fail("spm_src_model", "a source-side model needs data.joint_vocabulary false");
  }
  if (!d.joint_vocabulary && d.spm_src_model.empty() != d.spm_model.empty()) {
    r.fail(d.spm_model.empty() ? "spm_model" : "spm_src_model",
           "separate vocabularies take both spm_src_model and spm_model, or neither (train both)");
  }
  if (d.valid_src.empty() != d.valid_tgt.empty()) {
    r.fail(d.valid_src.empty() ? "valid_src" : "valid_tgt",
           "valid_src and valid_tgt go together");
  }
  return d;
}

TrainConfig read_train(JsonObjectReader& r) {
  TrainConfig t;
  t.max_tokens = r.integer("max_tokens", t.max_tokens, 1);
  t.update_freq = r.integer("update_freq", t.update_freq, 1, 4096);
  t.lr_schedule = r.choice("lr_schedule", t.lr_schedule, {"noam", "inverse_sqrt"});
  t.lr_scale = r.number("lr_scale", t.lr_scale, 1e-9, 1e6);
  t.lr = r.number("lr", t.lr, 1e-12, 10.0);
  t.warmup_steps = r.integer("warmup_steps", t.warmup_steps, 1);
  t.adam_beta1 = r.number("adam_beta1", t.adam_beta1, 0.0, 1.0, true);
  t.adam_beta2 = r.number("adam_beta2", t.adam_beta2, 0.0, 1.0, true);
  t.adam_eps = r.number("adam_eps", t.adam_eps, 1e-20, 1.0);
  t.weight_decay = r.number("weight_decay", t.weight_decay, 0.0, 1.0);
  t.label_smoothing = r.number("label_smoothing", t.label_smoothing, 0.0, 1.0, true);
  t.clip_norm = r.number("clip_norm", t.clip_norm, 0.0, 1e9);
  t.ema_decay = r.number("ema_decay", t.ema_decay, 0.0, 1.0, true);
  t.max_steps = r.integer("max_steps", t.max_steps, 1);
  t.max_epochs = r.integer("max_epochs", t.max_epochs, 0);
  t.max_minutes = r.number("max_minutes", t.max_minutes, 0.0, 1e9);
  t.seed = static_cast<uint64_t>(r.integer("seed", static_cast<int64_t>(t.seed), 0));
  t.log_every = r.integer("log_every", t.log_every, 1);
  t.valid_every = r.integer("valid_every", t.valid_every, 1);
  t.valid_bleu = r.boolean("valid_bleu", t.valid_bleu);
  t.valid_beam = r.integer("valid_beam", t.valid_beam, 1, 64);
  t.valid_alpha = r.number("valid_alpha", t.valid_alpha, 0.0, 10.0);
  t.save_every = r.integer("save_every", t.save_every, 1);
  t.keep_last = r.integer("keep_last", t.keep_last, 1, kMaxInt);
  t.keep_best = r.integer("keep_best", t.keep_best, 0, kMaxInt);
  t.patience = r.integer("patience", t.patience, 0);
  t.max_bad_steps = r.integer("max_bad_steps", t.max_bad_steps, 1);
  r.reject_unknown();
  return t;
}

// "train.max_steps=100" -> j["train"]["max_steps"] = 100.
void apply_override(nlohmann::json& j, const std::string& text) {
  auto eq = text.find('=');
  auto dot = text.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq || dot == 0 ||
      dot + 1 == eq) {
    throw InputError("--set " + text + ": expected section.key=value, e.g. train.max_steps=100");
  }
  std::string section = text.substr(0, dot), key = text.substr(dot + 1, eq - dot - 1);
  std::string raw = text.substr(eq + 1);
  nlohmann::json value = nlohmann::json::parse(raw, nullptr, false);
  if (value.is_discarded()) value = raw;  // a bare string
  if (!j.contains(section)) j[section] = nlohmann::json::object();
  if (!j[section].is_object()) throw InputError("--set " + text + ": " + section + " is not an object");
  j[section][key] = value;
}

}  // namespace

nlohmann::json ExperimentConfig::to_json() const {
  const auto& d = data;
  const auto& t = train;
  return {
      {"model", model_config_to_json(model)},
      {"data",
       {{"train_src", d.train_src}, {"train_tgt", d.train_tgt}, {"valid_src", d.valid_src},
        {"valid_tgt", d.valid_tgt}, {"spm_model", d.spm_model},
        {"joint_vocabulary", d.joint_vocabulary}, {"spm_src_model", d.spm_src_model},
        {"vocab_size", d.vocab_size},
        {"spm_type", d.spm_type}, {"character_coverage", d.character_coverage},
        {"split_digits", d.split_digits},
        {"max_length", d.max_length}, {"max_ratio", d.max_ratio},
        {"skip_invalid_utf8", d.skip_invalid_utf8}, {"bpe_dropout", d.bpe_dropout}}},
      {"train",
       {{"max_tokens", t.max_tokens}, {"update_freq", t.update_freq},
        {"lr_schedule", t.lr_schedule}, {"lr_scale", t.lr_scale}, {"lr", t.lr},
        {"warmup_steps", t.warmup_steps}, {"adam_beta1", t.adam_beta1},
        {"adam_beta2", t.adam_beta2}, {"adam_eps", t.adam_eps}, {"weight_decay", t.weight_decay},
        {"label_smoothing", t.label_smoothing}, {"clip_norm", t.clip_norm},
        {"ema_decay", t.ema_decay},
        {"max_steps", t.max_steps}, {"max_epochs", t.max_epochs},
        {"max_minutes", t.max_minutes}, {"seed", t.seed}, {"log_every", t.log_every},
        {"valid_every", t.valid_every}, {"valid_bleu", t.valid_bleu},
        {"valid_beam", t.valid_beam}, {"valid_alpha", t.valid_alpha}, {"save_every", t.save_every},
        {"keep_last", t.keep_last}, {"keep_best", t.keep_best}, {"patience", t.patience},
        {"max_bad_steps", t.max_bad_steps}}},
  };
}

ExperimentConfig parse_experiment_config(const nlohmann::json& j, const std::string& origin) {
  JsonObjectReader top(j, origin, "");
  ExperimentConfig c;
  auto model = top.object("model");
  c.model = read_model_config(model);
  auto data = top.object("data");
  c.data = read_data(data);
  auto train = top.object("train");
  c.train = read_train(train);
  top.reject_unknown();
  if (!c.data.joint_vocabulary && c.model.share_embeddings) {
    throw InputError(origin + ": key \"model.share_embeddings\": source and target embeddings can "
                     "be one matrix only with one joint vocabulary; set it false with "
                     "data.joint_vocabulary false");
  }
  return c;
}

ExperimentConfig load_experiment_config(const std::string& path,
                                        const std::vector<std::string>& overrides) {
  nlohmann::json j = read_json_file(path);
  if (!j.is_object()) throw InputError(path + ": the top level must be a JSON object");
  for (const auto& o : overrides) apply_override(j, o);
  return parse_experiment_config(j, overrides.empty() ? path : path + " (with --set)");
}

}  // namespace aiayn
