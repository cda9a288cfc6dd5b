// The launcher of src/train/distributed.h: one host's ranks without torchrun.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "src/common/error.h"
#include "src/train/distributed.h"

namespace aiayn {

namespace {

volatile sig_atomic_t g_forward_signal = 0;

void remember_signal(int sig) { g_forward_signal = sig; }

// A port the kernel says is free now (the usual race-prone but practical way).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("--nproc: cannot find a free TCP port on 127.0.0.1");
  }
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace

void check_launch_plan(const LaunchPlan& plan) {
  if (plan.nproc < 1) throw InputError("--nproc must be >= 1, got " + std::to_string(plan.nproc));
  if (plan.nnodes < 1) throw InputError("--nnodes must be >= 1, got " + std::to_string(plan.nnodes));
  if (plan.node_rank < 0 || plan.node_rank >= plan.nnodes) {
    throw InputError("--node-rank " + std::to_string(plan.node_rank) + ": must be 0 to --nnodes - 1 (" +
                     std::to_string(plan.nnodes - 1) + ")");
  }
  if (plan.master_port < 0 || plan.master_port > 65535) {
    throw InputError("--master-port " + std::to_string(plan.master_port) + ": not a TCP port (1-65535)");
  }
  if (plan.nnodes > 1 && plan.master_addr.empty()) {
    throw InputError("--nnodes " + std::to_string(plan.nnodes) +
                     ": --master-addr is required (the address of node 0, reachable from every node)");
  }
  if (plan.nnodes > 1 && plan.master_port == 0) {
    throw InputError("--nnodes " + std::to_string(plan.nnodes) +
                     ": --master-port is required (the same free port on node 0 for every node)");
  }
}

int spawn_workers(const LaunchPlan& plan, char** argv) {
  check_launch_plan(plan);
  const std::string addr = plan.master_addr.empty() ? "127.0.0.1" : plan.master_addr;
  const std::string port = std::to_string(plan.master_port != 0 ? plan.master_port : free_port());
  const int world = plan.nnodes * plan.nproc;
  std::vector<pid_t> pids;
  for (int local = 0; local < plan.nproc; ++local) {
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("--nproc: fork failed");
    if (pid == 0) {
      setenv("RANK", std::to_string(plan.node_rank * plan.nproc + local).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(plan.nproc).c_str(), 1);
      setenv("MASTER_ADDR", addr.c_str(), 1);
      setenv("MASTER_PORT", port.c_str(), 1);
      if (!plan.interface.empty()) setenv("GLOO_SOCKET_IFNAME", plan.interface.c_str(), 1);
      execv("/proc/self/exe", argv);
      std::perror("--nproc: exec failed");
      _exit(127);
    }
    pids.push_back(pid);
  }
  // The workers share the terminal's process group, so Ctrl-C reaches them
  // directly; a SIGTERM sent to the launcher alone is passed on.
  signal(SIGINT, remember_signal);
  signal(SIGTERM, remember_signal);
  int first_failure = 0;
  size_t running = pids.size();
  std::chrono::steady_clock::time_point failed_at;
  while (running > 0) {
    if (g_forward_signal != 0) {
      for (pid_t pid : pids) {
        if (pid > 0) kill(pid, g_forward_signal == SIGINT ? SIGINT : SIGTERM);
      }
      g_forward_signal = 0;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      // A failed rank makes the others fail at their next collective; give
      // them time to say so, then stop them.
      if (first_failure != 0 && std::chrono::steady_clock::now() - failed_at > std::chrono::seconds(30)) {
        for (pid_t p : pids) {
          if (p > 0) kill(p, SIGKILL);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    for (size_t rank = 0; rank < pids.size(); ++rank) {
      if (pids[rank] != pid) continue;
      pids[rank] = -1;
      --running;
      if (exit_code(status) != 0 && first_failure == 0) {
        first_failure = exit_code(status);
        failed_at = std::chrono::steady_clock::now();
        std::fprintf(stderr, "aiayn-train: rank %zu (pid %d) %s\n",
                     static_cast<size_t>(plan.node_rank * plan.nproc) + rank, static_cast<int>(pid),
                     describe_status(status).c_str());
      }
    }
  }
  return first_failure;
}

}  // namespace aiayn
