#include "src/train/train_config.h"

#include "src/common/error.h"
#include "src/common/json_reader.h"

namespace aiayn {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

OptionTable<DataConfig> make_data_table() {
  using D = DataConfig;
  using Fail = OptionTable<D>::Fail;
  OptionTable<D> t("data");
  t.string("train_src", &D::train_src, "training source text, one sentence per line")
      .string("train_tgt", &D::train_tgt, "training target text, line-parallel to train_src")
      .string("valid_src", &D::valid_src, "validation source text (optional)")
      .string("valid_tgt", &D::valid_tgt, "validation target text, with valid_src")
      .string("spm_model", &D::spm_model,
              "an existing SentencePiece model (the target side's when "
              "separate); empty: train one in the save directory")
      .boolean("joint_vocabulary", &D::joint_vocabulary,
               "one SentencePiece model for both sides; false: one per side, untied embeddings")
      .string("spm_src_model", &D::spm_src_model,
              "with separate vocabularies and spm_model: the source side's")
      .integer("vocab_size", &D::vocab_size, 8, int64_t{1} << 24,
               "pieces of a SentencePiece model the toolkit trains (each, when separate)")
      .choice("spm_type", &D::spm_type, {SpmType::bpe, SpmType::unigram}, "the model it trains")
      .number("character_coverage", &D::character_coverage, 0.9, 1.0, "SentencePiece's character coverage")
      .boolean("split_digits", &D::split_digits, "split numbers into single digits")
      .integer("max_length", &D::max_length, 1, 1 << 20, "pieces per side; longer training pairs are dropped")
      .number("max_ratio", &D::max_ratio, 0.0, 1e6, "drop pairs whose length ratio exceeds this; 0 = off")
      .boolean("skip_invalid_utf8", &D::skip_invalid_utf8,
               "skip lines that are not UTF-8 instead of refusing")
      .number("bpe_dropout", &D::bpe_dropout, 0.0, 1.0,
              "BPE-dropout's merge-skip probability for the training pairs, drawn afresh each epoch; "
              "0 = off",
              true)
      .rule([](const D& d, const Fail& fail) {
        if (d.bpe_dropout > 0 && d.spm_type != SpmType::bpe) {
          fail("bpe_dropout", "BPE-dropout needs a BPE model (data.spm_type \"bpe\")");
        }
        if (d.joint_vocabulary && !d.spm_src_model.empty()) {
          fail("spm_src_model", "a source-side model needs data.joint_vocabulary false");
        }
        if (!d.joint_vocabulary && d.spm_src_model.empty() != d.spm_model.empty()) {
          fail(d.spm_model.empty() ? "spm_model" : "spm_src_model",
               "separate vocabularies take both spm_src_model and spm_model, or neither (train both)");
        }
        if (d.valid_src.empty() != d.valid_tgt.empty()) {
          fail(d.valid_src.empty() ? "valid_src" : "valid_tgt", "valid_src and valid_tgt go together");
        }
      });
  return t;
}

OptionTable<TrainConfig> make_train_table() {
  using T = TrainConfig;
  OptionTable<T> t("train");
  t.integer("max_tokens", &T::max_tokens, 1, kMaxInt,
            "tokens per batch and side, padded shape (paper: ~25,000 per GPU step)")
      .integer("update_freq", &T::update_freq, 1, 4096, "batches accumulated per update (8 GPUs -> 8)")
      .choice("lr_schedule", &T::lr_schedule, {LrSchedule::noam, LrSchedule::inverse_sqrt},
              "noam: the paper's (5.3); inverse_sqrt: fairseq's, peaking at lr")
      .number("lr_scale", &T::lr_scale, 1e-9, 1e6,
              "noam: factor on d_model^-0.5 min(step^-0.5, step warmup^-1.5)")
      .number("lr", &T::lr, 1e-12, 10.0, "inverse_sqrt: the peak learning rate")
      .integer("warmup_steps", &T::warmup_steps, 1, kMaxInt, "warm-up updates (paper: 4000)")
      .number("adam_beta1", &T::adam_beta1, 0.0, 1.0, "Adam's beta1 (paper: 0.9)", true)
      .number("adam_beta2", &T::adam_beta2, 0.0, 1.0, "Adam's beta2 (paper: 0.98)", true)
      .number("adam_eps", &T::adam_eps, 1e-20, 1.0, "Adam's epsilon (paper: 1e-9)")
      .number("weight_decay", &T::weight_decay, 0.0, 1.0,
              "decoupled weight decay (AdamW); 0 = the paper's Adam")
      .number("label_smoothing", &T::label_smoothing, 0.0, 1.0, "epsilon_ls (5.4; paper: 0.1)", true)
      .number("clip_norm", &T::clip_norm, 0.0, 1e9, "clip the gradient norm to this; 0 = no clipping")
      .number("ema_decay", &T::ema_decay, 0.0, 1.0,
              "moving average of the weights, which validation scores and checkpoints hold; 0 = off", true)
      .number("rdrop_alpha", &T::rdrop_alpha, 0.0, 1000.0,
              "R-Drop (Liang et al., 2021): each batch runs twice with independent dropout, plus this "
              "weight on the symmetric KL between the two passes; twice the compute per update; 0 = off")
      .integer("max_steps", &T::max_steps, 1, kMaxInt, "stop after this many updates")
      .integer("max_epochs", &T::max_epochs, 0, kMaxInt, "stop after this many epochs; 0 = no limit")
      .number("max_minutes", &T::max_minutes, 0.0, 1e9, "wall-clock budget; 0 = no limit")
      .integer("seed", &T::seed, 0, kMaxInt, "seeds weights, batch order, dropout and BPE-dropout")
      .integer("log_every", &T::log_every, 1, kMaxInt, "updates between progress lines")
      .integer("valid_every", &T::valid_every, 1, kMaxInt, "updates between validations")
      .boolean("valid_bleu", &T::valid_bleu,
               "also translate the validation set and score BLEU (it then ranks checkpoints)")
      .integer("valid_beam", &T::valid_beam, 1, 64, "beam for that (1 = greedy)")
      .number("valid_alpha", &T::valid_alpha, 0.0, 10.0, "and its length penalty")
      .integer("save_every", &T::save_every, 1, kMaxInt, "updates between checkpoints")
      .integer("keep_last", &T::keep_last, 1, kMaxInt, "checkpoints kept, newest first")
      .integer("keep_best", &T::keep_best, 0, kMaxInt,
               "also keep the K best-validated checkpoints (every validation then saves)")
      .integer("patience", &T::patience, 0, kMaxInt,
               "validations without improvement before stopping; 0 = off")
      .integer("max_bad_steps", &T::max_bad_steps, 1, kMaxInt, "non-finite losses in a row before giving up")
      .choice("precision", &T::precision, {Precision::fp32, Precision::bf16, Precision::fp16},
              "matrix products in bf16 or fp16 under autocast, weights and loss fp32; fp16 scales the loss "
              "dynamically; bf16 pays on GPUs and on CPUs with AVX512_BF16 or AMX")
      .boolean("tf32", &T::tf32, "CUDA fp32 matrix products in TF32 (Ampere and later); no effect elsewhere");
  return t;
}

// "train.max_steps=100" -> j["train"]["max_steps"] = 100.
void apply_override(nlohmann::json& j, const std::string& text) {
  auto eq = text.find('=');
  auto dot = text.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq || dot == 0 || dot + 1 == eq) {
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

const OptionTable<DataConfig>& data_options() {
  static const OptionTable<DataConfig> table = make_data_table();
  return table;
}

const OptionTable<TrainConfig>& train_options() {
  static const OptionTable<TrainConfig> table = make_train_table();
  return table;
}

std::string settings_help() {
  return "Settings (a config file's sections, or --set section.key=value):\n" +
         model_options().help(ModelConfig{}) + data_options().help(DataConfig{}) +
         train_options().help(TrainConfig{});
}

nlohmann::json ExperimentConfig::to_json() const {
  return {{"model", model_config_to_json(model)},
          {"data", data_options().write(data)},
          {"train", train_options().write(train)}};
}

ExperimentConfig parse_experiment_config(const nlohmann::json& j, const std::string& origin) {
  JsonObjectReader top(j, origin, "");
  ExperimentConfig c;
  auto model = top.object("model");
  c.model = read_model_config(model);
  auto data = top.object("data");
  data_options().read(data, c.data);
  auto train = top.object("train");
  train_options().read(train, c.train);
  top.reject_unknown();
  if (!c.data.joint_vocabulary && c.model.share_embeddings) {
    throw InputError(origin +
                     ": key \"model.share_embeddings\": source and target embeddings can "
                     "be one matrix only with one joint vocabulary; set it false with "
                     "data.joint_vocabulary false");
  }
  const auto& m = c.model;
  if (c.train.rdrop_alpha > 0 && m.p_drop == 0 && m.attention_dropout == 0 && m.activation_dropout == 0) {
    throw InputError(origin +
                     ": key \"train.rdrop_alpha\": R-Drop compares two dropout passes, and this model "
                     "has no dropout (model.p_drop, attention_dropout and activation_dropout are 0)");
  }
  return c;
}

ExperimentConfig load_experiment_config(const std::string& path, const std::vector<std::string>& overrides) {
  nlohmann::json j = read_json_file(path);
  if (!j.is_object()) throw InputError(path + ": the top level must be a JSON object");
  for (const auto& o : overrides) apply_override(j, o);
  return parse_experiment_config(j, overrides.empty() ? path : path + " (with --set)");
}

}  // namespace aiayn
