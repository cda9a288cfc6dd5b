// Test hosts on this machine: Linux network namespaces, each with its own
// address on one link (eth0) to a bridge in a namespace of its own, the
// "switch". No route leaves them: the links exist only between namespaces
// that the test made, and everything is torn down when the object goes, on
// failure too. A test run killed before that leaves namespaces named after
// its pid; the next one removes them. Needs root (`ip netns`, iproute2).
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace aiayn::test {

class NetnsHosts {
 public:
  // Hosts h0 .. h(n-1) at 10.77.0.1 .. 10.77.0.n (/24).
  explicit NetnsHosts(int n) : prefix_("aiayn" + std::to_string(getpid()) + "-"), present_(n, false) {
    remove_stale();
    must("ip netns add " + switch_name());
    must("ip -n " + switch_name() + " link add br0 type bridge");
    must("ip -n " + switch_name() + " link set br0 up");
    for (int i = 0; i < n; ++i) add_back(i);
  }
  ~NetnsHosts() {
    for (size_t i = 0; i < present_.size(); ++i) {
      if (present_[i]) remove(static_cast<int>(i));
    }
    sh("ip netns del " + switch_name());
  }
  NetnsHosts(const NetnsHosts&) = delete;
  NetnsHosts& operator=(const NetnsHosts&) = delete;

  // "" where namespaces can be made here; else why not (the tests skip).
  static std::string unavailable() {
    if (geteuid() != 0) return "not root: `ip netns add` needs CAP_SYS_ADMIN";
    const std::string probe = "aiayn" + std::to_string(getpid()) + "-probe";
    if (sh("ip netns add " + probe) != 0) return "`ip netns add` failed here (no iproute2, or no namespaces)";
    sh("ip netns del " + probe);
    return "";
  }

  std::string name(int i) const { return prefix_ + "h" + std::to_string(i); }
  std::string address(int i) const { return "10.77.0." + std::to_string(i + 1); }
  // Prefix of a command that runs inside host i.
  std::string exec(int i) const { return "ip netns exec " + name(i) + " "; }

  // A fresh host i, with its address and a link to the switch.
  void add_back(int i) {
    const std::string host = name(i),
                      port = "p" + std::to_string(getpid() % 100000) + "-" + std::to_string(i);
    must("ip netns add " + host);
    must("ip link add eth0 netns " + host + " type veth peer name " + port + " netns " + switch_name());
    must("ip -n " + switch_name() + " link set " + port + " master br0 up");
    must("ip -n " + host + " addr add " + address(i) + "/24 dev eth0");
    must("ip -n " + host + " link set eth0 up");
    must("ip -n " + host + " link set lo up");
    present_[static_cast<size_t>(i)] = true;
  }
  // SIGKILL every process in host i.
  void kill_all(int i) { sh("ip netns pids " + name(i) + " | xargs -r kill -9"); }
  // The host disappears, as on a power loss: its link goes first, so that
  // nothing its dying processes send (FIN, RST) reaches the others.
  void remove(int i) {
    sh("ip -n " + name(i) + " link del eth0");
    kill_all(i);
    for (int tries = 0; tries < 50 && !pids(i).empty(); ++tries) usleep(100000);
    sh("ip netns del " + name(i));
    present_[static_cast<size_t>(i)] = false;
  }
  // eth0 down inside host i: its packets go nowhere, and nobody is told.
  void link_down(int i) { must("ip -n " + name(i) + " link set eth0 down"); }

 private:
  std::string switch_name() const { return prefix_ + "sw"; }
  std::string pids(int i) const { return run("ip netns pids " + name(i) + " 2>/dev/null").out; }
  static int sh(const std::string& command) {
    const int status = std::system((command + " > /dev/null 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }
  static void must(const std::string& command) {
    auto r = run(command);
    if (r.exit_code != 0) throw std::runtime_error("test hosts: `" + command + "` failed: " + r.err);
  }
  // Namespaces of earlier test processes that no longer run.
  static void remove_stale() {
    std::istringstream list(run("ip netns list 2>/dev/null").out);
    std::string line;
    while (std::getline(list, line)) {
      const std::string ns = line.substr(0, line.find(' '));
      if (ns.rfind("aiayn", 0) != 0) continue;
      const auto dash = ns.find('-');
      const std::string pid = ns.substr(5, dash == std::string::npos ? 0 : dash - 5);
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (std::filesystem::exists("/proc/" + pid)) continue;
      sh("ip netns pids " + ns + " | xargs -r kill -9");
      sh("ip netns del " + ns);
    }
  }

  std::string prefix_;
  std::vector<bool> present_;
};

}  // namespace aiayn::test
