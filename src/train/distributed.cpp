#include "src/train/distributed.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "src/common/error.h"

#ifdef AIAYN_WITH_C10D
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef AIAYN_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace aiayn {

namespace {

int env_int(const char* name, int fallback, int min_value) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < min_value || value > 1 << 20) {
    throw InputError(std::string("environment variable ") + name + "=\"" + text +
                     "\": expected an integer >= " + std::to_string(min_value));
  }
  return static_cast<int>(value);
}

}  // namespace

DistributedOptions distributed_from_environment() {
  DistributedOptions o;
  o.world_size = env_int("WORLD_SIZE", 1, 1);
  o.rank = env_int("RANK", 0, 0);
  o.local_rank = env_int("LOCAL_RANK", o.rank, 0);
  o.local_world_size = env_int("LOCAL_WORLD_SIZE", o.world_size, 1);
  o.master_port = env_int("MASTER_PORT", o.master_port, 1);
  if (o.master_port > 65535) {
    throw InputError("environment variable MASTER_PORT=" + std::to_string(o.master_port) +
                     ": not a TCP port (1-65535)");
  }
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    o.master_addr = addr;
  }
  if (o.rank >= o.world_size) {
    throw InputError("environment variable RANK=" + std::to_string(o.rank) +
                     ": must be below WORLD_SIZE=" + std::to_string(o.world_size));
  }
  return o;
}

#ifdef AIAYN_WITH_NCCL
bool nccl_available() { return true; }
#else
bool nccl_available() { return false; }
#endif

#ifdef AIAYN_WITH_C10D

bool distributed_available() { return true; }

namespace {

std::string heartbeat_key(int rank) { return "aiayn/heartbeat/" + std::to_string(rank); }

// join: this is the rank's own store connection, counted by rank 0's server,
// which waits for all of them; the heartbeat's extra connections are not.
c10::intrusive_ptr<c10d::TCPStore> connect_store(const DistributedOptions& o, bool join,
                                                 std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions s;
  s.port = static_cast<uint16_t>(o.master_port);
  s.isServer = join && o.rank == 0;
  s.timeout = timeout;
  if (join) s.numWorkers = static_cast<size_t>(o.world_size);
  s.waitWorkers = join;
  return c10::make_intrusive<c10d::TCPStore>(o.master_addr, s);
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;  // CPU tensors
#ifdef AIAYN_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // CUDA tensors, when training on CUDA
#endif
  // Runs a collective on the group that can take `t` in place: NCCL for a
  // CUDA tensor when there is NCCL, else Gloo (then t must be on the CPU).
  template <typename Collective>
  void run(const torch::Tensor& t, Collective&& collective) {
#ifdef AIAYN_WITH_NCCL
    if (nccl && t.is_cuda()) return collective(*nccl);
#endif
    collective(*group);
  }
  // Whether a group can take t where it is (else it goes through the CPU).
  bool takes(const torch::Tensor& t) const {
    if (t.is_cpu()) return true;
#ifdef AIAYN_WITH_NCCL
    return nccl && t.is_cuda();
#else
    return false;
#endif
  }
  // The heartbeat: a counter per rank in the store, bumped by its own thread
  // (and its own store connection: a store client is not thread-safe).
  std::thread heartbeat;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;

  void beat(const DistributedOptions& o) {
    try {
      auto own = connect_store(o, false, std::chrono::seconds(10));
      while (true) {
        own->add(heartbeat_key(o.rank), 1);
        std::unique_lock<std::mutex> lock(mutex);
        if (wake.wait_for(lock, std::chrono::milliseconds(250), [this] { return stopping; })) break;
      }
    } catch (const std::exception&) {
      // The store went away (rank 0 ended): collectives report it, not this thread.
    }
  }

  // Ranks whose heartbeat did not move over a second; {0} when the store
  // itself (hosted by rank 0) is unreachable.
  std::vector<int> silent_ranks(const DistributedOptions& o) {
    try {
      auto probe = connect_store(o, false, std::chrono::seconds(3));
      std::vector<int64_t> before;
      for (int r = 0; r < o.world_size; ++r) before.push_back(probe->add(heartbeat_key(r), 0));
      std::this_thread::sleep_for(std::chrono::milliseconds(1200));
      std::vector<int> silent;
      for (int r = 0; r < o.world_size; ++r) {
        if (r != o.rank && probe->add(heartbeat_key(r), 0) == before[static_cast<size_t>(r)]) {
          silent.push_back(r);
        }
      }
      return silent;
    } catch (const std::exception&) {
      return {0};
    }
  }
};

Communicator::Communicator(const DistributedOptions& options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  try {
    impl_->store = connect_store(options_, true, options_.timeout);
    auto group_options = c10d::ProcessGroupGloo::Options::create(options_.timeout);
    if (const char* iface = std::getenv("GLOO_SOCKET_IFNAME")) {
      group_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    } else if (is_loopback(options_.master_addr)) {
      group_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      group_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    // Each group gets its own key space in the one store.
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo", impl_->store), options_.rank, options_.world_size,
        group_options);
#ifdef AIAYN_WITH_NCCL
    if (options_.device.is_cuda()) {
      // This rank's GPU is the current device while the group is made, so
      // that NCCL's communicator and context land there and not on GPU 0.
      c10::DeviceGuard on_own_gpu(options_.device);
      // Without blocking waits an NCCL collective that a lost rank never
      // joins would hang instead of failing after the timeout.
      setenv("NCCL_BLOCKING_WAIT", "1", 0);
      setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = options_.timeout;
      impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("nccl", impl_->store), options_.rank, options_.world_size,
          nccl_options);
    }
#endif
  } catch (const std::exception& e) {
    throw DistributedError("rendezvous of rank " + std::to_string(options_.rank) + " of " +
                           std::to_string(options_.world_size) + " at " + options_.master_addr + ":" +
                           std::to_string(options_.master_port) + " failed: " + e.what());
  }
  impl_->heartbeat = std::thread([this] { impl_->beat(options_); });
}

Communicator::~Communicator() {
#ifdef AIAYN_WITH_NCCL
  // NCCL's communicators are released here, in order, rather than by its
  // watchdog racing the process's exit (PyTorch warns of leaks otherwise).
  if (impl_->nccl) {
    try {
      impl_->nccl->shutdown();
    } catch (const std::exception&) {
      // A lost peer: the error was reported by the collective that met it.
    }
  }
#endif
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
}

void Communicator::fail(const std::string& what, const std::string& cause) {
  const auto silent = impl_->silent_ranks(options_);
  std::string who;
  for (int r : silent) who += (who.empty() ? "" : ", ") + std::to_string(r);
  std::string message = "rank " + std::to_string(options_.rank) + " of " +
                        std::to_string(options_.world_size) + ": " + what + " failed";
  if (!silent.empty()) {
    message += ": lost rank " + who +
               (silent == std::vector<int>{0} && options_.rank != 0 ? " (the rendezvous store is unreachable)"
                                                                    : " (its heartbeat stopped)");
  }
  // Gloo's own message can span lines; one line is what the apps print.
  std::string first_line = cause.substr(0, cause.find('\n'));
  throw DistributedError(message + " [" + first_line + "]");
}

void Communicator::all_reduce_sum(const std::vector<torch::Tensor>& tensors, const std::string& what,
                                  int64_t bucket_bytes) {
  size_t begin = 0;
  while (begin < tensors.size()) {
    // A bucket: consecutive tensors of one dtype, up to bucket_bytes.
    size_t end = begin;
    int64_t bytes = 0;
    while (end < tensors.size() && tensors[end].scalar_type() == tensors[begin].scalar_type() &&
           (end == begin || bytes + tensors[end].nbytes() <= static_cast<size_t>(bucket_bytes))) {
      bytes += static_cast<int64_t>(tensors[end].nbytes());
      ++end;
    }
    std::vector<torch::Tensor> views;
    for (size_t i = begin; i < end; ++i) views.push_back(tensors[i].reshape({-1}));
    auto packed = torch::cat(views);  // [sum of numel]
    // NCCL reduces on the device; Gloo on the CPU.
    std::vector<torch::Tensor> flat{impl_->takes(packed) ? packed : packed.to(torch::kCPU)};
    try {
      impl_->run(flat[0], [&](auto& group) { group.allreduce(flat)->wait(); });
    } catch (const std::exception& e) {
      fail(what, e.what());
    }
    int64_t offset = 0;
    for (size_t i = begin; i < end; ++i) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(flat[0].narrow(0, offset, n).view(tensors[i].sizes()));
      offset += n;
    }
    begin = end;
  }
}

void Communicator::broadcast(const std::vector<torch::Tensor>& tensors, const std::string& what) {
  for (const auto& t : tensors) {
    auto data = t.detach().contiguous();
    std::vector<torch::Tensor> buffer{impl_->takes(data) ? data : data.to(torch::kCPU)};
    try {
      impl_->run(buffer[0], [&](auto& group) { group.broadcast(buffer)->wait(); });
    } catch (const std::exception& e) {
      fail(what, e.what());
    }
    torch::NoGradGuard no_grad;
    t.copy_(buffer[0]);
  }
}

void Communicator::barrier(const std::string& what) {
  try {
    impl_->group->barrier()->wait();
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
}

void Communicator::publish(const std::string& key, const std::string& value) {
  impl_->store->set("aiayn/" + key, std::vector<uint8_t>(value.begin(), value.end()));
}

std::string Communicator::await(const std::string& key, const std::string& what) {
  const std::string full = "aiayn/" + key;
  while (true) {
    try {
      impl_->store->wait({full}, std::chrono::seconds(2));
      auto bytes = impl_->store->get(full);
      return std::string(bytes.begin(), bytes.end());
    } catch (const std::exception& e) {
      // Not there yet: go on waiting while rank 0's heartbeat moves.
      const auto silent = impl_->silent_ranks(options_);
      if (std::find(silent.begin(), silent.end(), 0) != silent.end()) fail(what, e.what());
    }
  }
}

#else  // no c10d/Gloo in this build

bool distributed_available() { return false; }

struct Communicator::Impl {};

Communicator::Communicator(const DistributedOptions& options) : options_(options) {
  throw InputError("WORLD_SIZE=" + std::to_string(options.world_size) +
                   ": this build has no c10d/Gloo (install libgloo-dev and rebuild) and can "
                   "only train in one process");
}
Communicator::~Communicator() = default;
void Communicator::fail(const std::string& what, const std::string& cause) {
  throw DistributedError(what + ": " + cause);
}
void Communicator::all_reduce_sum(const std::vector<torch::Tensor>&, const std::string&, int64_t) {}
void Communicator::broadcast(const std::vector<torch::Tensor>&, const std::string&) {}
void Communicator::barrier(const std::string&) {}
void Communicator::publish(const std::string&, const std::string&) {}
std::string Communicator::await(const std::string&, const std::string&) { return ""; }

#endif

}  // namespace aiayn
