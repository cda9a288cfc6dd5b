// Data-parallel training across hosts, and the faults a cluster has: each
// host a network namespace with its own address (tests/netns_hosts.h), one
// aiayn-train rank per host. Skipped, with a warning, where namespaces
// cannot be made (not root).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "src/decode/checkpoint_reader.h"
#include "src/train/distributed.h"
#include "src/train/training_state.h"
#include "tests/netns_hosts.h"
#include "tests/rank_process.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"

using namespace aiayn;
using test::NetnsHosts;
using test::Workspace;

namespace {

constexpr int kPort = 29500;  // each test's hosts are a network of their own

bool hosts_available() {
  const auto why = NetnsHosts::unavailable();
  if (!why.empty()) WARN("skipped: cannot make test hosts: " << why);
  return why.empty();
}

// Starts `command` inside host `host` in the background, with `env` (VAR=value ...).
pid_t start_in(const NetnsHosts& hosts, int host, const std::string& env, const std::string& command,
               const Workspace& ws, const std::string& name) {
  const std::string line = "exec " + hosts.exec(host) + "env " + env + " " + command + " > " +
                           ws.file("out" + name) + " 2> " + ws.file("err" + name);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", line.c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

// Rank `rank` of two, on host `rank`, as torchrun would start it there.
pid_t start_rank(const NetnsHosts& hosts, int rank, const Workspace& ws, const std::string& save,
                 const std::string& extra) {
  const std::string env = "RANK=" + std::to_string(rank) + " WORLD_SIZE=2 MASTER_ADDR=" + hosts.address(0) +
                          " MASTER_PORT=" + std::to_string(kPort);
  return start_in(hosts, rank, env, test::one_thread(ws, save, extra), ws, std::to_string(rank));
}

std::string err_of(const Workspace& ws, int rank) {
  return test::read_file(ws.file("err" + std::to_string(rank)));
}

// The training loss of every logged step, in order.
std::vector<double> losses(const std::string& save) {
  std::vector<double> out;
  std::istringstream lines(test::read_file(save + "/metrics.jsonl"));
  std::string line;
  while (std::getline(lines, line)) {
    auto record = nlohmann::json::parse(line);
    if (record.value("kind", "") == "train") out.push_back(record["loss"].get<double>());
  }
  return out;
}

bool wait_until_under_way(const std::string& save) {
  for (int i = 0; i < 1200 && !test::training_under_way(save); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return test::training_under_way(save);
}

const std::string kLongRun = "--set train.max_steps=100000 --set train.save_every=3 --dist-timeout 5";

// Ranks 0 and 1 of a long run on hosts 0 and 1, once it has a checkpoint.
std::pair<pid_t, pid_t> start_long_run(const NetnsHosts& hosts, const Workspace& ws,
                                       const std::string& save) {
  const pid_t rank0 = start_rank(hosts, 0, ws, save, kLongRun);
  const pid_t rank1 = start_rank(hosts, 1, ws, save, kLongRun);
  REQUIRE(wait_until_under_way(save));
  return {rank0, rank1};
}

}  // namespace

TEST_CASE("two hosts started by the launcher train as one process accumulating two batches",
          "[multihost][equivalence]") {
  if (!hosts_available()) return;
  REQUIRE(distributed_available());
  Workspace ws;
  NetnsHosts hosts(2);
  auto single = test::run(
      test::one_thread(ws, ws.file("single"), "--set train.max_steps=20 --set train.update_freq=2"));
  INFO(single.err);
  REQUIRE(single.exit_code == 0);
  // Node 0 finds its interface by the route to --master-addr; node 1 is told it.
  const std::string launch =
      "--set train.max_steps=20 --nnodes 2 --master-addr " + hosts.address(0) + " --master-port 29500 ";
  pid_t node0 =
      start_in(hosts, 0, "", test::one_thread(ws, ws.file("pair"), launch + "--node-rank 0"), ws, "0");
  pid_t node1 = start_in(
      hosts, 1, "", test::one_thread(ws, ws.file("pair"), launch + "--node-rank 1 --dist-interface eth0"), ws,
      "1");
  const int code0 = test::wait_for(node0, std::chrono::seconds(300));
  const int code1 = test::wait_for(node1, std::chrono::seconds(60));
  INFO(err_of(ws, 0) << "\n" << err_of(ws, 1));
  REQUIRE(code0 == 0);
  REQUIRE(code1 == 0);
  CHECK_THAT(test::read_file(ws.file("out0")), Catch::Contains("data-parallel over 2 ranks"));
  const auto a = losses(ws.file("single")), b = losses(ws.file("pair"));
  REQUIRE(a.size() == 20);
  REQUIRE(b.size() == a.size());
  double worst_loss = 0;
  for (size_t i = 0; i < a.size(); ++i) worst_loss = std::max(worst_loss, std::abs(a[i] - b[i]));
  const double worst =
      test::worst_difference(test::weights(ws.file("single")), test::weights(ws.file("pair")));
  INFO("largest loss difference " << worst_loss << ", largest parameter difference " << worst);
  CHECK(worst_loss <= 1e-5);
  CHECK(worst <= 1e-5);
  // Every progress record says what the all-reduces cost.
  CHECK_THAT(test::read_file(ws.file("pair/metrics.jsonl")), Catch::Contains("\"allreduce_ms\""));
}

TEST_CASE("a late host joins within the rendezvous timeout and a missing one is named after it",
          "[multihost][rendezvous]") {
  if (!hosts_available()) return;
  REQUIRE(distributed_available());
  Workspace ws;
  NetnsHosts hosts(2);
  const std::string save = ws.file("run");
  SECTION("rank 1 starts 20 s after rank 0") {
    pid_t rank0 = start_rank(hosts, 0, ws, save, "--set train.max_steps=4 --rendezvous-timeout 60");
    std::this_thread::sleep_for(std::chrono::seconds(20));
    pid_t rank1 = start_rank(hosts, 1, ws, save, "--set train.max_steps=4 --rendezvous-timeout 60");
    const int code0 = test::wait_for(rank0, std::chrono::seconds(300));
    const int code1 = test::wait_for(rank1, std::chrono::seconds(60));
    INFO(err_of(ws, 0) << "\n" << err_of(ws, 1));
    CHECK(code0 == 0);
    CHECK(code1 == 0);
    // Rank 0 said whom it was waiting for while it waited.
    CHECK_THAT(err_of(ws, 0), Catch::Contains("waiting for rank(s) 1"));
  }
  SECTION("rank 1 never starts") {
    pid_t rank0 = start_rank(hosts, 0, ws, save, "--set train.max_steps=4 --rendezvous-timeout 5");
    const int code = test::wait_for(rank0, std::chrono::seconds(120));
    INFO(err_of(ws, 0));
    CHECK(code != 0);
    CHECK(code != -1);  // it stopped by itself
    CHECK_THAT(err_of(ws, 0),
               Catch::Contains("rank(s) 1 did not join the rendezvous at 10.77.0.1:29500 within 5 s"));
    CHECK(!std::filesystem::exists(save + "/last"));
  }
  SECTION("rank 0, the store's host, never starts") {
    pid_t rank1 = start_rank(hosts, 1, ws, save, "--set train.max_steps=4 --rendezvous-timeout 5");
    const int code = test::wait_for(rank1, std::chrono::seconds(120));
    INFO(err_of(ws, 1));
    CHECK(code != 0);
    CHECK(code != -1);
    CHECK_THAT(err_of(ws, 1), Catch::Contains("could not reach the rendezvous store at 10.77.0.1:29500"));
    CHECK(!std::filesystem::exists(save + "/last"));
  }
}

TEST_CASE("a host that disappears stops the survivor naming it and the full group resumes exactly",
          "[multihost][fault]") {
  if (!hosts_available()) return;
  REQUIRE(distributed_available());
  Workspace ws;
  NetnsHosts hosts(2);
  const std::string save = ws.file("run");
  auto [rank0, rank1] = start_long_run(hosts, ws, save);
  hosts.remove(1);
  const int code0 = test::wait_for(rank0, std::chrono::seconds(60));
  test::wait_for(rank1, std::chrono::seconds(10));
  INFO(err_of(ws, 0));
  CHECK(code0 != 0);
  CHECK(code0 != -1);  // within --dist-timeout and a margin, by itself
  CHECK_THAT(err_of(ws, 0), Catch::Contains("lost rank 1"));

  // The last checkpoint is intact; the whole group, host 1 back, continues
  // it to where an uninterrupted run of the same group gets.
  const int64_t step = read_checkpoint_meta(resolve_checkpoint(save)).state.step;
  REQUIRE(step > 0);
  hosts.add_back(1);
  const std::string to = " --set train.max_steps=" + std::to_string(step + 6);
  const std::string resume = "--resume --set train.save_every=3 --dist-timeout 30" + to;
  rank0 = start_rank(hosts, 0, ws, save, resume);
  rank1 = start_rank(hosts, 1, ws, save, resume);
  int r0 = test::wait_for(rank0, std::chrono::seconds(300)),
      r1 = test::wait_for(rank1, std::chrono::seconds(60));
  INFO(err_of(ws, 0) << "\n" << err_of(ws, 1));
  REQUIRE(r0 == 0);
  REQUIRE(r1 == 0);
  const std::string reference = ws.file("reference");
  const std::string whole = "--set train.save_every=3 --dist-timeout 30" + to;
  rank0 = start_rank(hosts, 0, ws, reference, whole);
  rank1 = start_rank(hosts, 1, ws, reference, whole);
  r0 = test::wait_for(rank0, std::chrono::seconds(300));
  r1 = test::wait_for(rank1, std::chrono::seconds(60));
  REQUIRE(r0 == 0);
  REQUIRE(r1 == 0);
  CHECK(read_checkpoint_meta(resolve_checkpoint(save)).state.step == step + 6);
  const double worst = test::worst_difference(test::weights(save), test::weights(reference));
  INFO("resumed at step " << step << "; largest parameter difference at step " << step + 6 << ": " << worst);
  CHECK(worst == 0);
}

TEST_CASE("a link that goes down without a reset stops both ranks within the timeout", "[multihost][fault]") {
  if (!hosts_available()) return;
  REQUIRE(distributed_available());
  Workspace ws;
  NetnsHosts hosts(2);
  const std::string save = ws.file("run");
  auto [rank0, rank1] = start_long_run(hosts, ws, save);
  hosts.link_down(1);
  const int code0 = test::wait_for(rank0, std::chrono::seconds(60));
  const int code1 = test::wait_for(rank1, std::chrono::seconds(30));
  INFO(err_of(ws, 0) << "\n" << err_of(ws, 1));
  CHECK(code0 != 0);
  CHECK(code0 != -1);
  CHECK(code1 != 0);
  CHECK(code1 != -1);
  CHECK_THAT(err_of(ws, 0), Catch::Contains("lost rank 1"));
  CHECK_THAT(err_of(ws, 1), Catch::Contains("lost rank 0"));
  CHECK(read_checkpoint_meta(resolve_checkpoint(save)).state.step > 0);
}

TEST_CASE("the store host dying is reported as that and not as an unrelated timeout", "[multihost][fault]") {
  if (!hosts_available()) return;
  REQUIRE(distributed_available());
  Workspace ws;
  NetnsHosts hosts(2);
  const std::string save = ws.file("run");
  auto [rank0, rank1] = start_long_run(hosts, ws, save);
  hosts.remove(0);
  test::wait_for(rank0, std::chrono::seconds(10));
  const int code1 = test::wait_for(rank1, std::chrono::seconds(60));
  INFO(err_of(ws, 1));
  CHECK(code1 != 0);
  CHECK(code1 != -1);
  CHECK_THAT(err_of(ws, 1),
             Catch::Contains("lost rank 0 (the rendezvous store on its host 10.77.0.1 is unreachable"));
}
