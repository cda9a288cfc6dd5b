// Helpers shared by the tests: temporary directories, files, subprocesses.
#pragma once
#include <torch/torch.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <chrono>
#include <thread>
#include <vector>

namespace aiayn::test {

// A fresh directory under $TMPDIR, removed when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "aiayn-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The device of the device-comparison tests: AIAYN_TEST_DEVICE (cpu, cuda,
// cuda:N; scripts/gpu_check.sh sets cuda), the CPU when unset. Those tests
// run the same work on the CPU and here and compare.
inline torch::Device test_device() {
  const char* name = std::getenv("AIAYN_TEST_DEVICE");
  return torch::Device(name != nullptr && *name != '\0' ? name : "cpu");
}

// Tolerance of those comparisons: float32 on another device sums in another
// order (and cuBLAS may pick other kernels).
inline double device_tolerance() { return test_device().is_cpu() ? 1e-6 : 2e-4; }

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a shell command, capturing stdout and stderr through files.
inline RunResult run(const std::string& command) {
  TempDir dir;
  std::string cmd = command + " > " + dir.file("out") + " 2> " + dir.file("err") + " < /dev/null";
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(dir.file("out"));
  r.err = read_file(dir.file("err"));
  return r;
}

// Whether a file whose name starts with `prefix` exists in `dir` and holds
// at least one byte.
inline bool nonempty_file_with_prefix(const std::string& dir, const std::string& prefix) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && e.is_regular_file() && e.file_size() > 0) return true;
  }
  return false;
}

// Runs argv with stdin a pipe kept open, writes `line` to it, waits until
// the program has written something to a temporary `output`.tmp-*, then
// sends `signal_number`. Returns the wait status, or -1 if nothing appeared
// within a minute (the program is then killed).
inline int signal_while_writing(const std::vector<std::string>& argv, const std::string& line,
                                const std::string& output, int signal_number) {
  int to_child[2];
  if (pipe(to_child) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(to_child[0], 0);
    close(to_child[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(to_child[0]);
  if (write(to_child[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) return -1;
  const auto dir = std::filesystem::path(output).parent_path().string();
  const auto prefix = std::filesystem::path(output).filename().string() + ".tmp-";
  bool appeared = false;
  for (int i = 0; i < 600 && !appeared; ++i) {
    appeared = nonempty_file_with_prefix(dir, prefix);
    if (!appeared) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid, appeared ? signal_number : SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(to_child[1]);
  return appeared ? status : -1;
}

// Runs a shell script in a mount namespace of its own where `dir` is a
// tmpfs of `kib` KiB, so that writes there meet a full disk (ENOSPC); as
// root or through a user namespace. Returns false (r untouched) when this
// system allows neither.
inline bool run_on_small_tmpfs(const std::string& dir, int kib, const std::string& script, RunResult* r) {
  if (run("unshare -rm true").exit_code != 0) return false;
  std::ofstream(dir + ".sh") << "set -u\nmount -t tmpfs -o size=" << kib << "k tmpfs '" << dir
                             << "' || exit 99\n"
                             << script << "\n";
  *r = run("unshare -rm sh " + dir + ".sh");
  return r->exit_code != 99;
}

// A text's lines, without their newlines.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

inline int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

}  // namespace aiayn::test
