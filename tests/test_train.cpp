// aiayn-train end to end on a small generated corpus: exact resume, atomic
// checkpoints under kill -9, SIGINT, non-finite losses, bad input, and
// weights readable from Python.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include <ATen/record_function.h>

#include <atomic>
#include <mutex>

#include "models/transformer.h"
#include "src/common/app.h"
#include "src/common/blas_kernel.h"
#include "src/common/build_info.h"
#include "src/common/error.h"
#include "src/common/json_reader.h"
#include "src/decode/checkpoint_reader.h"
#include "src/train/trainer.h"
#include "src/train/training_setup.h"
#include "src/train/training_state.h"
#include "src/train/validator.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"

using namespace aiayn;
namespace fs = std::filesystem;
using test::kTrain;
using test::Workspace;

namespace {

// step -> loss of the "train" records of metrics.jsonl.
std::map<int64_t, double> losses(const std::string& save_dir) {
  std::map<int64_t, double> out;
  std::istringstream in(test::read_file(save_dir + "/metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == "train") out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

bool losses_exist(const std::string& save_dir) {
  return fs::exists(save_dir + "/metrics.jsonl") && losses(save_dir).size() >= 3;
}

// Trains `extra` for 12 steps in one run and in two (7, then resumed to
// 12): the losses agree and the last checkpoints' `files` are equal byte for byte.
void expect_exact_resume(const Workspace& ws, const std::string& extra,
                         const std::vector<std::string>& files = {"model.pt"}) {
  auto whole = test::run(ws.command(ws.file("whole"), extra + " --set train.max_steps=12"));
  INFO(whole.out << whole.err);
  REQUIRE(whole.exit_code == 0);
  REQUIRE(test::run(ws.command(ws.file("split"), extra + " --set train.max_steps=7")).exit_code == 0);
  auto second = test::run(ws.command(ws.file("split"), extra + " --set train.max_steps=12 --resume"));
  INFO(second.out << second.err);
  REQUIRE(second.exit_code == 0);
  CHECK_THAT(second.out, Catch::Contains("resumed from") && Catch::Contains("at step 7"));
  auto a = losses(ws.file("whole")), b = losses(ws.file("split"));
  REQUIRE(a.size() == 12);
  REQUIRE(b.size() == 12);
  for (int64_t step = 1; step <= 12; ++step) {
    INFO("step " << step);
    CHECK(std::abs(a[step] - b[step]) <= 1e-6);
  }
  for (const auto& file : files) {
    INFO(file);
    CHECK(test::read_file(ws.file("whole/last/" + file)) == test::read_file(ws.file("split/last/" + file)));
  }
}

std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files[e.path().string()] = test::read_file(e.path().string());
  }
  return files;
}

}  // namespace

TEST_CASE("OpenMP workers are told to sleep, or OpenBLAS gets the cores", "[train][threads]") {
  Workspace ws;
  auto log_of = [&](const std::string& env, const std::string& name) {
    auto r = test::run(env + " " + ws.command(ws.file(name), "--set train.max_steps=1"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return test::read_file(ws.file(name + "/train.log"));
  };
  if (aiayn::openblas_config().empty()) {
    // MKL (official builds) multiplies on LibTorch's own OpenMP pool: one
    // pool, nothing to split or re-execute for, whatever the setting.
    CHECK_THAT(log_of("env -u OMP_WAIT_POLICY -u AIAYN_TUNED", "a"),
               Catch::Contains("LibTorch intra-op 2 (OMP_WAIT_POLICY unset)"));
    CHECK_THAT(log_of("OMP_WAIT_POLICY=active", "b"),
               Catch::Contains("LibTorch intra-op 2 (OMP_WAIT_POLICY active)"));
    return;
  }
  // By default the executable re-runs itself with OMP_WAIT_POLICY=PASSIVE.
  CHECK_THAT(log_of("env -u OMP_WAIT_POLICY -u AIAYN_TUNED", "a"),
             Catch::Contains("LibTorch intra-op 2, OpenBLAS 2 (OMP_WAIT_POLICY PASSIVE, set by aiayn)"));
  // A user's choice is kept; spinning workers then get one thread.
  CHECK_THAT(log_of("OMP_WAIT_POLICY=active", "b"),
             Catch::Contains("LibTorch intra-op 1, OpenBLAS 2 (OMP_WAIT_POLICY active)"));
  CHECK_THAT(log_of("OMP_WAIT_POLICY=passive", "c"),
             Catch::Contains("LibTorch intra-op 2, OpenBLAS 2 (OMP_WAIT_POLICY passive)"));
  CHECK_THAT(log_of("env -u OMP_WAIT_POLICY AIAYN_NO_REEXEC=1", "d"),
             Catch::Contains("LibTorch intra-op 1, OpenBLAS 2 (OMP_WAIT_POLICY unset)"));
}

TEST_CASE("a resumed run logs the same losses as an uninterrupted one", "[train][resume]") {
  Workspace ws;
  // The weights of the last checkpoints agree bit for bit too.
  expect_exact_resume(ws, "");
}

TEST_CASE("SIGINT finishes the update, checkpoints and says how to resume", "[train][signal]") {
  Workspace ws;
  const std::string save = ws.file("run");
  pid_t pid = fork();
  if (pid == 0) {
    std::string cmd = ws.command(save, "--set train.max_steps=100000 --set train.save_every=100000") + " > " +
                      ws.file("out") + " 2> " + ws.file("err");
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), nullptr);
    _exit(127);
  }
  // Wait until training is under way (a few steps logged).
  for (int i = 0; i < 600 && losses_exist(save) == false; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  std::string out = test::read_file(ws.file("out"));
  INFO(out << test::read_file(ws.file("err")));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_THAT(out, Catch::Contains("interrupted at step") && Catch::Contains("--resume"));
  auto dir = resolve_checkpoint(save);
  auto meta = read_checkpoint_meta(dir);
  CHECK(meta.state.step > 0);
  auto resumed =
      test::run(ws.command(save, "--resume --set train.max_steps=" + std::to_string(meta.state.step + 2)));
  CHECK(resumed.exit_code == 0);
}

TEST_CASE("kill -9 at any moment leaves the last checkpoint loadable", "[train][atomic]") {
  Workspace ws;
  const std::string save = ws.file("run");
  std::mt19937 rng(3);
  int kills_after_a_checkpoint = 0;
  for (int round = 0; round < 6; ++round) {
    pid_t pid = fork();
    if (pid == 0) {
      std::string cmd = ws.command(save, std::string(round ? "--resume " : "") +
                                             "--set train.max_steps=100000 --set train.save_every=1") +
                        " > /dev/null 2>&1";
      execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), nullptr);
      _exit(127);
    }
    // First wait for a checkpoint to exist, then kill at a random moment.
    for (int i = 0; i < 600 && !fs::exists(save + "/last"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 700));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    REQUIRE(fs::exists(save + "/last"));
    ++kills_after_a_checkpoint;
    auto dir = resolve_checkpoint(save);
    auto meta = read_checkpoint_meta(dir);
    auto model = load_model(dir, torch::kCPU);  // every part readable
    CHECK(model->parameter_count() > 0);
    CHECK(meta.state.step > 0);
  }
  CHECK(kills_after_a_checkpoint == 6);
  // And the run resumes from whatever was left.
  auto step = read_checkpoint_meta(resolve_checkpoint(save)).state.step;
  auto resumed = test::run(ws.command(save, "--resume --set train.max_steps=" + std::to_string(step + 1)));
  INFO(resumed.err);
  CHECK(resumed.exit_code == 0);
}

TEST_CASE("non-finite losses skip updates, and K in a row stop with the step", "[train][nan]") {
  Workspace ws;
  // A test double in the trainer's fault seam: the listed updates' losses
  // are NaN (a step listed twice fails its retry too).
  auto nan_at = [](std::vector<int64_t> steps) {
    return [steps](int64_t step, Tally& tally) mutable {
      auto it = std::find(steps.begin(), steps.end(), step);
      if (it == steps.end()) return;
      steps.erase(it);
      tally.sums[0].fill_(std::nan(""));  // the loss, on the device
    };
  };
  auto options = [&](const std::string& name) {
    RunOptions o;
    o.save_dir = ws.file(name);
    o.threads = 2;
    o.config_path = Workspace::config();
    return o;
  };
  auto once = options("once");
  once.before_update = nan_at({3});
  auto result = train(load_experiment_config(Workspace::config(), ws.overrides({"train.max_steps=6"})), once);
  CHECK(result.steps == 6);
  CHECK(result.skipped_updates == 1);
  CHECK_THAT(test::read_file(ws.file("once/train.log")),
             Catch::Contains("step 3: non-finite loss, update skipped") &&
                 Catch::Contains("after 6 steps (1 skipped)"));
  CHECK(read_checkpoint_meta(resolve_checkpoint(ws.file("once"))).state.skipped_updates == 1);

  auto diverging = options("run");
  diverging.before_update = nan_at({4, 4, 4});
  auto config = load_experiment_config(Workspace::config(),
                                       ws.overrides({"train.max_steps=20", "train.max_bad_steps=3"}));
  std::string message;
  try {
    train(config, diverging);
  } catch (const DivergenceError& e) {
    message = e.what();
  }
  CHECK_THAT(message, Catch::Contains("training diverged: 3 non-finite losses in a row, the last at step 4"));
  // Its own exit code: neither bad input nor a system failure.
  CHECK(run_app("aiayn-train", [&]() -> int { throw DivergenceError(message); }) == 3);
}

TEST_CASE("setup and validator as units: directory, tokenizer, corpora, then a score", "[train][setup]") {
  Workspace ws;
  auto config = load_experiment_config(Workspace::config(), ws.overrides());
  RunOptions options;
  options.save_dir = ws.file("unit");
  options.threads = 2;
  options.config_path = Workspace::config();
  auto setup = set_up_training(config, options);
  CHECK(fs::exists(ws.file("unit/spm.model")));
  CHECK(fs::exists(ws.file("unit/train.log")));
  CHECK(setup.data.tokenizers.joint());
  CHECK(setup.data.train.pairs.size() == 300);
  REQUIRE(setup.data.valid);
  CHECK(setup.data.valid_src_text.size() == setup.data.valid->pairs.size());
  CHECK_FALSE(setup.data.target_dropout);  // data.bpe_dropout 0

  config.model.src_vocab = config.model.tgt_vocab = setup.data.tokenizers.target.vocab_size();
  torch::manual_seed(1);
  Transformer model(config.model);
  model->train();
  Validator validator(setup.data, config.train, torch::kCPU);
  const auto v = validator.run(model);
  CHECK(model->is_training());  // left in the mode it was found in
  // Untrained: about the uniform distribution's log(vocab) nats a token.
  CHECK(v.loss > 0.5 * std::log(40.0));
  CHECK(v.loss < 2 * std::log(40.0));
  REQUIRE(v.bleu);
  CHECK(v.criterion() == -*v.bleu);
  CHECK(v.sentences == static_cast<int64_t>(setup.data.valid->pairs.size()));
  // No dropout in validation: the same weights score the same.
  CHECK(validator.run(model).loss == v.loss);
  config.train.valid_bleu = false;
  const auto loss_only = Validator(setup.data, config.train, torch::kCPU).run(model);
  CHECK_FALSE(loss_only.bleu);
  CHECK(loss_only.criterion() == v.loss);
}

TEST_CASE("training bad input: each a one-line error, exit 2, nothing lost", "[train][bad-input]") {
  Workspace ws;
  SECTION("unwritable or impossible checkpoint directory") {
    test::write_file(ws.file("plain-file"), "x");
    auto r = test::run(ws.command(ws.file("plain-file/sub")));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("plain-file/sub"));
    CHECK(test::read_file(ws.file("plain-file")) == "x");
  }
  SECTION("missing save dir on resume") {
    auto r = test::run(ws.command(ws.file("nothing-here"), "--resume"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("no checkpoint"));
  }
  SECTION("existing checkpoints are not overwritten by a fresh start") {
    REQUIRE(test::run(ws.command(ws.file("run"), "--set train.max_steps=5")).exit_code == 0);
    auto before = snapshot(ws.file("run"));
    auto r = test::run(ws.command(ws.file("run"), "--set train.max_steps=5"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("already holds checkpoints") && Catch::Contains("--resume"));
    auto after = snapshot(ws.file("run"));
    for (const auto& [path, bytes] : before) {
      if (path.find("train.log") == std::string::npos) CHECK(after[path] == bytes);
    }
  }
  SECTION("corrupt or truncated checkpoint on resume") {
    REQUIRE(test::run(ws.command(ws.file("run"), "--set train.max_steps=5")).exit_code == 0);
    auto model_pt = ws.file("run/last/model.pt");
    auto good = test::read_file(model_pt);
    test::write_file(model_pt, good.substr(0, good.size() / 2));
    auto r = test::run(ws.command(ws.file("run"), "--resume --set train.max_steps=8"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("model.pt"));
    CHECK(test::count_lines(r.err) == 1);
    CHECK(test::read_file(model_pt).size() == good.size() / 2);  // left as it was
    test::write_file(ws.file("run/last/meta.json"), "{\"format\": 1}");
    r = test::run(ws.command(ws.file("run"), "--resume --set train.max_steps=8"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("meta.json"));
  }
  SECTION("resuming with another model or tokenizer is refused") {
    REQUIRE(test::run(ws.command(ws.file("run"), "--set train.max_steps=5")).exit_code == 0);
    auto r = test::run(ws.command(ws.file("run"), "--resume --set model.d_ff=128 --set train.max_steps=8"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("differs") && Catch::Contains("same model"));
    auto other = test::run(ws.command(ws.file("other"), "--set train.max_steps=1 --set data.vocab_size=48"));
    REQUIRE(other.exit_code == 0);
    r = test::run(ws.command(ws.file("run"), "--resume --set data.spm_model=" + ws.file("other/spm.model") +
                                                 " --set train.max_steps=8"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("other/spm.model") && Catch::Contains("same one"));
  }
  SECTION("a bad config key or value") {
    auto r = test::run(ws.command(ws.file("run"), "--set train.warmup=10"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("\"train.warmup\"") && Catch::Contains("unknown key"));
    r = test::run(ws.command(ws.file("run"), "--set train.label_smoothing=1.5"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("\"train.label_smoothing\""));
  }
  SECTION("a moving average that would never move, keep_best with nothing to rank by") {
    auto r = test::run(ws.command(ws.file("run"), "--set train.ema_decay=1"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("\"train.ema_decay\""));
    r = test::run(
        ws.command(ws.file("run"), "--set train.keep_best=2 --set data.valid_src= --set data.valid_tgt="));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("\"train.keep_best\"") && Catch::Contains("validation set"));
    CHECK(test::count_lines(r.err) == 1);
    CHECK_FALSE(fs::exists(ws.file("run/last")));
  }
  SECTION("a training corpus empty after filtering") {
    auto r = test::run(ws.command(ws.file("run"), "--set data.max_length=1"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("no pair left after filtering") && Catch::Contains("train.src"));
  }
  SECTION("a validation set whose sides differ in length") {
    test::write_file(ws.file("valid.tgt"), "red\n");
    auto r = test::run(ws.command(ws.file("run")));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("valid.src has") && Catch::Contains("valid.tgt has 1"));
  }
}

TEST_CASE("checkpoint weights load in Python with the model's names and shapes", "[train][python]") {
  Workspace ws;
  REQUIRE(test::run(ws.command(ws.file("run"), "--set train.max_steps=2")).exit_code == 0);
  auto dir = resolve_checkpoint(ws.file("run"));
  auto model = load_model(dir, torch::kCPU);
  std::string expected;
  for (const auto& p : model->named_parameters()) {
    expected += p.key() + " " + c10::str(p.value().sizes()) + "\n";
  }
  test::write_file(ws.file("expected.txt"), expected);
  test::write_file(ws.file("check.py"), R"(import sys, torch
w = torch.load(sys.argv[1] + "/model.pt")
expected = {}
for line in open(sys.argv[2]):
    name, shape = line.split(" ", 1)
    expected[name] = [int(x) for x in shape.strip()[1:-1].split(",")]
assert set(w) == set(expected), (set(w) ^ set(expected))
for name, t in w.items():
    assert list(t.shape) == expected[name], name
    assert t.dtype == torch.float32 and torch.isfinite(t).all(), name
print(len(w), "tensors ok")
)");
  auto r = test::run("/usr/bin/python3 " + ws.file("check.py") + " " + dir + " " + ws.file("expected.txt"));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("tensors ok"));
}

TEST_CASE("training from given weights (--init), also from a file written by Python", "[train][init]") {
  Workspace ws;
  REQUIRE(test::run(ws.command(ws.file("base"), "--set train.max_steps=30")).exit_code == 0);
  // From the checkpoint directory: its tokenizer, its weights, a fresh schedule.
  auto r = test::run(ws.command(ws.file("tuned"), "--init " + ws.file("base") + " --set train.max_steps=3"));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("initialised from"));
  auto base = losses(ws.file("base")), tuned = losses(ws.file("tuned"));
  REQUIRE(tuned.size() == 3);
  // It goes on from where base ended, far below base's own start.
  CHECK(tuned[1] < base[1] - 0.5);
  CHECK(std::abs(tuned[1] - base[30]) < 0.5);
  // The same weights through torch.save in Python train identically.
  test::write_file(ws.file("resave.py"), R"(import sys, torch
torch.save(dict(torch.load(sys.argv[1])), sys.argv[2])
)");
  auto py = test::run("/usr/bin/python3 " + ws.file("resave.py") + " " + resolve_checkpoint(ws.file("base")) +
                      "/model.pt " + ws.file("python.pt"));
  INFO(py.err);
  REQUIRE(py.exit_code == 0);
  r = test::run(ws.command(ws.file("from-file"), "--init " + ws.file("python.pt") + " --set data.spm_model=" +
                                                     ws.file("base/spm.model") + " --set train.max_steps=3"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto from_file = losses(ws.file("from-file"));
  for (int64_t step = 1; step <= 3; ++step) CHECK(from_file[step] == tuned[step]);
}

TEST_CASE("bad input to --init: each a one-line error, exit 2", "[train][init][bad-input]") {
  Workspace ws;
  REQUIRE(test::run(ws.command(ws.file("base"), "--set train.max_steps=2")).exit_code == 0);
  auto r = test::run(ws.command(ws.file("a"), "--init " + ws.file("nowhere")));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("nowhere") && Catch::Contains("no such file"));
  CHECK_FALSE(fs::exists(ws.file("a")));
  r = test::run(ws.command(ws.file("b"), "--init " + ws.file("base") + " --set model.d_ff=128"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("model.pt") && Catch::Contains("linear1.weight has shape"));
  CHECK(test::count_lines(r.err) == 1);
  r = test::run(ws.command(ws.file("c"), "--init " + ws.file("base/last/model.pt")));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("set data.spm_model"));
  r = test::run(ws.command(ws.file("base"), "--init " + ws.file("base") + " --resume"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--init") && Catch::Contains("--resume"));
}

TEST_CASE("training validates its last update, so a short run has a best checkpoint", "[train][valid]") {
  Workspace ws;
  // valid_every is 5: without the final validation a 3-step run has no `best`
  // (scripts/demo.sh with DEMO_STEPS=150 failed that way).
  auto r = test::run(ws.command(ws.file("short"), "--set train.max_steps=3"));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::read_symlink(ws.file("short/best")).filename() ==
        fs::read_symlink(ws.file("short/last")).filename());
  CHECK(read_checkpoint_meta(resolve_checkpoint(ws.file("short/best"))).state.step == 3);
  // 7 steps: validations at 5 and at 7, none twice.
  r = test::run(ws.command(ws.file("seven"), "--set train.max_steps=7"));
  REQUIRE(r.exit_code == 0);
  std::vector<int64_t> validated;
  std::istringstream in(test::read_file(ws.file("seven/metrics.jsonl")));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == "valid") validated.push_back(j["step"].get<int64_t>());
  }
  CHECK(validated == std::vector<int64_t>{5, 7});
  CHECK(fs::exists(ws.file("seven/best")));
}

TEST_CASE("the run names its build, BLAS and CPU in the log and metrics.jsonl", "[train][blas]") {
  Workspace ws;
  auto r = test::run(ws.command(ws.file("run"), "--set train.max_steps=2"));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const bool openblas = !aiayn::openblas_config().empty();
  const auto build = aiayn::build_info();
  CHECK_THAT(r.out, Catch::Contains("LibTorch " + build.libtorch + " (" + build.cxx + ")"));
  if (openblas) {
    CHECK_THAT(r.out, Catch::Contains("BLAS: OpenBLAS") && Catch::Contains(", kernel "));
  } else {
    CHECK_THAT(r.out, Catch::Contains("BLAS: " + build.blas));
  }
  std::istringstream in(test::read_file(ws.file("run/metrics.jsonl")));
  std::string first;
  std::getline(in, first);
  auto j = nlohmann::json::parse(first);
  CHECK(j["kind"] == "run");
  CHECK(j["blas_kernel"].get<std::string>().empty() == !openblas);
  CHECK(j["build"]["libtorch"] == build.libtorch);
  CHECK(j["build"]["cxx"] == build.cxx);
  CHECK(j["build"]["cuda"] == build.cuda_version);
  CHECK(j["build"]["nccl"] == build.nccl_loaded);
  CHECK(j["build"]["blas"] == build.blas);
  CHECK_THAT(j["cpu"].get<std::string>(), Catch::Contains("cores"));
  // plot_metrics.py draws the file, "run" record and all.
  auto plot = test::run(std::string("/usr/bin/python3 ") + AIAYN_SOURCE_DIR + "/tools/plot_metrics.py " +
                        ws.file("run/metrics.jsonl") + " " + ws.file("curve.png"));
  INFO(plot.err);
  CHECK(plot.exit_code == 0);
  const auto png = test::read_file(ws.file("curve.png"));
  CHECK(png.size() > 1000);
  CHECK(png.substr(0, 4) == "\x89PNG");
}

TEST_CASE("a checkpoint that meets a full disk: exit 1, last intact, resume exact", "[train][output]") {
  Workspace ws;
  auto whole = test::run(ws.command(ws.file("whole"), "--set train.max_steps=12"));
  REQUIRE(whole.exit_code == 0);
  // Room for the step-5 checkpoint and the logs, not for a second checkpoint
  // beside the first.
  std::uintmax_t checkpoint_bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(resolve_checkpoint(ws.file("whole")))) {
    if (e.is_regular_file()) checkpoint_bytes += e.file_size();
  }
  const int kib = static_cast<int>(checkpoint_bytes * 3 / 2 / 1024) + 64;
  const auto disk = ws.file("disk");
  fs::create_directories(disk);
  test::RunResult r;
  const bool ran =
      test::run_on_small_tmpfs(disk, kib,
                               ws.command(disk + "/run", "--set train.max_steps=12") +
                                   "\necho \"exit=$?\" >&2\ncp -r " + disk + "/run " + ws.file("copy"),
                               &r);
  if (!ran) {
    WARN("no tmpfs can be mounted here (neither root nor user namespaces): full-disk case not run");
    return;
  }
  INFO(r.out << r.err);
  CHECK_THAT(r.err, Catch::Contains("exit=1"));
  CHECK_THAT(r.err, Catch::Contains("aiayn-train: error: ") && Catch::Contains("No space left on device"));
  CHECK_THAT(r.err, !Catch::Contains("internal error"));
  const auto lost = losses(ws.file("copy"));
  REQUIRE(lost.count(10) == 1);  // step 10 ran; its checkpoint did not fit
  REQUIRE(read_checkpoint_meta(resolve_checkpoint(ws.file("copy"))).state.step == 5);
  auto resumed = test::run(ws.command(ws.file("copy"), "--set train.max_steps=12 --resume"));
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  auto a = losses(ws.file("whole")), b = losses(ws.file("copy"));
  CHECK(std::abs(b[10] - lost.at(10)) <= 1e-6);  // the lost step repeated
  for (int64_t step = 1; step <= 12; ++step) {
    INFO("step " << step);
    CHECK(std::abs(a[step] - b[step]) <= 1e-6);
  }
}

TEST_CASE("the K best-validated checkpoints are kept and averaged with --average best:K",
          "[train][average]") {
  Workspace ws;
  const auto save = ws.file("run");
  auto r = test::run(ws.command(save,
                                "--set train.max_steps=20 --set train.save_every=1000 "
                                "--set train.keep_last=1 --set train.keep_best=2 "
                                "--set train.valid_bleu=false"));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // The criterion of each validation, from metrics.jsonl: the loss (BLEU is
  // 0 throughout for a 20-step model, which would make every one a tie).
  std::vector<std::pair<double, int64_t>> validations;
  std::istringstream in(test::read_file(save + "/metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == "valid") validations.emplace_back(j["loss"].get<double>(), j["step"].get<int64_t>());
  }
  REQUIRE(validations.size() == 4);  // steps 5, 10, 15, 20
  auto ranked = validations;
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  });
  std::set<int64_t> best2 = {ranked[0].second, ranked[1].second}, expected = best2;
  expected.insert(20);  // keep_last 1
  // `best` is spared too (here it is the best of best2, unless a tie).
  expected.insert(read_checkpoint_meta(resolve_checkpoint(save + "/best")).state.step);
  std::set<int64_t> kept;
  for (const auto& e : fs::directory_iterator(save)) {
    const auto name = e.path().filename().string();
    if (name.rfind("checkpoint_", 0) == 0 && !e.is_symlink()) {
      const auto meta = read_checkpoint_meta(e.path().string());
      kept.insert(meta.state.step);
      for (const auto& [criterion, step] : validations) {
        if (step == meta.state.step) CHECK(meta.state.valid_criterion == Approx(criterion));
      }
    }
  }
  CHECK(kept == expected);
  auto avg = test::run(kTrain + " --config " + AIAYN_SOURCE_DIR + "/configs/tiny.json --save-dir " + save +
                       " --average best:2");
  INFO(avg.out << avg.err);
  REQUIRE(avg.exit_code == 0);
  auto from = nlohmann::json::parse(test::read_file(save + "/averaged/averaged_from.json"));
  std::set<int64_t> averaged;
  for (const auto& name : from) averaged.insert(std::stoll(name.get<std::string>().substr(11)));
  CHECK(averaged == best2);
  CHECK_THAT(avg.out, Catch::Contains("(best:2: checkpoint_"));
  auto last = test::run(kTrain + " --config " + AIAYN_SOURCE_DIR + "/configs/tiny.json --save-dir " + save +
                        " --average last:1");
  CHECK(last.exit_code == 0);
  CHECK(nlohmann::json::parse(test::read_file(save + "/averaged/averaged_from.json")).size() == 1);
  // Bad specifications, and best:K where nothing was validated.
  for (const char* spec : {"first:2", "best:0", "best:", "3x"}) {
    auto bad = test::run(kTrain + " --config " + AIAYN_SOURCE_DIR + "/configs/tiny.json --save-dir " + save +
                         " --average " + spec);
    INFO(spec);
    CHECK(bad.exit_code == 2);
    CHECK_THAT(bad.err, Catch::Contains("--average " + std::string(spec) + ": give last:K or best:K"));
  }
  auto plain = test::run(
      ws.command(ws.file("plain"), "--set train.max_steps=3 --set data.valid_src= --set data.valid_tgt="));
  REQUIRE(plain.exit_code == 0);
  auto none = test::run(kTrain + " --config " + AIAYN_SOURCE_DIR + "/configs/tiny.json --save-dir " +
                        ws.file("plain") + " --average best:2");
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.err, Catch::Contains("holds no validated checkpoint"));
}

TEST_CASE("with ema_decay, checkpoints hold the average and the raw weights, and resume is exact",
          "[train][ema]") {
  Workspace ws;
  // Resumed halfway: both weight files agree bit for bit with the uninterrupted run.
  expect_exact_resume(ws, "--set train.ema_decay=0.9", {"model.pt", "raw_model.pt"});
  CHECK_THAT(test::read_file(ws.file("whole/train.log")),
             Catch::Contains("weights: moving average, decay 0.9"));
  const auto last = resolve_checkpoint(ws.file("whole"));
  auto meta = nlohmann::json::parse(test::read_file(last + "/meta.json"));
  CHECK(meta["weights"] == "ema");
  CHECK(meta["ema_decay"].get<double>() == Approx(0.9));
  // An average of such checkpoints says what it averaged, and has no raw weights.
  auto averaged = test::run(kTrain + " --config " + AIAYN_SOURCE_DIR + "/configs/tiny.json --save-dir " +
                            ws.file("whole") + " --average last:2");
  REQUIRE(averaged.exit_code == 0);
  auto averaged_meta = nlohmann::json::parse(test::read_file(ws.file("whole/averaged/meta.json")));
  CHECK(averaged_meta["weights"] == "averaged");
  CHECK(averaged_meta["averaged_weights"] == "ema");
  CHECK_FALSE(fs::exists(ws.file("whole/averaged/raw_model.pt")));
  // The average is not the raw weights (--raw-weights reads those).
  auto average = load_model(last, torch::kCPU), raw = load_model(last, torch::kCPU, /*raw=*/true);
  double differ = 0;
  for (const auto& p : average->named_parameters()) {
    differ = std::max(differ, (p.value() - raw->named_parameters()[p.key()]).abs().max().item<double>());
  }
  CHECK(differ > 1e-4);
  // The average never feeds back into training: the raw weights are those of
  // the same run without EMA. What validation scored is the average.
  auto plain = test::run(ws.command(ws.file("plain"), "--set train.max_steps=12"));
  REQUIRE(plain.exit_code == 0);
  CHECK(test::read_file(ws.file("whole/last/raw_model.pt")) ==
        test::read_file(ws.file("plain/last/model.pt")));
  auto valid_loss = [](const std::string& save, int64_t step) {
    std::istringstream in(test::read_file(save + "/metrics.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      if (j["kind"] == "valid" && j["step"] == step) return j["loss"].get<double>();
    }
    return std::nan("");
  };
  const double with_ema = valid_loss(ws.file("whole"), 10), without = valid_loss(ws.file("plain"), 10);
  REQUIRE(std::isfinite(with_ema));
  REQUIRE(std::isfinite(without));
  CHECK(std::abs(with_ema - without) > 1e-4);
  // A run without EMA has no raw_model.pt: asking for raw weights says so.
  CHECK_FALSE(fs::exists(resolve_checkpoint(ws.file("plain")) + "/raw_model.pt"));
  CHECK_THROWS_WITH(load_model(resolve_checkpoint(ws.file("plain")), torch::kCPU, true),
                    Catch::Contains("raw_model.pt: missing") && Catch::Contains("without train.ema_decay"));
}

TEST_CASE("the sweep runner trains each variant and tabulates updates, ppl and BLEU", "[train][sweep]") {
  Workspace ws;
  const std::string sweep = std::string(AIAYN_SOURCE_DIR) + "/scripts/sweep.sh";
  test::write_file(ws.file("sweep.txt"),
                   "# two variants\nbase\nwarm5  --set train.warmup_steps=5  # shorter\n\n");
  const std::string env = "AIAYN_TRAIN=" + kTrain + " ";
  const std::string tail = " -- " + ws.arguments("--set train.max_steps=10");
  auto r = test::run(env + "bash " + sweep + " " + ws.file("sweep.txt") + " " + ws.file("out") + tail);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto table = test::read_file(ws.file("out/sweep.md"));
  // 10 updates end inside base's 50-update warm-up: not ranked; warm5 ends past its own.
  CHECK_THAT(table,
             Catch::Contains("| – | base | (base) | finished | 10 | 0.2× |") &&
                 Catch::Contains("| 1 | warm5 | `--set train.warmup_steps=5` | finished | 10 | 2.0× |") &&
                 Catch::Contains("inside the warm-up"));
  CHECK(test::count_lines(table) == 6);  // header, rule, two rows, a blank line, the note
  CHECK(test::read_file(ws.file("out/sweep.png")).substr(0, 4) == "\x89PNG");
  // The two differ only in warm-up: their validation losses differ.
  CHECK(test::read_file(ws.file("out/base/metrics.jsonl")) !=
        test::read_file(ws.file("out/warm5/metrics.jsonl")));
  // Run again: finished variants are kept, not retrained.
  const auto before = test::read_file(ws.file("out/base/metrics.jsonl"));
  r = test::run(env + "bash " + sweep + " " + ws.file("sweep.txt") + " " + ws.file("out") + tail);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("== base: already trained"));
  CHECK(test::read_file(ws.file("out/base/metrics.jsonl")) == before);
  // A variant that fails is marked and the sweep goes on.
  test::write_file(ws.file("bad.txt"), "broken --set train.nonsense=1\nok\n");
  r = test::run(env + "bash " + sweep + " " + ws.file("bad.txt") + " " + ws.file("out2") + tail);
  CHECK(r.exit_code == 0);
  CHECK_THAT(test::read_file(ws.file("out2/sweep.md")),
             Catch::Contains("| broken |") && Catch::Contains("failed (exit 2)") &&
                 Catch::Contains("| ok | (base) | finished | 10 |"));
  // SEEDS=2: each variant twice, other seeds, and its mean and spread.
  test::write_file(ws.file("seeds.txt"), "warm5 --set train.warmup_steps=5\n");
  r = test::run("SEEDS=2 " + env + "bash " + sweep + " " + ws.file("seeds.txt") + " " + ws.file("out3") +
                tail);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(test::read_file(ws.file("out3/warm5.seed2/arguments")), Catch::Contains("--set train.seed=2"));
  CHECK(test::read_file(ws.file("out3/warm5.seed1/metrics.jsonl")) !=
        test::read_file(ws.file("out3/warm5.seed2/metrics.jsonl")));
  CHECK_THAT(test::read_file(ws.file("out3/sweep.md")),
             Catch::Contains("| warm5.seed1 |") && Catch::Contains("| warm5 | 2 | "));
  r = test::run("SEEDS=x " + env + "bash " + sweep + " " + ws.file("seeds.txt") + " " + ws.file("out4") +
                tail);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("SEEDS=x: use a whole number from 1"));
  CHECK_FALSE(fs::exists(ws.file("out4")));
}

TEST_CASE("sweep files with bad lines are refused before anything trains", "[train][sweep][bad-input]") {
  Workspace ws;
  const std::string sweep =
      "AIAYN_TRAIN=" + kTrain + " bash " + std::string(AIAYN_SOURCE_DIR) + "/scripts/sweep.sh ";
  const std::string tail = " -- " + ws.arguments();
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"a\nb --set x=1\na\n", "sweep.txt:3: variant 'a' appears twice"},
           {"ok\nno/slash\n", "sweep.txt:2: variant name 'no/slash'"},
           {"# nothing\n\n", "sweep.txt: no variants"}}) {
    INFO(text);
    test::write_file(ws.file("sweep.txt"), text);
    auto r = test::run(sweep + ws.file("sweep.txt") + " " + ws.file("out") + tail);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(message));
    CHECK(test::count_lines(r.err) == 1);
    CHECK_FALSE(fs::exists(ws.file("out")));
  }
  auto r = test::run(sweep + ws.file("missing.txt") + " " + ws.file("out") + tail);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("missing.txt: no such file"));
  r = test::run(sweep + ws.file("sweep.txt") + " " + ws.file("out") + " --config x");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("usage: scripts/sweep.sh"));
}

TEST_CASE("the Multi30k recipe's tools: Moses text, both settings' scores, the seeds' spread, bad input",
          "[train][recipe][bad-input]") {
  const std::string source = AIAYN_SOURCE_DIR, python = source + "/.venv-tools/bin/python";
  if (!fs::exists(python)) {
    WARN("no .venv-tools (bash scripts/setup.sh makes it): the recipe's tools not tested");
    return;
  }
  test::TempDir dir;
  fs::create_directories(dir.file("raw"));
  test::write_file(dir.file("raw/train.en"),
                   "A dog's ball is \"red\".\nTwo MEN \xE2\x80\x94 on a bike\xE2\x80\xA6\n");
  const std::string moses = python + " " + source + "/tools/moses_text.py ";
  auto r = test::run(moses + "prepare " + dir.file("raw") + " " + dir.file("lit") + " en");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // task1-tokenize.sh's order: lowercase, normalise (a final period moves inside quotes
  // in English), then tokenize with Moses' escapes.
  CHECK(test::read_file(dir.file("lit/train.en")) ==
        "a dog &apos;s ball is &quot; red . &quot;\ntwo men - on a bike ...\n");

  const std::string scores = python + " " + source + "/tools/recipe_scores.py ";
  fs::create_directories(dir.file("run/seed1"));
  fs::create_directories(dir.file("run/seed2"));
  test::write_file(dir.file("ref.de"), "Ein Hund läuft im Park.\nZwei Männer fahren Rad.\n");
  test::write_file(dir.file("hyp.de"), "ein Hund rennt im Park .\nZwei Männer fahren Rad.\n");
  r = test::run(scores + "score " + dir.file("ref.de") + " " + dir.file("ref.de") +
                " --setting ours --lang de --label greedy --tsv " + dir.file("run/seed1/scores.tsv"));
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("greedy: bleu = 100.00  nrefs:1|case:mixed|eff:no|tok:13a") &&
                        Catch::Contains("greedy: bleu_lc = 100.00") &&
                        Catch::Contains("greedy: chrf2 = 100.00") &&
                        Catch::Contains("greedy: bleu_tok = 100.00  nrefs:1|case:lc|eff:no|tok:none"));
  r = test::run(scores + "score " + dir.file("hyp.de") + " " + dir.file("ref.de") +
                " --setting ours --lang de --label greedy --tsv " + dir.file("run/seed2/scores.tsv"));
  REQUIRE(r.exit_code == 0);
  // Lowercasing and Moses tokenization forgive the case and the detached period.
  auto value = [&](const std::string& metric) {
    auto at = r.out.find("greedy: " + metric + " = ");
    REQUIRE(at != std::string::npos);
    return std::stod(r.out.substr(at + metric.size() + 11));
  };
  CHECK(value("bleu") < value("bleu_lc"));
  CHECK(value("bleu_lc") <= value("bleu_tok"));
  r = test::run(scores + "summary " + dir.file("run"));
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("over 2 seeds (seed1, seed2)") && Catch::Contains("greedy bleu: ") &&
                        Catch::Contains(" +- "));

  // Bad input: one line, exit 2, naming the file.
  for (const auto& [command, message] : std::vector<std::pair<std::string, std::string>>{
           {scores + "score " + dir.file("missing.de") + " " + dir.file("ref.de") +
                " --setting ours --lang de --label x --tsv " + dir.file("x.tsv"),
            "missing.de: no such file"},
           {scores + "score " + dir.file("raw/train.en") + " " + dir.file("ref.de") + "x" +
                " --setting literature --lang de --label x --tsv " + dir.file("x.tsv"),
            "ref.dex: no such file"},
           {scores + "summary " + dir.file("raw"), "no seed*/scores.tsv"},
           {moses + "prepare " + dir.file("nowhere") + " " + dir.file("out") + " en",
            "nowhere: no such directory"},
           {moses + "prepare " + dir.file("raw") + " " + dir.file("out") + " fr", "no *.fr files"}}) {
    INFO(command);
    r = test::run(command);
    CHECK(r.exit_code == 2);
    CHECK(test::count_lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains(message));
  }
  test::write_file(dir.file("short.de"), "Ein Hund.\n");
  r = test::run(scores + "score " + dir.file("short.de") + " " + dir.file("ref.de") +
                " --setting ours --lang de --label x --tsv " + dir.file("x.tsv"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("short.de: 1 lines, but ") && Catch::Contains("ref.de has 2"));
  CHECK_FALSE(fs::exists(dir.file("x.tsv")));

  // The recipe's own settings are checked before anything trains or is written.
  const std::string recipe = "bash " + source + "/scripts/multi30k.sh ";
  for (const auto& [env, message] : std::vector<std::pair<std::string, std::string>>{
           {"SETTING=moses", "SETTING=moses: use ours or literature"},
           {"SEEDS=0", "SEEDS=0: use a whole number from 1"},
           {"PRECISION=fp16", "PRECISION=fp16: use auto, fp32 or bf16"}}) {
    r = test::run(env + " " + recipe + dir.file("raw") + " en de " + dir.file("recipe"));
    CHECK(r.exit_code == 2);
    CHECK(test::count_lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains(message));
  }
  r = test::run(recipe + dir.file("raw") + " en de " + dir.file("recipe"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("missing " + dir.file("raw") + "/train.de"));
  CHECK_FALSE(fs::exists(dir.file("recipe")));
}

TEST_CASE("BPE-dropout changes the training pairs each epoch, and resume stays exact",
          "[train][bpe-dropout]") {
  Workspace ws;
  // Resumed mid-run (the run crosses epochs: 300 pairs, 300-token batches).
  expect_exact_resume(ws, "--set data.bpe_dropout=0.2 --set data.vocab_size=48");
  CHECK_THAT(test::read_file(ws.file("whole/train.log")),
             Catch::Contains("BPE-dropout p=0.2, drawn afresh each epoch"));
  auto plain = test::run(ws.command(ws.file("plain"), "--set data.vocab_size=48 --set train.max_steps=12"));
  REQUIRE(plain.exit_code == 0);
  // Same batches, other segmentations: the losses part from the first update.
  auto a = losses(ws.file("whole")), b = losses(ws.file("plain"));
  REQUIRE(a.size() == 12);
  CHECK(std::abs(a[1] - b[1]) > 1e-4);
  // A unigram model cannot be resampled by merges: refused by the config.
  auto r = test::run(ws.command(ws.file("uni"), "--set data.bpe_dropout=0.1 --set data.spm_type=unigram"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("\"data.bpe_dropout\"") && Catch::Contains("BPE model"));
  r = test::run(ws.command(ws.file("uni"), "--set data.bpe_dropout=1"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("\"data.bpe_dropout\""));
}

TEST_CASE("R-Drop trains, resumes exactly, and is refused for a model without dropout", "[train][rdrop]") {
  Workspace ws;
  expect_exact_resume(ws, "--set train.rdrop_alpha=2");  // the workspace's model.p_drop is 0.1
  auto plain = test::run(ws.command(ws.file("plain"), "--set train.max_steps=12"));
  REQUIRE(plain.exit_code == 0);
  // The same batches and seeds: the KL term moves the loss from the first update on.
  auto a = losses(ws.file("whole")), b = losses(ws.file("plain"));
  REQUIRE(a.size() == 12);
  CHECK(std::abs(a[1] - b[1]) > 1e-4);
  for (const auto& [step, loss] : a) CHECK(std::isfinite(loss));
  auto r = test::run(ws.command(ws.file("nodrop"),
                                "--set train.rdrop_alpha=1 --set model.p_drop=0 --set train.max_steps=2"));
  CHECK(r.exit_code == 2);
  CHECK(test::count_lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains("\"train.rdrop_alpha\"") && Catch::Contains("no dropout"));
  CHECK_FALSE(fs::exists(ws.file("nodrop/last")));
}

TEST_CASE("separate source and target vocabularies: two models, untied embeddings, translate",
          "[train][vocab]") {
  Workspace ws;
  const std::string separate = "--set data.joint_vocabulary=false --set model.share_embeddings=false ";
  auto r = test::run(ws.command(ws.file("run"), separate + "--set train.max_steps=6"));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("training two bpe SentencePiece models"));
  const auto last = resolve_checkpoint(ws.file("run"));
  REQUIRE(fs::exists(last + "/spm.src.model"));
  auto meta = read_checkpoint_meta(last);
  CHECK(meta.vocabulary.src_tokenizer_hash != 0);
  CHECK(meta.vocabulary.src_vocab_size == 40);
  auto tokenizers = load_checkpoint_tokenizers(last);
  CHECK_FALSE(tokenizers.joint());
  auto config = read_checkpoint_config(last);
  CHECK_FALSE(config.model.share_embeddings);
  auto model = load_model(last, torch::kCPU);
  CHECK(model->parameter_count() == expected_parameter_count(config.model));
  // Two embedding matrices, each the size of its own vocabulary, and the
  // target one is what the output projection reuses.
  REQUIRE(model->tgt_embed.ptr() != model->src_embed.ptr());
  CHECK(model->src_embed->weight.sizes() ==
        torch::IntArrayRef({meta.vocabulary.src_vocab_size, config.model.d_model}));
  CHECK(model->tgt_embed->weight.sizes() ==
        torch::IntArrayRef({meta.vocabulary.vocab_size, config.model.d_model}));
  CHECK(config.model.src_vocab == meta.vocabulary.src_vocab_size);
  CHECK(config.model.tgt_vocab == meta.vocabulary.vocab_size);
  // Resume, averaging and translation read both models.
  r = test::run(ws.command(ws.file("run"), separate + "--set train.max_steps=8 --resume"));
  REQUIRE(r.exit_code == 0);
  r = test::run(kTrain + " --config " + AIAYN_SOURCE_DIR + "/configs/tiny.json --save-dir " + ws.file("run") +
                " --average last:2");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(ws.file("run/averaged/spm.src.model")));
  test::write_file(ws.file("in.txt"), "red cat sun\nblue dog\n");
  r = test::run(std::string(AIAYN_BIN_DIR) + "/aiayn-translate -c " + ws.file("run/averaged") + " -i " +
                ws.file("in.txt"));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(test::count_lines(r.out) == 2);
  // A checkpoint that lost its source model says so.
  fs::remove(last + "/spm.src.model");
  CHECK_THROWS_WITH(load_checkpoint_tokenizers(last), Catch::Contains("spm.src.model: missing"));
}

TEST_CASE("vocabulary settings that contradict each other: one-line errors naming the key",
          "[train][vocab][bad-input]") {
  Workspace ws;
  for (const auto& [extra, key] : std::vector<std::pair<std::string, std::string>>{
           {"--set data.joint_vocabulary=false", "\"model.share_embeddings\""},
           {"--set data.spm_src_model=x.model", "\"data.spm_src_model\""},
           {"--set data.joint_vocabulary=false --set model.share_embeddings=false --set data.spm_model=x.model",
            "\"data.spm_src_model\""}}) {
    INFO(extra);
    auto r = test::run(ws.command(ws.file("run"), extra));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(key));
    CHECK(test::count_lines(r.err) == 1);
  }
}

TEST_CASE(
    "aiayn-train --record-batches lists each update's corpus lines, every line once an epoch, also across resume",
    "[train][record-batches]") {
  Workspace ws;
  auto whole = test::run(ws.command(ws.file("whole"), "--record-batches --set train.max_steps=24"));
  INFO(whole.out << whole.err);
  REQUIRE(whole.exit_code == 0);
  std::vector<nlohmann::json> records;
  {
    std::istringstream in(test::read_file(ws.file("whole/batches.jsonl")));
    for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  }
  REQUIRE(records.size() == 24);
  std::map<int64_t, std::multiset<int64_t>> lines_of_epoch;
  for (size_t i = 0; i < records.size(); ++i) {
    CHECK(records[i]["update"] == static_cast<int64_t>(i + 1));
    CHECK(records[i]["batch"] == 0);
    for (int64_t line : records[i]["lines"]) lines_of_epoch[records[i]["epoch"].get<int64_t>()].insert(line);
  }
  // 300 short pairs, 300 tokens a batch: 24 updates cross an epoch's end,
  // and the epoch that finished drew each of the 300 lines once.
  REQUIRE(lines_of_epoch.size() >= 2);
  const auto& first = lines_of_epoch.begin()->second;
  CHECK(first.size() == 300);
  CHECK(std::set<int64_t>(first.begin(), first.end()).size() == 300);
  CHECK(*first.begin() == 1);
  CHECK(*first.rbegin() == 300);
  // A resumed run appends where it left off: the same file as one run.
  REQUIRE(test::run(ws.command(ws.file("split"), "--record-batches --set train.max_steps=10")).exit_code ==
          0);
  REQUIRE(test::run(ws.command(ws.file("split"), "--record-batches --set train.max_steps=24 --resume"))
              .exit_code == 0);
  CHECK(test::read_file(ws.file("split/batches.jsonl")) == test::read_file(ws.file("whole/batches.jsonl")));
  // Without the flag, no file.
  REQUIRE(test::run(ws.command(ws.file("plain"), "--set train.max_steps=2")).exit_code == 0);
  CHECK_FALSE(fs::exists(ws.file("plain/batches.jsonl")));
}

namespace {

// A counting test double of the host's reads from the device, seen through
// LibTorch's op observer: .item() (aten::_local_scalar_dense) and .to() a
// CPU device. On a GPU each waits for the device to finish its queue.
class ReadBackCounter {
 public:
  ReadBackCounter() {
    handle_ = at::addGlobalCallback(
        at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          const std::string name = fn.name();
          bool read = name == "aten::_local_scalar_dense";
          if (name == "aten::to") {
            for (const auto& v : fn.inputs()) read = read || (v.isDevice() && v.toDevice().is_cpu());
          }
          if (read) {
            std::lock_guard<std::mutex> lock(mutex());
            std::string shapes;
            for (const auto& v : fn.inputs()) {
              if (v.isTensor()) shapes += " " + std::to_string(v.toTensor().dim()) + "-d";
            }
            names().push_back(name + shapes);
          }
          return nullptr;
        }).needsInputs(true));
  }
  ~ReadBackCounter() { at::removeCallback(handle_); }
  int64_t reads() const {
    std::lock_guard<std::mutex> lock(mutex());
    return static_cast<int64_t>(names().size());
  }
  // The reads from `first` on, for the failure message.
  std::string listed(int64_t first, int64_t end) const {
    std::lock_guard<std::mutex> lock(mutex());
    std::string out;
    for (int64_t i = first; i < end && i < static_cast<int64_t>(names().size()); ++i)
      out += names()[i] + "; ";
    return out;
  }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::string>& names() {
    static std::vector<std::string> n;
    return n;
  }
  at::CallbackHandle handle_;
};

}  // namespace

TEST_CASE("a training step reads one flag from the device and the sums once per log interval",
          "[train][stalls]") {
  Workspace ws;
  RunOptions o;
  o.save_dir = ws.file("run");
  o.threads = 2;
  o.config_path = Workspace::config();
  std::vector<int64_t> reads_at;  // the count when each update's batches are done
  ReadBackCounter counter;
  o.before_update = [&](int64_t, Tally&) { reads_at.push_back(counter.reads()); };
  const auto config = load_experiment_config(
      Workspace::config(), ws.overrides({"train.max_steps=9", "train.log_every=3", "train.valid_every=1000",
                                         "train.save_every=1000"}));
  const auto result = train(config, o);
  REQUIRE(result.steps == 9);
  REQUIRE(reads_at.size() == 9);
  // From one update's end to the next's: its flag, and at a log step (3,
  // 6) the interval's sums and gradient norm. The forward and backward
  // passes read nothing.
  for (size_t k = 1; k < reads_at.size(); ++k) {
    INFO("between updates " << k << " and " << k + 1 << ": " << counter.listed(reads_at[k - 1], reads_at[k]));
    CHECK(reads_at[k] - reads_at[k - 1] == (k % 3 == 0 ? 3 : 1));
  }
}

TEST_CASE(
    "train.precision: bf16 trains under autocast and fp16 keeps its loss scale across a resume "
    "and what cannot run is refused",
    "[train][precision][bad-input]") {
  Workspace ws;
  const auto bf16 =
      test::run(ws.command(ws.file("bf16"), "--set train.precision=bf16 --set train.max_steps=6"));
  INFO(bf16.err);
  REQUIRE(bf16.exit_code == 0);
  const auto log = test::read_file(ws.file("bf16/train.log"));
  CHECK_THAT(log, Catch::Contains(
                      "precision: bf16 matrix products under autocast; weights, Adam and the loss fp32"));
  const auto bf16_meta = read_checkpoint_meta(resolve_checkpoint(ws.file("bf16")));
  CHECK(bf16_meta.state.step == 6);
  CHECK(bf16_meta.state.loss_scale == 0);  // only fp16 scales the loss
  // Master weights stay fp32.
  Transformer model = load_model(resolve_checkpoint(ws.file("bf16")), torch::kCPU, false);
  for (const auto& p : model->parameters()) CHECK(p.scalar_type() == torch::kFloat32);

  const auto fp16 =
      test::run(ws.command(ws.file("fp16"), "--set train.precision=fp16 --set train.max_steps=4"));
  if (TORCH_VERSION_MAJOR < 2) {
    CHECK(fp16.exit_code == 2);
    CHECK_THAT(fp16.err, Catch::Contains("train.precision: fp16 on the CPU needs LibTorch 2.x"));
    CHECK(test::count_lines(fp16.err) == 1);
    CHECK(!fs::exists(ws.file("fp16/last")));
  } else {
    INFO(fp16.err);
    REQUIRE(fp16.exit_code == 0);
    auto meta = read_checkpoint_meta(resolve_checkpoint(ws.file("fp16")));
    CHECK(meta.state.loss_scale > 0);
    // Resumed, the scale goes on from the checkpoint's count of good updates.
    const auto good = meta.state.loss_scale_good_updates;
    const auto skipped = meta.state.skipped_updates;
    const auto resumed =
        test::run(ws.command(ws.file("fp16"), "--resume --set train.precision=fp16 --set train.max_steps=6"));
    REQUIRE(resumed.exit_code == 0);
    meta = read_checkpoint_meta(resolve_checkpoint(ws.file("fp16")));
    CHECK(meta.state.step == 6);
    // Two more good updates, unless one overflowed (which restarts the count).
    if (meta.state.skipped_updates == skipped) CHECK(meta.state.loss_scale_good_updates == good + 2);
  }
  const auto unknown = test::run(ws.command(ws.file("fp8"), "--set train.precision=fp8"));
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.err, Catch::Contains("train.precision"));
  CHECK(test::count_lines(unknown.err) == 1);
}

// With AIAYN_TEST_DEVICE=cuda (scripts/gpu_check.sh) the same run on the
// GPU; unset, a second CPU run, which must then match exactly.
TEST_CASE("training on AIAYN_TEST_DEVICE follows training on the CPU", "[device][train]") {
  Workspace ws;
  auto losses_on = [&](const torch::Device& device, const std::string& name) {
    RunOptions o;
    o.save_dir = ws.file(name);
    o.threads = 2;
    o.config_path = Workspace::config();
    o.device = device;
    // No dropout: its draws differ between devices.
    train(load_experiment_config(Workspace::config(),
                                 ws.overrides({"train.max_steps=5", "model.p_drop=0",
                                               "train.valid_every=1000", "train.save_every=1000"})),
          o);
    std::vector<double> losses;
    std::ifstream in(ws.file(name + "/metrics.jsonl"));
    for (std::string line; std::getline(in, line);) {
      const auto record = nlohmann::json::parse(line);
      if (record["kind"] == "train") losses.push_back(record["loss"].get<double>());
      if (record["kind"] == "valid") losses.push_back(record["loss"].get<double>());
    }
    return losses;
  };
  const auto cpu = losses_on(torch::kCPU, "cpu"), other = losses_on(test::test_device(), "other");
  REQUIRE(cpu.size() == 6);  // five updates and the final validation
  REQUIRE(other.size() == cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    INFO("record " << i);
    CHECK(other[i] == Approx(cpu[i]).epsilon(test::test_device().is_cpu() ? 0.0 : 1e-3));
  }
}
