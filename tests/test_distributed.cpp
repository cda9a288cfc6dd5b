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

#include "src/common/error.h"
#include "src/decode/checkpoint_reader.h"
#include "src/train/distributed.h"
#include "src/train/training_state.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"

using namespace aiayn;
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

// The workspace's training command with one intra-op thread per process, so
// that both sides of a comparison do the same arithmetic.
std::string one_thread(const Workspace& ws, const std::string& save, const std::string& extra) {
  auto cmd = ws.command(save, extra);
  cmd.replace(cmd.find("--threads 2"), 11, "--threads 1");
  return cmd;
}

std::map<std::string, torch::Tensor> weights(const std::string& save_dir) {
  auto model = load_model(resolve_checkpoint(save_dir), torch::kCPU);
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

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

// waitpid with a deadline; kills the process and returns -1 when it passes.
int wait_for(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A first checkpoint is written, so that a lost rank has something to
// resume from. (Counting metrics.jsonl lines alone raced with the first
// checkpoint on the slower Prescott kernel: the file also holds the "run"
// record now.)
bool training_under_way(const std::string& save) {
  return std::filesystem::exists(save + "/last/meta.json") &&
         test::count_lines(test::read_file(save + "/metrics.jsonl")) >= 4;
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
