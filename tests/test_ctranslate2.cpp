// tools/export_ctranslate2.py: its refusals, and CTranslate2 decoding an
// export as aiayn-translate does (tools/compare_ctranslate2.py). The demo's
// 1,000-sentence check is in test_demo.cpp, where its model is trained.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "tests/test_util.h"
#include "tests/train_fixture.h"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

const std::string kSource = AIAYN_SOURCE_DIR;
const std::string kToolsPython = kSource + "/.venv-tools/bin/python";

// scripts/setup.sh makes the venv; without it (no package index) these skip.
bool have_tools() {
  if (fs::exists(kToolsPython)) return true;
  WARN("skipped: " << kToolsPython << " missing (scripts/setup.sh installs ctranslate2 there)");
  return false;
}

aiayn::test::RunResult export_model(const std::string& checkpoint, const std::string& out,
                                    const std::string& extra = "") {
  return aiayn::test::run(kToolsPython + " " + kSource + "/tools/export_ctranslate2.py " + checkpoint + " " +
                          out + " " + extra);
}

aiayn::test::RunResult compare(const std::string& checkpoint, const std::string& ct2,
                               const std::string& input, const std::string& extra) {
  return aiayn::test::run(kToolsPython + " " + kSource + "/tools/compare_ctranslate2.py --checkpoint " +
                          checkpoint + " --ct2 " + ct2 + " --input " + input + " --threads 2 " +
                          "--aiayn-translate " + std::string(AIAYN_BIN_DIR) + "/aiayn-translate " + extra);
}

// The first `n` lines of a file, to another file.
void head(const std::string& from, const std::string& to, int n) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line << "\n";
}

}  // namespace

TEST_CASE("CTranslate2 export decodes as ours: greedy and beam 4 outputs and forced scores",
          "[ctranslate2][tools]") {
  if (!have_tools()) return;
  auto& trained = aiayn::test::trained();
  aiayn::test::Workspace corpus;  // the fixture's corpus, made again (same seed)
  aiayn::test::TempDir dir;
  const std::string ckpt = trained.save + "/last";
  auto r = export_model(ckpt, dir.file("ct2"));
  INFO(r.out + r.err);
  REQUIRE(r.exit_code == 0);
  // The model and the tokenizers beside it. (That tied embeddings are stored
  // once was measured on the Multi30k model, docs/ctranslate2.md: at this
  // fixture's 40-piece vocabulary a second copy is within the file's noise.)
  CHECK(fs::exists(dir.file("ct2/model.bin")));
  CHECK(fs::exists(dir.file("ct2/source.spm")));
  head(corpus.file("train.src"), dir.file("in.txt"), 200);
  head(corpus.file("train.tgt"), dir.file("ref.txt"), 200);
  auto c = compare(ckpt, dir.file("ct2"), dir.file("in.txt"),
                   "--reference " + dir.file("ref.txt") + " --json " + dir.file("cmp.json") +
                       " --require-greedy 100 --require-bleu-diff 0.1 --require-score-diff 1e-3");
  INFO(c.out + c.err);
  CHECK(c.exit_code == 0);
  auto j = nlohmann::json::parse(aiayn::test::read_file(dir.file("cmp.json")));
  CHECK(j["greedy_identical"].get<int>() == 200);
  CHECK(j["score_max_abs_diff"].get<double>() < 1e-3);
  CHECK(j["bleu_beam4_ours"].get<double>() > 50.0);  // it learned the reversal

  SECTION("an int8 export decodes, and ends up smaller") {
    auto q = export_model(ckpt, dir.file("ct2-int8"), "--quantization int8");
    INFO(q.out + q.err);
    REQUIRE(q.exit_code == 0);
    CHECK(fs::file_size(dir.file("ct2-int8/model.bin")) < fs::file_size(dir.file("ct2/model.bin")) / 2);
    auto ci = compare(ckpt, dir.file("ct2-int8"), dir.file("in.txt"), "--reference " + dir.file("ref.txt"));
    INFO(ci.out + ci.err);
    CHECK(ci.exit_code == 0);
  }
}

TEST_CASE("CTranslate2 export of pre-LN learned positions untied separate vocabularies",
          "[ctranslate2][tools]") {
  if (!have_tools()) return;
  aiayn::test::Workspace ws;
  aiayn::test::TempDir dir;
  auto t = aiayn::test::run(ws.command(
      dir.file("model"),
      "--set train.max_steps=60 --set model.norm_first=true --set model.positional=learned "
      "--set model.tie_output=false --set model.share_embeddings=false --set data.joint_vocabulary=false"));
  INFO(t.err);
  REQUIRE(t.exit_code == 0);
  REQUIRE(fs::exists(dir.file("model/last/spm.src.model")));
  auto r = export_model(dir.file("model"), dir.file("ct2"));
  INFO(r.out + r.err);
  REQUIRE(r.exit_code == 0);
  head(ws.file("train.src"), dir.file("in.txt"), 100);
  auto c = compare(dir.file("model"), dir.file("ct2"), dir.file("in.txt"),
                   "--json " + dir.file("cmp.json") + " --require-score-diff 1e-3");
  INFO(c.out + c.err);
  CHECK(c.exit_code == 0);
  auto j = nlohmann::json::parse(aiayn::test::read_file(dir.file("cmp.json")));
  // A model this young has near-ties that two engines may break apart.
  CHECK(j["greedy_identical"].get<int>() >= 90);
}

TEST_CASE("export_ctranslate2: what it cannot express or may not overwrite exits 2 naming it",
          "[ctranslate2][tools][bad-input]") {
  if (!have_tools()) return;
  auto& trained = aiayn::test::trained();
  aiayn::test::TempDir dir;
  const std::string good = trained.save + "/last";
  // A copy of the checkpoint whose config.json can be edited.
  const auto copy = [&](const std::string& name) {
    fs::copy(good, dir.file(name), fs::copy_options::recursive);
    return dir.file(name);
  };
  const auto set_model_key = [&](const std::string& ckpt, const std::string& key,
                                 const nlohmann::json& value) {
    auto config = nlohmann::json::parse(aiayn::test::read_file(ckpt + "/config.json"));
    config["model"][key] = value;
    aiayn::test::write_file(ckpt + "/config.json", config.dump(1));
  };
  const auto refused = [&](const std::string& ckpt, const std::string& out, const std::string& needle,
                           const std::string& extra = "") {
    auto r = export_model(ckpt, out, extra);
    INFO(r.out + r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains(needle));
    CHECK(aiayn::test::count_lines(r.err) == 1);
  };

  SECTION("d_k other than d_model / heads") {
    const auto ckpt = copy("dk");
    set_model_key(ckpt, "d_k", 8);
    refused(ckpt, dir.file("out"), "model.d_k");
    CHECK_FALSE(fs::exists(dir.file("out")));
  }
  SECTION("a model key the exporter does not know") {
    const auto ckpt = copy("unknown");
    set_model_key(ckpt, "rotary", true);
    refused(ckpt, dir.file("out"), "model.rotary");
  }
  SECTION("a weights file that is not one") {
    const auto ckpt = copy("bad-weights");
    aiayn::test::write_file(ckpt + "/model.pt", "not an archive");
    refused(ckpt, dir.file("out"), ckpt + "/model.pt");
  }
  SECTION("raw weights from a checkpoint without them") {
    refused(good, dir.file("out"), "raw_model.pt", "--raw-weights");
  }
  SECTION("not a checkpoint") { refused(dir.file("nowhere"), dir.file("out"), dir.file("nowhere")); }
  SECTION("an existing output is kept without --force, and --force replaces only a model") {
    fs::create_directories(dir.file("taken"));
    aiayn::test::write_file(dir.file("taken/notes.txt"), "mine");
    refused(good, dir.file("taken"), "exists; give --force");
    refused(good, dir.file("taken"), "not a CTranslate2 model directory", "--force");
    CHECK(aiayn::test::read_file(dir.file("taken/notes.txt")) == "mine");
  }
  SECTION(
      "compare_ctranslate2 on a directory that is no export, a missing input, or references of another length") {
    aiayn::test::write_file(dir.file("in.txt"), "red cat\n");
    fs::create_directories(dir.file("not-an-export"));
    auto c = compare(good, dir.file("not-an-export"), dir.file("in.txt"), "");
    CHECK(c.exit_code == 2);
    CHECK_THAT(c.err, Contains("aiayn_export.json missing"));
    REQUIRE(export_model(good, dir.file("ct2")).exit_code == 0);
    auto m = compare(good, dir.file("ct2"), dir.file("no-such.txt"), "");
    CHECK(m.exit_code == 2);
    CHECK_THAT(m.err, Contains("no-such.txt: no such file"));
    aiayn::test::write_file(dir.file("two-refs.txt"), "a\nb\n");
    auto l = compare(good, dir.file("ct2"), dir.file("in.txt"), "-r " + dir.file("two-refs.txt"));
    CHECK(l.exit_code == 2);
    CHECK_THAT(l.err, Contains("has 2 lines but"));
  }
  SECTION("an output inside the checkpoint") {
    const auto ckpt = copy("inside");
    refused(ckpt, ckpt + "/ct2", "outside the checkpoint");
    CHECK_FALSE(fs::exists(ckpt + "/ct2"));
  }
}
