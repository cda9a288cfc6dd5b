// A server executable (aiayn-translate --serve, aiayn-attention --serve)
// run by a test on a free loopback port, and killed with the test.
#pragma once
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include "src/serve/httplib_glue.h"
#include "tests/rank_process.h"
#include "tests/test_util.h"

namespace aiayn::test {

// A running server: started on a free port, its port read from its log.
class ServerProcess {
 public:
  ServerProcess(const std::string& executable, const std::string& checkpoint, const std::string& options,
                const TempDir& dir)
      : log_(dir.file("server" + std::to_string(++started_) + ".log")) {
    const std::string cmd = "exec " + executable + " -c " + checkpoint + " --threads 1 --serve 127.0.0.1:0 " +
                            options + " > /dev/null 2> " + log_;
    pid_ = fork();
    if (pid_ == 0) {
      // A test process that dies (a crash, a kill) takes its server along.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      _exit(127);
    }
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::smatch m;
      const auto text = read_file(log_);
      if (std::regex_search(text, m, listening)) port_ = std::stoi(m[1]);
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (port_ == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      throw std::runtime_error("the server did not start: " + read_file(log_));
    }
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }
  // SIGTERM, then the exit code (-1 past the deadline).
  int terminate() {
    kill(pid_, SIGTERM);
    const int code = wait_for(pid_, std::chrono::seconds(60));
    pid_ = -1;
    return code;
  }
  std::string log() const { return read_file(log_); }
  int port() const { return port_; }

 private:
  static inline int started_ = 0;  // a log of its own: an old one holds an old port
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// POSTs a JSON body; the answer's JSON and its status.
inline nlohmann::json post_json(httplib::Client& client, const std::string& path, const nlohmann::json& body,
                                int* status) {
  auto res = client.Post(path.c_str(), body.dump(), "application/json");
  if (!res) throw std::runtime_error("no answer: " + httplib::to_string(res.error()));
  *status = res->status;
  return nlohmann::json::parse(res->body);
}

// The status and error message of a raw body.
inline std::pair<int, std::string> refused(httplib::Client& client, const std::string& path,
                                           const std::string& body) {
  auto res = client.Post(path.c_str(), body, "application/json");
  if (!res) return {-1, httplib::to_string(res.error())};
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  return {res->status, j.is_object() && j.contains("error") ? j["error"].get<std::string>() : res->body};
}

}  // namespace aiayn::test
