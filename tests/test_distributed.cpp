// Data-parallel training over c10d/Gloo on 127.0.0.1: the torchrun variables,
// equivalence with accumulation in one process, and a lost rank.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "src/common/build_info.h"
#include "src/common/error.h"
#include "src/decode/checkpoint_reader.h"
#include "src/train/distributed.h"
#include "src/train/rank_agreement.h"
#include "src/train/training_state.h"
#include "tests/rank_process.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"

using namespace aiayn;
using test::training_under_way;
using test::wait_for;
using test::weights;
using test::Workspace;

namespace {

// Sets environment variables for one scope, restoring the old values.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (auto [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    for (auto& [name, old] : saved_) {
      if (old)
        setenv(name.c_str(), old->c_str(), 1);
      else
        unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

int free_port() {
  // The launcher's way, through a throwaway listening socket, is not exported;
  // a port from the pid keeps parallel test processes apart.
  return 20000 + static_cast<int>(getpid() % 20000);
}

// Starts one rank of a two-rank job in the background (stdout/stderr to files).
pid_t start_rank(const Workspace& ws, const std::string& save, int rank, int port, const std::string& extra) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("RANK", std::to_string(rank).c_str(), 1);
    setenv("WORLD_SIZE", "2", 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    std::string cmd = one_thread(ws, save, extra) + " > " + ws.file("out" + std::to_string(rank)) + " 2> " +
                      ws.file("err" + std::to_string(rank));
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

}  // namespace

TEST_CASE("torchrun's environment variables are read and checked", "[distributed]") {
  {
    ScopedEnv env({{"RANK", "1"},
                   {"WORLD_SIZE", "2"},
                   {"LOCAL_RANK", "1"},
                   {"MASTER_ADDR", "127.0.0.1"},
                   {"MASTER_PORT", "29555"}});
    auto o = distributed_from_environment();
    CHECK(o.rank == 1);
    CHECK(o.world_size == 2);
    CHECK(o.local_rank == 1);
    CHECK(o.master_port == 29555);
    CHECK(o.enabled());
  }
  auto message_of = [](std::initializer_list<std::pair<const char*, const char*>> vars) {
    ScopedEnv env(vars);
    try {
      distributed_from_environment();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message_of({{"RANK", "one"}, {"WORLD_SIZE", "2"}}), Catch::Contains("RANK=\"one\""));
  CHECK_THAT(message_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), Catch::Contains("below WORLD_SIZE"));
  CHECK_THAT(message_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}),
             Catch::Contains("MASTER_PORT"));
  CHECK_THAT(message_of({{"RANK", "0"}, {"WORLD_SIZE", "0"}}), Catch::Contains("WORLD_SIZE"));
}

TEST_CASE("aiayn-train rejects a malformed RANK with exit code 2", "[distributed]") {
  Workspace ws;
  auto r = test::run("RANK=x WORLD_SIZE=2 " + ws.command(ws.file("run"), "--set train.max_steps=2"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("RANK=\"x\""));
  CHECK(!std::filesystem::exists(ws.file("run/last")));
}

TEST_CASE("two ranks reach the parameters of one process accumulating two batches",
          "[distributed][equivalence]") {
  REQUIRE(distributed_available());
  Workspace ws;
  auto single =
      test::run(one_thread(ws, ws.file("single"), "--set train.max_steps=20 --set train.update_freq=2"));
  INFO(single.err);
  REQUIRE(single.exit_code == 0);
  auto pair = test::run(one_thread(ws, ws.file("pair"), "--set train.max_steps=20 --nproc 2"));
  INFO(pair.out << pair.err);
  REQUIRE(pair.exit_code == 0);
  CHECK_THAT(pair.out, Catch::Contains("data-parallel over 2 ranks"));
  // Rank 0 alone writes: one log line per step, not two.
  CHECK(test::count_lines(test::read_file(ws.file("pair/metrics.jsonl"))) ==
        test::count_lines(test::read_file(ws.file("single/metrics.jsonl"))));
  auto a = weights(ws.file("single")), b = weights(ws.file("pair"));
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (const auto& [name, w] : a) {
    REQUIRE(b.count(name) == 1);
    worst = std::max(worst, test::max_abs_diff(w, b[name]));
  }
  INFO("max abs parameter difference after 20 steps: " << worst);
  CHECK(worst <= 1e-5);
  // The updates did move the weights: the comparison is not vacuous.
  auto init_dir = ws.file("single");
  CHECK(read_checkpoint_meta(resolve_checkpoint(init_dir)).state.step == 20);
}

TEST_CASE("a lost rank stops the survivor with an error naming it", "[distributed][fault]") {
  REQUIRE(distributed_available());
  Workspace ws;
  const std::string save = ws.file("run");
  const int port = free_port();
  // Long enough to be killed mid-run; a short timeout for the hung case.
  const std::string extra = "--set train.max_steps=100000 --set train.save_every=3 --dist-timeout 5";
  pid_t rank0 = start_rank(ws, save, 0, port, extra);
  pid_t rank1 = start_rank(ws, save, 1, port, extra);
  for (int i = 0; i < 1200 && !training_under_way(save); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(training_under_way(save));

  SECTION("killed") { kill(rank1, SIGKILL); }
  SECTION("hung") { kill(rank1, SIGSTOP); }

  const int code = wait_for(rank0, std::chrono::seconds(60));
  kill(rank1, SIGKILL);
  waitpid(rank1, nullptr, 0);
  const auto err = test::read_file(ws.file("err0"));
  INFO(err);
  CHECK(code != 0);
  CHECK(code != -1);  // it did stop by itself
  CHECK_THAT(err, Catch::Contains("lost rank 1"));
  // The last checkpoint is intact and one process can continue it.
  auto step = read_checkpoint_meta(resolve_checkpoint(save)).state.step;
  REQUIRE(step > 0);
  auto resumed =
      test::run(one_thread(ws, save, "--resume --set train.max_steps=" + std::to_string(step + 2)));
  INFO(resumed.err);
  CHECK(resumed.exit_code == 0);
}

TEST_CASE("Slurm's host lists give their first host", "[distributed][launcher]") {
  CHECK(first_host_of_nodelist("gpu[07-09,12],cpu1", "SLURM_NODELIST") == "gpu07");
  CHECK(first_host_of_nodelist("node1,node2", "SLURM_NODELIST") == "node1");
  CHECK(first_host_of_nodelist("rack[2-3]-n[001-004]", "SLURM_NODELIST") == "rack2-n001");
  CHECK(first_host_of_nodelist("login", "SLURM_NODELIST") == "login");
  for (const char* bad : {"gpu[01-02", "gpu]01[", "", "[]", "gpu[[1]]"}) {
    INFO(bad);
    CHECK_THROWS_WITH(first_host_of_nodelist(bad, "SLURM_JOB_NODELIST"),
                      Catch::Contains("SLURM_JOB_NODELIST"));
  }
}

TEST_CASE("an srun job step's variables place the rank where torchrun's are absent",
          "[distributed][launcher]") {
  {
    ScopedEnv env({{"SLURM_PROCID", "3"},
                   {"SLURM_NTASKS", "4"},
                   {"SLURM_LOCALID", "1"},
                   {"SLURM_STEP_ID", "0"},
                   {"SLURM_TASKS_PER_NODE", "2(x2)"},
                   {"SLURM_STEP_NODELIST", "gpu[07-08]"}});
    auto o = distributed_from_environment();
    CHECK(o.rank == 3);
    CHECK(o.world_size == 4);
    CHECK(o.local_rank == 1);
    CHECK(o.local_world_size == 2);
    CHECK(o.master_addr == "gpu07");
  }
  {
    // torchrun's, where both are set, win; MASTER_ADDR over the host list.
    ScopedEnv env({{"SLURM_PROCID", "3"},
                   {"SLURM_NTASKS", "4"},
                   {"SLURM_STEP_ID", "0"},
                   {"SLURM_STEP_NODELIST", "gpu[07-08]"},
                   {"RANK", "1"},
                   {"WORLD_SIZE", "2"},
                   {"MASTER_ADDR", "10.1.2.3"}});
    auto o = distributed_from_environment();
    CHECK(o.rank == 1);
    CHECK(o.world_size == 2);
    CHECK(o.master_addr == "10.1.2.3");
  }
  {
    // A batch script itself (no job step) is one process, whatever it asked for.
    ScopedEnv env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_NODELIST", "gpu[07-08]"}});
    unsetenv("SLURM_STEP_ID");
    CHECK(distributed_from_environment().world_size == 1);
  }
  ScopedEnv env({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}, {"SLURM_STEP_ID", "0"}});
  CHECK_THROWS_WITH(distributed_from_environment(), Catch::Contains("SLURM_PROCID=4"));
}

TEST_CASE("the multi-host launcher refuses a plan that cannot describe a job", "[distributed][launcher]") {
  Workspace ws;
  auto refused = [&](const std::string& options, const std::string& named) {
    auto r = test::run(ws.command(ws.file("run"), options));
    INFO(options << "\n" << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(named));
    CHECK(!std::filesystem::exists(ws.file("run")));
  };
  refused("--nnodes 2 --node-rank 0 --master-port 29500", "--master-addr is required");
  refused("--nnodes 2 --node-rank 1 --master-addr 10.0.0.1", "--master-port is required");
  refused("--nnodes 2 --node-rank 2 --master-addr 10.0.0.1 --master-port 29500", "--node-rank 2");
  refused("--nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --master-port 70000", "--master-port 70000");
  // A wrong interface is named with the ones this host has.
  refused("--nproc 2 --dist-interface nosuch0 --set train.max_steps=2", "nosuch0");
}

TEST_CASE("fingerprints name the first key on which a rank differs", "[distributed][agreement]") {
  auto print = [](const std::string& train_src) {
    return nlohmann::json{{"train.max_tokens", {{"shown", "300"}, {"same", "300"}}},
                          {"data.train_src", {{"shown", train_src + " (contents 1)"}, {"same", "1"}}}};
  };
  CHECK(first_disagreement({print("/a/train.en"), print("/b/train.en")}).empty());
  auto other = print("/b/train.en");
  other["data.train_src"] = {{"shown", "/b/train.en (contents 2)"}, {"same", "2"}};
  const auto message = first_disagreement({print("/a/train.en"), print("/a/train.en"), other});
  CHECK_THAT(message, Catch::Contains("rank 2 disagrees with rank 0 on data.train_src"));
  CHECK_THAT(message, Catch::Contains("/b/train.en (contents 2) there"));
}

TEST_CASE("a rank with another config or data file is refused at start by every rank",
          "[distributed][agreement]") {
  REQUIRE(distributed_available());
  Workspace ws;
  const std::string save = ws.file("run");
  std::string rank1_extra, named;
  SECTION("another setting") {
    rank1_extra = "--set train.max_tokens=301";
    named = "train.max_tokens";
  }
  SECTION("another data file") {
    auto text = test::read_file(ws.file("train.src"));
    text[0] = text[0] == 'r' ? 'g' : 'r';
    test::write_file(ws.file("other.src"), text);
    rank1_extra = "--set data.train_src=" + ws.file("other.src");
    named = "data.train_src";
  }
  SECTION("another tokenizer") {
    test::write_file(ws.file("a.model"), "one model");
    test::write_file(ws.file("b.model"), "another model");
    rank1_extra = "--set data.spm_model=" + ws.file("b.model");
    named = "data.spm_model";
  }
  const std::string base = named == "data.spm_model" ? "--set data.spm_model=" + ws.file("a.model") : "";
  const int port = free_port();
  pid_t rank0 = start_rank(ws, save, 0, port, base + " --set train.max_steps=5 --dist-timeout 20");
  pid_t rank1 =
      start_rank(ws, save, 1, port, base + " --set train.max_steps=5 --dist-timeout 20 " + rank1_extra);
  const int code0 = wait_for(rank0, std::chrono::seconds(120)),
            code1 = wait_for(rank1, std::chrono::seconds(30));
  const auto err0 = test::read_file(ws.file("err0")), err1 = test::read_file(ws.file("err1"));
  INFO(err0 << "\n" << err1);
  CHECK(code0 == 2);
  CHECK(code1 == 2);
  CHECK_THAT(err0, Catch::Contains("rank 1 disagrees with rank 0 on " + named));
  CHECK_THAT(err1, Catch::Contains("rank 1 disagrees with rank 0 on " + named));
  // Refused before anything was written.
  CHECK(!std::filesystem::exists(save + "/last"));
  CHECK(!std::filesystem::exists(save + "/metrics.jsonl"));
}

TEST_CASE("torchrun of the same PyTorch starts the ranks and its agent hosts the store",
          "[distributed][launcher]") {
  REQUIRE(distributed_available());
  // Its store speaks its own version's protocol: only a torchrun of this
  // build's LibTorch can serve our ranks (the pip flavour's .venv-torch).
  const std::string libtorch = build_info().libtorch;
  std::string python;
  for (const std::string candidate :
       {std::string(AIAYN_SOURCE_DIR) + "/.venv-torch/bin/python", std::string("python3")}) {
    auto v = test::run(candidate +
                       " -c 'import torch.distributed.run, torch; print(torch.__version__.split(\"+\")[0])'");
    if (v.exit_code == 0 && v.out == libtorch + "\n") python = candidate;
  }
  if (python.empty()) {
    WARN("skipped: no Python here has torch " << libtorch << " with a torchrun that runs");
    return;
  }
  Workspace ws;
  const auto cmd = test::one_thread(ws, ws.file("run"), "--set train.max_steps=6");
  auto r = test::run(python + " -m torch.distributed.run --nnodes 1 --nproc-per-node 2 --master-port " +
                     std::to_string(free_port()) + " --no-python " + cmd);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("data-parallel over 2 ranks"));
  CHECK(read_checkpoint_meta(resolve_checkpoint(ws.file("run"))).state.step == 6);
}
