// Helpers of the data-parallel tests: training commands run as ranks, their
// weights, and waiting for them with a deadline.
#pragma once
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "src/decode/checkpoint_reader.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"

namespace aiayn::test {

// The workspace's training command with one intra-op thread per process, so
// that both sides of a comparison do the same arithmetic.
inline std::string one_thread(const Workspace& ws, const std::string& save, const std::string& extra) {
  auto cmd = ws.command(save, extra);
  cmd.replace(cmd.find("--threads 2"), 11, "--threads 1");
  return cmd;
}

inline std::map<std::string, torch::Tensor> weights(const std::string& save_dir) {
  auto model = load_model(resolve_checkpoint(save_dir), torch::kCPU);
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

// waitpid with a deadline; kills the process and returns -1 when it passes.
inline int wait_for(pid_t pid, std::chrono::seconds limit) {
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
inline bool training_under_way(const std::string& save) {
  return std::filesystem::exists(save + "/last/meta.json") &&
         test::count_lines(test::read_file(save + "/metrics.jsonl")) >= 4;
}

// The largest difference between two runs' parameters of the same name.
inline double worst_difference(const std::map<std::string, torch::Tensor>& a,
                               const std::map<std::string, torch::Tensor>& b) {
  double worst = a.size() == b.size() ? 0 : 1e9;
  for (const auto& [name, w] : a) {
    auto other = b.find(name);
    worst = std::max(worst, other == b.end() ? 1e9 : max_abs_diff(w, other->second));
  }
  return worst;
}

}  // namespace aiayn::test
