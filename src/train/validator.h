// Validation during training: the validation set's per-token loss and
// perplexity through the training criterion (smoothing 0), and, with
// train.valid_bleu, the BLEU of the model's own translations with the beam
// and length penalty that will be used. Lower criterion is better.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <string>

#include "models/transformer.h"
#include "src/train/train_config.h"
#include "src/train/training_setup.h"

namespace aiayn {

struct Validation {
  double loss = 0;             // nats per target token
  std::optional<double> bleu;  // cased sacreBLEU-compatible, with valid_bleu
  std::string bleu_text;       // its formatted score and signature
  int64_t sentences = 0;
  // What ranks checkpoints and counts patience: -BLEU when scored, else the loss.
  double criterion() const { return bleu ? -*bleu : loss; }
};

class Validator {
 public:
  // `data` must outlive the validator; its valid corpus must be present.
  Validator(const TrainingData& data, const TrainConfig& config, torch::Device device);
  // Scores the model's weights as they are, in eval mode; leaves the model
  // in the mode it found it in.
  Validation run(Transformer model) const;

 private:
  const TrainingData& data_;
  const TrainConfig& config_;
  torch::Device device_;
};

}  // namespace aiayn
