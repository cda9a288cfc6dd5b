#include "src/train/validator.h"

#include "src/decode/bleu.h"
#include "src/decode/translator.h"
#include "src/train/criterion.h"

namespace aiayn {

Validator::Validator(const TrainingData& data, const TrainConfig& config, torch::Device device)
    : data_(data), config_(config), device_(device) {}

Validation Validator::run(Transformer model) const {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const Corpus& corpus = *data_.valid;
  BatchingOptions o;
  o.max_tokens = config_.max_tokens;
  BatchPlanner planner(corpus.cache, corpus.pairs, o);
  // In the training's precision; summed on the device, read once.
  torch::Tensor nll = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(device_));  // []
  int64_t tokens = 0;
  for (const auto& pairs : planner.epoch(0)) {
    auto batch = make_batch(corpus.cache, pairs);
    AutocastScope autocast(config_.precision, device_);
    nll += batch_criterion(*model, batch, 0.0, device_).nll.to(torch::kDouble);
    tokens += batch.tgt_tokens;
  }
  Validation v;
  v.loss = nll.item<double>() / static_cast<double>(tokens);
  v.sentences = static_cast<int64_t>(corpus.pairs.size());
  if (config_.valid_bleu) {
    Translator translator(model, data_.tokenizers, device_);
    TranslateOptions t;
    t.search.beam = config_.valid_beam;
    t.search.length_penalty = config_.valid_alpha;
    t.precision = config_.precision;
    auto results = translator.translate(data_.valid_src_text, t);
    std::vector<std::string> hyps;
    for (const auto& r : results) hyps.push_back(r.texts.empty() ? "" : r.texts[0]);
    auto bleu = corpus_bleu(hyps, data_.valid_tgt_text);
    v.bleu = bleu.score;
    v.bleu_text = bleu.format();
  }
  model->train(was_training);
  return v;
}

}  // namespace aiayn
