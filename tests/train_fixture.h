// A small generated parallel corpus and the aiayn-train command for it,
// shared by the tests that need a trained checkpoint.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace aiayn::test {

inline const std::string kTrain = std::string(AIAYN_BIN_DIR) + "/aiayn-train";

// A word-reversal corpus: learnable, and made here.
struct Workspace {
  TempDir dir;
  Workspace(int pairs = 300) {
    std::mt19937 rng(5);
    const char* words[] = {"red",  "green", "blue", "cat", "dog", "sun",
                           "moon", "tree",  "car",  "sea", "sky", "hill"};
    std::string src, tgt;
    for (int i = 0; i < pairs; ++i) {
      int n = 2 + static_cast<int>(rng() % 6);
      std::vector<std::string> w;
      for (int k = 0; k < n; ++k) w.push_back(words[rng() % 12]);
      for (int k = 0; k < n; ++k) src += (k ? " " : "") + w[k];
      for (int k = n - 1; k >= 0; --k) tgt += (k != n - 1 ? " " : "") + w[k];
      src += "\n";
      tgt += "\n";
    }
    write_file(file("train.src"), src);
    write_file(file("train.tgt"), tgt);
    write_file(file("valid.src"), src.substr(0, src.find('\n', 200) + 1));
    write_file(file("valid.tgt"), tgt.substr(0, tgt.find('\n', 200) + 1));
  }
  std::string file(const std::string& name) const { return dir.file(name); }
  // The training command with the tiny model and a quick recipe.
  std::string command(const std::string& save_dir, const std::string& extra = "") const {
    return kTrain + " --save-dir " + save_dir + " " + arguments(extra);
  }
  // Its arguments but the save directory (for scripts that add their own).
  std::string arguments(const std::string& extra = "") const {
    std::string args = "--config " + config() + " --threads 2";
    for (const auto& o : overrides()) args += " --set " + o;
    return args + " " + extra;
  }
  static std::string config() { return std::string(AIAYN_SOURCE_DIR) + "/configs/tiny.json"; }
  // The recipe's --set overrides, for tests that call aiayn::train in-process.
  std::vector<std::string> overrides(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> o = {"data.train_src=" + file("train.src"),
                                  "data.train_tgt=" + file("train.tgt"),
                                  "data.valid_src=" + file("valid.src"),
                                  "data.valid_tgt=" + file("valid.tgt"),
                                  "data.vocab_size=40",
                                  "train.max_tokens=300",
                                  "train.warmup_steps=50",
                                  "train.log_every=1",
                                  "train.valid_every=5",
                                  "train.save_every=5",
                                  "model.p_drop=0.1"};
    o.insert(o.end(), extra.begin(), extra.end());
    return o;
  }
};

// One checkpoint trained on the reversal corpus. ctest runs every test case
// in a process of its own, so the run is kept in the build tree (keyed by the
// aiayn-train binary's time stamp) and trained only by the first test.
struct Trained {
  Workspace ws;
  std::string save;
  Trained() {
    namespace fs = std::filesystem;
    const fs::path root = fs::path(AIAYN_BIN_DIR) / ".." / "test-fixtures";
    // Wider than configs/tiny.json and with larger batches, so that 300 steps
    // learn the reversal well enough for the tools' tests to see it.
    const std::string settings =
        "--set train.max_steps=300 --set train.valid_every=1000 --set train.save_every=100 "
        "--set model.p_drop=0.0 --set model.d_model=64 --set model.d_ff=128 "
        "--set train.max_tokens=1000 --set train.lr_scale=0.2";
    // A new trainer binary or new settings train a new fixture.
    const auto stamp = fs::last_write_time(kTrain).time_since_epoch().count() ^
                       static_cast<int64_t>(std::hash<std::string>()(settings) >> 1);
    save = (root / ("reversal-" + std::to_string(stamp))).string();
    if (fs::exists(fs::path(save) / "complete")) return;
    fs::create_directories(root);
    const std::string tmp = save + ".tmp-" + std::to_string(getpid());
    fs::remove_all(tmp);
    auto r = run(ws.command(tmp, settings));
    if (r.exit_code != 0) throw std::runtime_error("training failed: " + r.err);
    // Corpus files live in the temporary workspace; the fixture needs only the checkpoints.
    write_file(tmp + "/complete", "");
    // Under `ctest -j` another test process may have finished first.
    std::error_code ec;
    fs::rename(tmp, save, ec);
    if (ec) {
      fs::remove_all(tmp);
      if (!fs::exists(fs::path(save) / "complete")) throw std::runtime_error("fixture: " + ec.message());
    }
  }
};

inline Trained& trained() {
  static Trained instance;
  return instance;
}

}  // namespace aiayn::test
