#include "src/train/distributed.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

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

bool env_set(const char* name) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0';
}

// Inside an srun job step (SLURM_STEP_ID is set there, not in the batch
// script itself, where one process would otherwise wait for N-1 others).
bool in_slurm_step() {
  return env_set("SLURM_PROCID") && env_set("SLURM_NTASKS") && env_set("SLURM_STEP_ID");
}

// Slurm's tasks on this node: SLURM_TASKS_PER_NODE is "2(x3),1"; this node's
// count is not named in it, so the first is taken (an even job has one).
int slurm_tasks_per_node(int fallback) {
  const char* text = std::getenv("SLURM_TASKS_PER_NODE");
  if (text == nullptr) return fallback;
  const int n = std::atoi(text);
  return n >= 1 ? n : fallback;
}

}  // namespace

std::string first_host_of_nodelist(const std::string& nodelist, const std::string& variable) {
  auto malformed = [&] {
    return InputError("environment variable " + variable + "=\"" + nodelist +
                      "\": not a Slurm host list (such as node[01-04,07],login1)");
  };
  std::string host;
  int depth = 0;
  bool first_of_group = false;  // inside [...]: still in its first element
  for (char c : nodelist) {
    if (c == '[') {
      if (depth++ != 0) throw malformed();
      first_of_group = true;
    } else if (c == ']') {
      if (depth-- != 1) throw malformed();
    } else if (depth == 1) {
      if (c == ',' || c == '-') first_of_group = false;
      if (first_of_group) host += c;
    } else if (c == ',') {
      break;  // the first host's entry ends here
    } else {
      host += c;
    }
  }
  if (depth != 0 || host.empty() || host.find_first_of(" \t") != std::string::npos) throw malformed();
  return host;
}

std::string local_address_towards(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), "9", &hints, &found) != 0 || found == nullptr) return "";
  std::string address;
  // Connecting a UDP socket sends nothing; it only asks the routing table.
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in local{};
  socklen_t length = sizeof local;
  if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
    char text[INET_ADDRSTRLEN] = {};
    if (inet_ntop(AF_INET, &local.sin_addr, text, sizeof text) != nullptr) address = text;
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(found);
  return address;
}

DistributedOptions distributed_from_environment() {
  DistributedOptions o;
  // torchrun's variables first; Slurm's where a job step has no others.
  if (!env_set("RANK") && !env_set("WORLD_SIZE") && in_slurm_step()) {
    o.world_size = env_int("SLURM_NTASKS", 1, 1);
    o.rank = env_int("SLURM_PROCID", 0, 0);
    o.local_rank = env_int("SLURM_LOCALID", 0, 0);
    o.local_world_size = slurm_tasks_per_node(1);
    for (const char* name : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"}) {
      if (env_set(name)) {
        o.master_addr = first_host_of_nodelist(std::getenv(name), name);
        break;
      }
    }
    if (o.rank >= o.world_size) {
      throw InputError("environment variable SLURM_PROCID=" + std::to_string(o.rank) +
                       ": must be below SLURM_NTASKS=" + std::to_string(o.world_size));
    }
  } else {
    o.world_size = env_int("WORLD_SIZE", 1, 1);
    o.rank = env_int("RANK", 0, 0);
    o.local_rank = env_int("LOCAL_RANK", o.rank, 0);
    o.local_world_size = env_int("LOCAL_WORLD_SIZE", o.world_size, 1);
    if (o.rank >= o.world_size) {
      throw InputError("environment variable RANK=" + std::to_string(o.rank) +
                       ": must be below WORLD_SIZE=" + std::to_string(o.world_size));
    }
  }
  o.master_port = env_int("MASTER_PORT", o.master_port, 1);
  if (o.master_port > 65535) {
    throw InputError("environment variable MASTER_PORT=" + std::to_string(o.master_port) +
                     ": not a TCP port (1-65535)");
  }
  if (env_set("MASTER_ADDR")) o.master_addr = std::getenv("MASTER_ADDR");
  if (env_set("GLOO_SOCKET_IFNAME")) o.interface = std::getenv("GLOO_SOCKET_IFNAME");
  // torchrun's agent on node 0 already serves a store at MASTER_ADDR:MASTER_PORT.
  o.agent_store = env_set("TORCHELASTIC_USE_AGENT_STORE") &&
                  std::string(std::getenv("TORCHELASTIC_USE_AGENT_STORE")) == "True";
  if (env_set("TORCHELASTIC_RESTART_COUNT")) o.attempt = std::getenv("TORCHELASTIC_RESTART_COUNT");
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

// Our keys in the store; under torchrun, apart for each restart of the job
// (its agent's store outlives an attempt).
std::string store_key(const DistributedOptions& o, const std::string& name) {
  return "aiayn/" + (o.attempt.empty() ? "" : "attempt-" + o.attempt + "/") + name;
}

std::string heartbeat_key(const DistributedOptions& o, int rank) {
  return store_key(o, "heartbeat/" + std::to_string(rank));
}

// join: this is the rank's own store connection, the one that hosts the
// store on rank 0; the heartbeat's extra connections are clients only.
c10::intrusive_ptr<c10d::TCPStore> connect_store(const DistributedOptions& o, bool join,
                                                 std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions s;
  s.port = static_cast<uint16_t>(o.master_port);
  s.isServer = join && o.rank == 0 && !o.agent_store;
  s.timeout = timeout;
  // The ranks are awaited by await_all_ranks, which can name the missing ones.
  s.waitWorkers = false;
  return c10::make_intrusive<c10d::TCPStore>(o.master_addr, s);
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

std::string joined_key(const DistributedOptions& o, int rank) {
  return store_key(o, "joined/" + std::to_string(rank));
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string text;
  for (int r : ranks) text += (text.empty() ? "" : ", ") + std::to_string(r);
  return text;
}

std::string host_name() {
  char name[256] = {};
  return gethostname(name, sizeof name - 1) == 0 ? name : "?";
}

// The interfaces of this host, for the message that names a wrong one.
std::string interface_names() {
  std::string names;
  if (auto* list = if_nameindex()) {
    for (auto* i = list; i->if_index != 0; ++i)
      names += (names.empty() ? "" : ", ") + std::string(i->if_name);
    if_freenameindex(list);
  }
  return names;
}

// Where Gloo listens and sends: the named interface; loopback for a job on
// one host; else the address this host reaches rank 0's through, so that a
// peer never gets a name that resolves to an address it cannot reach.
std::shared_ptr<::gloo::transport::Device> gloo_device(const DistributedOptions& o) {
  if (!o.interface.empty()) {
    if (if_nametoindex(o.interface.c_str()) == 0) {
      throw InputError("--dist-interface/GLOO_SOCKET_IFNAME \"" + o.interface +
                       "\": no such network interface on " + host_name() + " (it has: " + interface_names() +
                       ")");
    }
    return c10d::ProcessGroupGloo::createDeviceForInterface(o.interface);
  }
  if (is_loopback(o.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  const std::string local = local_address_towards(o.master_addr);
  if (!local.empty()) return c10d::ProcessGroupGloo::createDeviceForHostname(local);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// Every rank sets its key in rank 0's store, then waits for the others'
// until the rendezvous timeout, so that a failure names who never came.
void await_all_ranks(c10d::TCPStore& store, const DistributedOptions& o) {
  using clock = std::chrono::steady_clock;
  const std::string here = host_name();
  store.set(joined_key(o, o.rank), std::vector<uint8_t>(here.begin(), here.end()));
  const auto start = clock::now();
  auto next_note = start + std::chrono::seconds(10);
  while (true) {
    std::vector<int> missing;
    for (int r = 0; r < o.world_size; ++r) {
      if (!store.check({joined_key(o, r)})) missing.push_back(r);
    }
    if (missing.empty()) return;
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(clock::now() - start).count();
    const auto limit = std::chrono::duration_cast<std::chrono::seconds>(o.rendezvous_timeout).count();
    if (clock::now() - start > o.rendezvous_timeout) {
      throw DistributedError(
          "rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + ": rank(s) " +
          rank_list(missing) + " did not join the rendezvous at " + o.master_addr + ":" +
          std::to_string(o.master_port) + " within " + std::to_string(limit) +
          " s (--rendezvous-timeout): are they started, with the same MASTER_ADDR and port?");
    }
    if (o.rank == 0 && clock::now() > next_note) {
      std::fprintf(stderr, "aiayn-train: rendezvous at %s:%d: waiting for rank(s) %s (%lld s of %lld s)\n",
                   o.master_addr.c_str(), o.master_port, rank_list(missing).c_str(),
                   static_cast<long long>(waited), static_cast<long long>(limit));
      next_note += std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
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
  // (and its own store connection: a store client is not thread-safe). The
  // thread shares only `beat_state`, so that it can be left behind: on a link
  // that went down without a reset, LibTorch 1.13's store client waits in
  // recv() with no timeout, and joining it would hang the rank's exit.
  struct BeatState {
    std::mutex mutex;
    std::condition_variable wake;
    bool stopping = false;
    bool finished = false;
  };
  std::shared_ptr<BeatState> beat_state = std::make_shared<BeatState>();
  std::thread heartbeat;

  static void beat(const DistributedOptions& o, const std::shared_ptr<BeatState>& state) {
    try {
      auto own = connect_store(o, false, std::chrono::seconds(10));
      while (true) {
        own->add(heartbeat_key(o, o.rank), 1);
        std::unique_lock<std::mutex> lock(state->mutex);
        if (state->wake.wait_for(lock, std::chrono::milliseconds(250), [&] { return state->stopping; }))
          break;
      }
    } catch (const std::exception&) {
      // The store went away (rank 0 ended): collectives report it, not this thread.
    }
    std::lock_guard<std::mutex> lock(state->mutex);
    state->finished = true;
    state->wake.notify_all();
  }

  // Stops the heartbeat: joined when it ends within a few seconds, else left
  // blocked on its dead connection until the process exits.
  void stop_heartbeat() {
    if (!heartbeat.joinable()) return;
    std::unique_lock<std::mutex> lock(beat_state->mutex);
    beat_state->stopping = true;
    beat_state->wake.notify_all();
    const bool ended =
        beat_state->wake.wait_for(lock, std::chrono::seconds(3), [this] { return beat_state->finished; });
    lock.unlock();
    if (ended) {
      heartbeat.join();
    } else {
      heartbeat.detach();
    }
  }

  // Ranks whose heartbeat did not move over a second; {0} when the store
  // itself (hosted by rank 0) is unreachable.
  std::vector<int> silent_ranks(const DistributedOptions& o) {
    try {
      auto probe = connect_store(o, false, std::chrono::seconds(3));
      std::vector<int64_t> before;
      for (int r = 0; r < o.world_size; ++r) before.push_back(probe->add(heartbeat_key(o, r), 0));
      std::this_thread::sleep_for(std::chrono::milliseconds(1200));
      std::vector<int> silent;
      for (int r = 0; r < o.world_size; ++r) {
        if (r != o.rank && probe->add(heartbeat_key(o, r), 0) == before[static_cast<size_t>(r)]) {
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
  const std::string where = options_.master_addr + ":" + std::to_string(options_.master_port);
  try {
    impl_->store = connect_store(options_, true, options_.rendezvous_timeout);
  } catch (const std::exception& e) {
    const std::string cause = std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
    throw DistributedError(
        options_.rank == 0 && !options_.agent_store
            ? "rank 0 cannot host the rendezvous store on port " + std::to_string(options_.master_port) +
                  ": " + cause
            : "rank " + std::to_string(options_.rank) + " could not reach the rendezvous store at " + where +
                  " (rank 0's host) within " +
                  std::to_string(
                      std::chrono::duration_cast<std::chrono::seconds>(options_.rendezvous_timeout).count()) +
                  " s (--rendezvous-timeout): is rank 0 started, and " + options_.master_addr +
                  " reachable from this host? [" + cause + "]");
  }
  try {
    await_all_ranks(*impl_->store, options_);
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(options_.rank) + ": the rendezvous store at " + where +
                           " went away while the ranks gathered: " +
                           std::string(e.what()).substr(0, std::string(e.what()).find('\n')));
  }
  impl_->store->setTimeout(options_.timeout);
  try {
    auto group_options = c10d::ProcessGroupGloo::Options::create(options_.timeout);
    group_options->devices.push_back(gloo_device(options_));
    // Each group gets its own key space in the one store.
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>(store_key(options_, "gloo"), impl_->store), options_.rank,
        options_.world_size, group_options);
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
          c10::make_intrusive<c10d::PrefixStore>(store_key(options_, "nccl"), impl_->store), options_.rank,
          options_.world_size, nccl_options);
    }
#endif
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    const std::string cause = std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
    throw DistributedError("rendezvous of rank " + std::to_string(options_.rank) + " of " +
                           std::to_string(options_.world_size) + " at " + where + " failed: " + cause);
  }
  impl_->heartbeat = std::thread(&Impl::beat, options_, impl_->beat_state);
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
  impl_->stop_heartbeat();
}

void Communicator::fail(const std::string& what, const std::string& cause) {
  const auto silent = impl_->silent_ranks(options_);
  std::string who;
  for (int r : silent) who += (who.empty() ? "" : ", ") + std::to_string(r);
  std::string message = "rank " + std::to_string(options_.rank) + " of " +
                        std::to_string(options_.world_size) + ": " + what + " failed";
  if (!silent.empty()) {
    message += ": lost rank " + who +
               (silent == std::vector<int>{0} && options_.rank != 0
                    ? " (the rendezvous store on its host " + options_.master_addr +
                          " is unreachable: that host is down or cut off)"
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

std::vector<std::string> Communicator::all_gather(const std::string& key, const std::string& value,
                                                  const std::string& what) {
  const std::string prefix = store_key(options_, key + "/");
  impl_->store->set(prefix + std::to_string(options_.rank), std::vector<uint8_t>(value.begin(), value.end()));
  std::vector<std::string> values;
  for (int r = 0; r < options_.world_size; ++r) {
    try {
      impl_->store->wait({prefix + std::to_string(r)}, options_.timeout);
      const auto bytes = impl_->store->get(prefix + std::to_string(r));
      values.emplace_back(bytes.begin(), bytes.end());
    } catch (const std::exception& e) {
      fail(what, e.what());
    }
  }
  return values;
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
  impl_->store->set(store_key(options_, key), std::vector<uint8_t>(value.begin(), value.end()));
}

std::string Communicator::await(const std::string& key, const std::string& what) {
  const std::string full = store_key(options_, key);
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
std::vector<std::string> Communicator::all_gather(const std::string&, const std::string& value,
                                                  const std::string&) {
  return {value};
}
std::string Communicator::await(const std::string&, const std::string&) { return ""; }

#endif

}  // namespace aiayn
