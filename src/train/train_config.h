// The "data" and "train" sections of a config file: the corpus and the
// paper's training recipe (section 5), every value overridable by
// `--set section.key=value` on the command line.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "models/config.h"
#include "src/common/model_config_json.h"
#include "src/common/option_table.h"
#include "src/common/precision.h"

namespace aiayn {

// SentencePiece's segmentation model, when the toolkit trains one.
enum class SpmType { bpe, unigram };
inline const char* to_string(SpmType t) { return t == SpmType::unigram ? "unigram" : "bpe"; }

// The learning-rate schedule: the paper's (section 5.3) or fairseq's.
enum class LrSchedule { noam, inverse_sqrt };
inline const char* to_string(LrSchedule s) { return s == LrSchedule::inverse_sqrt ? "inverse_sqrt" : "noam"; }

struct DataConfig {
  std::string train_src, train_tgt;  // one sentence per line, parallel
  std::string valid_src, valid_tgt;  // optional validation set
  std::string spm_model;             // existing SentencePiece model; "" = train one
  // One SentencePiece model for both sides (needed by model.share_embeddings),
  // or one per side (spm.src.model and spm.model; untied embeddings).
  bool joint_vocabulary = true;
  std::string spm_src_model;  // with separate vocabularies and spm_model: the source side's
  int64_t vocab_size = 8000;  // when training the SentencePiece model (each, when separate)
  SpmType spm_type = SpmType::bpe;
  double character_coverage = 1.0;
  bool split_digits = false;
  int64_t max_length = 256;  // pieces per side; longer pairs are dropped
  double max_ratio = 0.0;    // length-ratio filter; 0 = off
  bool skip_invalid_utf8 = false;
  // Subword regularisation: BPE-dropout's merge-skip probability for the
  // training pairs, drawn afresh each epoch (src/data/bpe_dropout.h); 0 = off.
  double bpe_dropout = 0.0;
};

struct TrainConfig {
  int64_t max_tokens = 4096;  // per batch and side, padded shape (paper: ~25,000)
  int64_t update_freq = 1;    // batches accumulated per update (8 GPUs -> 8)
  LrSchedule lr_schedule = LrSchedule::noam;
  double lr_scale = 1.0;  // noam: factor on d_model^-0.5 min(...)
  double lr = 5e-4;       // inverse_sqrt: peak learning rate
  int64_t warmup_steps = 4000;
  double adam_beta1 = 0.9, adam_beta2 = 0.98, adam_eps = 1e-9;
  double weight_decay = 0.0;     // decoupled (AdamW); 0 = the paper's Adam
  double label_smoothing = 0.1;  // epsilon_ls, section 5.4
  double clip_norm = 0.0;        // 0 = no clipping
  double ema_decay = 0.0;        // moving average of the weights (src/train/ema.h); 0 = off
  double rdrop_alpha = 0.0;      // R-Drop's KL weight (src/train/rdrop.h); 0 = off
  int64_t max_steps = 100000;
  int64_t max_epochs = 0;    // 0 = no limit
  double max_minutes = 0.0;  // wall-clock budget; 0 = no limit
  uint64_t seed = 1;
  int64_t log_every = 100;
  int64_t valid_every = 1000;
  bool valid_bleu = true;    // also translate the validation set and score BLEU
  int64_t valid_beam = 1;    // beam for that (1 = greedy)
  double valid_alpha = 0.6;  // and its length penalty (src/decode/search.h)
  int64_t save_every = 1000;
  int64_t keep_last = 5;
  int64_t keep_best = 0;      // also keep the K best-validated checkpoints (every validation saves)
  int64_t patience = 0;       // validations without improvement before stopping; 0 = off
  int64_t max_bad_steps = 5;  // consecutive non-finite losses before giving up
  // Mixed precision (src/common/precision.h): the matrix products in bf16 or
  // fp16 under autocast; weights, Adam's moments and the loss stay fp32.
  // fp16 scales the loss dynamically (src/train/loss_scale.h).
  Precision precision = Precision::fp32;
  bool tf32 = false;  // CUDA fp32 matrix products in TF32 (cuBLAS; Ampere and later)
};

struct ExperimentConfig {
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  nlohmann::json to_json() const;
};

// The keys of the "data" and "train" sections, declared once
// (src/common/option_table.h); --help prints them with the model's.
const OptionTable<DataConfig>& data_options();
const OptionTable<TrainConfig>& train_options();
// Every key of a config file, with type, range, default and meaning.
std::string settings_help();

// Reads a config file, applies `overrides` ("train.max_steps=100", values
// parsed as JSON, else taken as strings), and validates everything. Errors
// name the file (or "--set") and the key.
ExperimentConfig load_experiment_config(const std::string& path,
                                        const std::vector<std::string>& overrides = {});
// The same from an already-parsed JSON object (e.g. a checkpoint's config).
ExperimentConfig parse_experiment_config(const nlohmann::json& j, const std::string& origin);

}  // namespace aiayn
