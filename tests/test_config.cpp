// Model configs: the shipped ones load with the paper's values; every kind of
// bad config is refused with an InputError naming the file and the key.
#include <catch2/catch.hpp>

#include "models/config.h"
#include "src/common/error.h"
#include "src/common/model_config_json.h"
#include "src/train/train_config.h"
#include "tests/test_util.h"

using namespace aiayn;

namespace {

std::string config_path(const std::string& name) {
  return std::string(AIAYN_SOURCE_DIR) + "/configs/" + name + ".json";
}

// The message load_model_config gives for a config file with this text.
std::string error_for(const std::string& text) {
  test::TempDir dir;
  std::string path = dir.file("bad.json");
  test::write_file(path, text);
  try {
    load_model_config(path);
  } catch (const InputError& e) {
    std::string msg = e.what();
    CHECK(msg.find(path) == 0);                  // names the file first
    CHECK(msg.find('\n') == std::string::npos);  // one line
    return msg;
  }
  FAIL("config was accepted: " << text);
  return {};
}

}  // namespace

TEST_CASE("shipped configs hold the paper's Table 3 values", "[config]") {
  auto base = load_model_config(config_path("base"));
  CHECK(base.encoder_layers == 6);
  CHECK(base.decoder_layers == 6);
  CHECK(base.d_model == 512);
  CHECK(base.d_ff == 2048);
  CHECK(base.heads == 8);
  CHECK(base.d_k == 64);
  CHECK(base.d_v == 64);
  CHECK(base.p_drop == Approx(0.1));
  CHECK_FALSE(base.norm_first);
  auto big = load_model_config(config_path("big"));
  CHECK(big.d_model == 1024);
  CHECK(big.d_ff == 4096);
  CHECK(big.heads == 16);
  CHECK(big.p_drop == Approx(0.3));
  auto small = load_model_config(config_path("small"));
  CHECK(small.d_model == 256);
  CHECK(small.encoder_layers == 3);
  auto tiny = load_model_config(config_path("tiny"));
  CHECK(tiny.d_model <= 64);
}

TEST_CASE("config JSON round-trips", "[config]") {
  ModelConfig c;
  c.positional = Positional::learned;
  c.d_k = 16;
  c.norm_first = true;
  nlohmann::json j = {{"model", model_config_to_json(c)}};
  test::TempDir dir;
  test::write_file(dir.file("c.json"), j.dump());
  auto back = load_model_config(dir.file("c.json"));
  CHECK(model_config_to_json(back) == model_config_to_json(c));
}

TEST_CASE("a missing config file is named", "[config][bad-input]") {
  try {
    load_model_config("/nonexistent/dir/model.json");
    FAIL("accepted");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Contains("/nonexistent/dir/model.json") && Catch::Contains("No such file"));
  }
}

TEST_CASE("malformed JSON names the line", "[config][bad-input]") {
  auto msg = error_for("{\n  \"model\": {\n    \"d_model\": 512,,\n  }\n}\n");
  CHECK_THAT(msg, Catch::Contains("bad.json:3:") && Catch::Contains("malformed JSON"));
}

TEST_CASE("an unknown key is named", "[config][bad-input]") {
  auto msg = error_for(R"({"model": {"d_modle": 512}})");
  CHECK_THAT(msg, Catch::Contains("\"model.d_modle\"") && Catch::Contains("unknown key"));
  CHECK_THAT(error_for(R"({"modle": {}})"), Catch::Contains("\"model\""));
}

TEST_CASE("a wrong type is named", "[config][bad-input]") {
  CHECK_THAT(error_for(R"({"model": {"heads": "8"}})"),
             Catch::Contains("\"model.heads\"") && Catch::Contains("must be an integer"));
  CHECK_THAT(error_for(R"({"model": {"d_model": 512.5}})"),
             Catch::Contains("\"model.d_model\"") && Catch::Contains("must be an integer"));
  CHECK_THAT(error_for(R"({"model": {"norm_first": 1}})"),
             Catch::Contains("\"model.norm_first\"") && Catch::Contains("true or false"));
  CHECK_THAT(error_for(R"({"model": {"positional": "rotary"}})"),
             Catch::Contains("\"model.positional\"") && Catch::Contains("\"sinusoidal\""));
  CHECK_THAT(error_for(R"({"model": 3})"), Catch::Contains("\"model\""));
}

TEST_CASE("an integer past int64 is refused naming the key", "[config][bad-input][fuzz]") {
  // fuzz/fuzz_config.cpp: 2^63 for a key whose maximum is INT64_MAX overflowed
  // a signed integer (UBSan) on its way to the range check.
  test::TempDir dir;
  const auto path = dir.file("big.json");
  for (const char* value : {"9223372036854775808", "18446744073709551615"}) {
    test::write_file(path, std::string(R"({"model": {}, "train": {"max_steps": )") + value + "}}");
    CHECK_THROWS_WITH(load_experiment_config(path), Catch::StartsWith(path) &&
                                                        Catch::Contains("\"train.max_steps\"") &&
                                                        Catch::Contains(std::string("got ") + value));
  }
  CHECK_THAT(error_for(R"({"model": {"heads": 18446744073709551615}})"),
             Catch::Contains("\"model.heads\"") && Catch::Contains("in [1, 1024]"));
}

TEST_CASE("a number past double's range is malformed JSON naming the file", "[config][bad-input][fuzz]") {
  // fuzz/fuzz_config.cpp, fuzz_decoding_choice.cpp, fuzz_meta.cpp: nlohmann
  // throws out_of_range, not parse_error, for it; the apps said "[json.exception
  // .out_of_range.406] ..." without the file and exited 1.
  CHECK_THAT(error_for(R"({"model": {"p_drop": 1.5e340}})"),
             Catch::Contains("malformed JSON: number overflow parsing '1.5e340'"));
}

TEST_CASE("a --set value of invalid UTF-8 is refused naming the key", "[config][bad-input][fuzz]") {
  // fuzz/fuzz_config.cpp: the value is kept as a string, and describing it
  // in the error threw nlohmann's type_error 316 (exit 1, no key named).
  test::TempDir dir;
  const auto path = dir.file("ok.json");
  test::write_file(path, R"({"model": {}})");
  CHECK_THROWS_WITH(
      load_experiment_config(path, {"train.max_steps=\xff\xfe"}),
      Catch::Contains("\"train.max_steps\"") && Catch::Contains("must be an integer, got string"));
}

TEST_CASE("d_model not divisible by heads is refused", "[config][bad-input]") {
  CHECK_THAT(error_for(R"({"model": {"d_model": 500, "heads": 8}})"),
             Catch::Contains("\"model.heads\"") && Catch::Contains("not divisible"));
}

TEST_CASE("non-positive sizes are refused", "[config][bad-input]") {
  for (const char* key :
       {"d_model", "d_ff", "heads", "encoder_layers", "decoder_layers", "d_k", "d_v", "max_positions"}) {
    for (int value : {0, -4}) {
      auto msg = error_for(std::string(R"({"model": {")") + key + "\": " + std::to_string(value) + "}}");
      CHECK_THAT(msg, Catch::Contains(std::string("\"model.") + key + "\""));
    }
  }
}

TEST_CASE("dropout outside 0 to 1 is refused", "[config][bad-input]") {
  for (const char* key : {"p_drop", "attention_dropout", "activation_dropout"}) {
    for (const char* value : {"1.0", "-0.1", "3"}) {
      auto msg = error_for(std::string(R"({"model": {")") + key + "\": " + value + "}}");
      CHECK_THAT(msg, Catch::Contains(std::string("\"model.") + key + "\"") && Catch::Contains("[0, 1)"));
    }
  }
}

TEST_CASE("shared embeddings need one vocabulary", "[config][bad-input]") {
  CHECK_THAT(error_for(R"({"model": {"src_vocab": 100, "tgt_vocab": 200}})"),
             Catch::Contains("\"model.share_embeddings\""));
}

TEST_CASE("each section's table drives reading, writing, validation and help alike", "[config][options]") {
  // Every key the table writes, it reads back to the same value.
  ExperimentConfig c;
  c.model.positional = Positional::learned;
  c.model.d_k = 32;
  c.data.spm_type = SpmType::unigram;
  c.data.train_src = "a";
  c.data.train_tgt = "b";
  c.train.lr_schedule = LrSchedule::inverse_sqrt;
  c.train.seed = 7;
  const auto j = c.to_json();
  CHECK(j["model"]["positional"] == "learned");
  CHECK(j["data"]["spm_type"] == "unigram");
  CHECK(j["train"]["lr_schedule"] == "inverse_sqrt");
  auto back = parse_experiment_config(j, "round-trip");
  CHECK(back.to_json() == j);
  CHECK(back.model.positional == Positional::learned);
  CHECK(back.data.spm_type == SpmType::unigram);
  CHECK(back.train.lr_schedule == LrSchedule::inverse_sqrt);

  // --help lists every key the table writes, once, with its default.
  const std::string help = settings_help();
  for (const auto& section : {"model", "data", "train"}) {
    for (const auto& [key, value] : j[section].items()) {
      const std::string name = "  " + std::string(section) + "." + key + "  ";
      INFO(name);
      CHECK(help.find(name) != std::string::npos);
      CHECK(help.find(name) == help.rfind(name));
    }
  }
  CHECK_THAT(help, Catch::Contains("model.positional  sinusoidal | learned (default \"sinusoidal\")") &&
                       Catch::Contains("train.warmup_steps  integer >= 1 (default 4000)") &&
                       Catch::Contains("data.bpe_dropout  number in [0, 1) (default 0.0)"));
}

TEST_CASE("a struct built in code is validated by the table's rules, naming the key",
          "[config][options][bad-input]") {
  auto message = [](const ModelConfig& c) {
    try {
      validate_model_config(c, "variant");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  ModelConfig ok;
  CHECK(message(ok).empty());
  auto heads = ok;
  heads.heads = 7;
  CHECK(message(heads) == "variant: key \"model.heads\": d_model 512 is not divisible by heads 7");
  auto dropout = ok;
  dropout.p_drop = 1.0;  // [0, 1): a dropout of 1 drops everything
  CHECK(message(dropout) == "variant: key \"model.p_drop\": must be a number in [0, 1), got 1.0");
  auto layers = ok;
  layers.encoder_layers = 0;
  CHECK(message(layers) == "variant: key \"model.encoder_layers\": must be an integer in [1, 1024], got 0");
  auto tied = ok;
  tied.src_vocab = 100;
  tied.tgt_vocab = 200;
  CHECK_THAT(message(tied),
             Catch::Contains("\"model.share_embeddings\"") && Catch::Contains("joint vocabulary"));
}
