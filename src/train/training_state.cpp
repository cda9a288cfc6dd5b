#include "src/train/training_state.h"

#include <cmath>
#include <filesystem>

#include "src/common/error.h"
#include "src/common/json_reader.h"

namespace aiayn {

namespace fs = std::filesystem;

namespace {

// meta.json writes "no value" as null: an infinite best, a NaN criterion.
nlohmann::json finite_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); }

}  // namespace

nlohmann::json to_json(const CheckpointMeta& meta) {
  const auto& s = meta.state;
  nlohmann::json j = to_json(meta.vocabulary);
  j.update({
      {"format", kCheckpointFormat},
      {"step", s.step},
      {"epoch", s.position.epoch},
      {"batch_index", s.position.index},
      {"skipped_updates", s.skipped_updates},
      {"best_valid", finite_or_null(s.best_valid)},
      {"stale_validations", s.stale_validations},
      {"valid_criterion", finite_or_null(s.valid_criterion)},
      {"train_seconds", s.train_seconds},
      {"batching", s.batching},
      {"loss_scale", s.loss_scale > 0 ? nlohmann::json({{"scale", s.loss_scale},
                                                        {"good_updates", s.loss_scale_good_updates}})
                                      : nlohmann::json()},
      {"optimizer_steps", meta.optimizer_steps},
      {"parameters", meta.parameters},
      {"weights", meta.weights},
      {"ema_decay", meta.ema_decay > 0 ? nlohmann::json(meta.ema_decay) : nlohmann::json()},
  });
  if (!meta.averaged_weights.empty()) j["averaged_weights"] = meta.averaged_weights;
  return j;
}

CheckpointMeta checkpoint_meta_from_json(const nlohmann::json& j, const std::string& path) {
  CheckpointMeta m;
  m.vocabulary = checkpoint_vocabulary_from_json(j, path);  // checks the format too
  auto& s = m.state;
  try {
    s.step = integer_at(j, "step", path);
    s.position.epoch = integer_at(j, "epoch", path);
    s.position.index = integer_at(j, "batch_index", path);
    s.skipped_updates = integer_at(j, "skipped_updates", path);
    if (!j.at("best_valid").is_null()) s.best_valid = j.at("best_valid").get<double>();
    s.stale_validations = integer_at(j, "stale_validations", path);
    s.train_seconds = j.at("train_seconds").get<double>();
    // Keys absent from checkpoints written before they existed.
    if (j.contains("valid_criterion") && !j["valid_criterion"].is_null()) {
      s.valid_criterion = j["valid_criterion"].get<double>();  // else not validated
    }
    if (j.contains("batching")) s.batching = j["batching"];
    if (j.contains("loss_scale") && !j["loss_scale"].is_null()) {
      s.loss_scale = j["loss_scale"].at("scale").get<double>();
      s.loss_scale_good_updates = integer_at(j["loss_scale"], "good_updates", path);
    }
    if (j.contains("optimizer_steps")) m.optimizer_steps = integer_at(j, "optimizer_steps", path);
    if (j.contains("parameters")) m.parameters = integer_at(j, "parameters", path);
    m.weights = j.value("weights", std::string("raw"));
    m.averaged_weights = j.value("averaged_weights", std::string());
    if (j.contains("ema_decay") && !j["ema_decay"].is_null()) m.ema_decay = j["ema_decay"].get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": damaged checkpoint metadata: " + e.what());
  }
  return m;
}

CheckpointMeta read_checkpoint_meta(const std::string& dir) {
  const auto path = (fs::path(dir) / "meta.json").string();
  if (!fs::exists(path)) throw InputError(path + ": missing from the checkpoint");
  return checkpoint_meta_from_json(read_json_file(path), path);
}

ExperimentConfig read_checkpoint_config(const std::string& dir) {
  const auto path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(path)) throw InputError(path + ": missing from the checkpoint");
  return parse_experiment_config(read_json_file(path), path);
}

}  // namespace aiayn
