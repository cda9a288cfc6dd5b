// Configure probe (cmake/c10d.cmake): do the Gloo headers found fit the Gloo
// compiled into this LibTorch? Two ranks, as threads, meet on a TCPStore
// through a PrefixStore and all-reduce and broadcast on ProcessGroupGloo,
// the calls src/train/distributed.cpp makes; exit 0 only for right results.
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <thread>
#include <vector>

int main() {
  alarm(60);  // a hang fails the probe instead of configure
  constexpr int kWorld = 2;
  std::vector<double> sums(kWorld, 0), firsts(kWorld, 0);
  std::vector<std::string> errors(kWorld);
  c10::intrusive_ptr<c10d::TCPStore> server;
  {
    c10d::TCPStoreOptions s;
    s.port = 0;  // any free port
    s.isServer = true;
    s.waitWorkers = false;
    server = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", s);
  }
  const auto port = server->getPort();
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < kWorld; ++rank) {
    ranks.emplace_back([&, rank] {
      try {
        c10d::TCPStoreOptions s;
        s.port = port;
        auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", s);
        auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::seconds(30));
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        c10d::ProcessGroupGloo group(c10::make_intrusive<c10d::PrefixStore>("gloo", store), rank,
                                     kWorld, options);
        std::vector<at::Tensor> summed{at::full({4096}, static_cast<float>(rank + 1))};
        group.allreduce(summed)->wait();
        std::vector<at::Tensor> sent{at::full({16}, static_cast<float>(rank + 7))};
        group.broadcast(sent)->wait();
        sums[rank] = summed[0].sum().item<double>();
        firsts[rank] = sent[0][0].item<double>();
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  for (int rank = 0; rank < kWorld; ++rank) {
    if (!errors[rank].empty()) {
      std::string first = errors[rank].substr(0, errors[rank].find('\n'));  // one line for configure's
      std::printf("rank %d: %s\n", rank, first.substr(0, 200).c_str());
      return 1;
    }
    if (sums[rank] != 3.0 * 4096 || firsts[rank] != 7.0) {
      std::printf("rank %d: all-reduce gave %g (want %g), broadcast %g (want 7)\n", rank,
                  sums[rank], 3.0 * 4096, firsts[rank]);
      return 1;
    }
  }
  std::printf("ok\n");
  return 0;
}
