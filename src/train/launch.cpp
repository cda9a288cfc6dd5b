// The convenience launcher of src/train/distributed.h: N local ranks without torchrun.
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

int spawn_local_workers(int nproc, char** argv) {
  if (nproc < 1) throw InputError("--nproc must be >= 1, got " + std::to_string(nproc));
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> pids;
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("--nproc: fork failed");
    if (pid == 0) {
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", port.c_str(), 1);
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
        std::fprintf(stderr, "aiayn-train: rank %zu (pid %d) %s\n", rank, static_cast<int>(pid),
                     describe_status(status).c_str());
      }
    }
  }
  return first_failure;
}

}  // namespace aiayn
