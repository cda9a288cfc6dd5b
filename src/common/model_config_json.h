// The model's hyper-parameters (models/config.h) as JSON: read strictly,
// every key typed and range-checked and every error naming the file and the
// key, and written back for checkpoints. Here rather than in models/, which
// depends on LibTorch alone.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

#include "models/config.h"
#include "src/common/json_reader.h"
#include "src/common/option_table.h"

namespace aiayn {

// The "model" section's keys, declared once (src/common/option_table.h).
const OptionTable<ModelConfig>& model_options();
// Reads the keys of a "model" object; throws InputError naming file and key.
ModelConfig read_model_config(JsonObjectReader& reader);
nlohmann::json model_config_to_json(const ModelConfig& config);
// Checks the keys and their relations; `origin` names the file in errors.
void validate_model_config(const ModelConfig& config, const std::string& origin);
// Vocabulary sizes must be known before a model is built: InputError naming
// `origin` when they are not.
void require_vocab(const ModelConfig& config, const std::string& origin);
// Reads the "model" object of a config file (other top-level sections are
// the business of their own readers; unknown ones are rejected there).
ModelConfig load_model_config(const std::string& path);

}  // namespace aiayn
