// Data-parallel training across processes on LibTorch's c10d: the rendezvous,
// the collectives the trainer needs, and errors that name a lost rank instead
// of hanging. CPU tensors go through Gloo; CUDA tensors through NCCL when the
// LibTorch build has it (official CUDA builds), else through Gloo via the CPU.
#pragma once
#include <torch/torch.h>
#include "src/common/error.h"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace aiayn {

// Where this process sits in the job, as torchrun and cluster launchers
// describe it: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT (or Slurm's SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and
// SLURM_NODELIST where those are absent).
struct DistributedOptions {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // The network interface Gloo sends on (GLOO_SOCKET_IFNAME, --dist-interface);
  // "" = the one this host reaches master_addr through.
  std::string interface;
  // Under torchrun: its agent hosts the store (rank 0 joins it as a client),
  // and `attempt` (TORCHELASTIC_RESTART_COUNT) keeps each restart's keys apart.
  bool agent_store = false;
  std::string attempt;
  // How long the first rank to arrive waits for the others (and a rank for
  // rank 0's store to come up) before it fails, naming who is missing.
  std::chrono::milliseconds rendezvous_timeout{std::chrono::minutes(5)};
  // A rank that does not take part in a collective within this time stops the run.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // The device the ranks train on; with CUDA, NCCL carries the gradients.
  torch::Device device = torch::kCPU;
  bool enabled() const { return world_size > 1; }
};

// Reads the variables above (unset: a single process). Throws InputError
// naming the variable when one is malformed or out of range.
DistributedOptions distributed_from_environment();

// The first host of a Slurm host list: "gpu[07-09,12],cpu1" -> "gpu07".
// Throws InputError naming `variable` when the list is malformed.
std::string first_host_of_nodelist(const std::string& nodelist, const std::string& variable);

// The address of this host's interface that traffic to `host` leaves by,
// as the routing table picks it ("" when no route). Gloo binds there when no
// interface is named, so that a peer's address is what it listens on.
std::string local_address_towards(const std::string& host);

// True when this build has c10d with Gloo (see CMakeLists.txt).
bool distributed_available();
// True when CUDA tensors are reduced with NCCL (a CUDA LibTorch with c10d's NCCL).
bool nccl_available();

// The process group of one training job. Constructing it is the rendezvous:
// rank 0 hosts the TCP store at MASTER_ADDR:MASTER_PORT and every rank joins
// within the timeout. A heartbeat thread lets a survivor tell which rank was lost.
class Communicator {
 public:
  explicit Communicator(const DistributedOptions& options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }

  // Sums `tensors` over all ranks, in place, packed into buckets of at most
  // `bucket_bytes` so a model costs a few messages rather than one per tensor.
  // `what` names the step in error messages.
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors, const std::string& what,
                      int64_t bucket_bytes = 32 << 20);
  // Every rank's `value` (by rank), exchanged through the store: the checks
  // that all ranks start on the same settings and files.
  std::vector<std::string> all_gather(const std::string& key, const std::string& value,
                                      const std::string& what);
  // Copies rank 0's `tensors` to every rank, in place.
  void broadcast(const std::vector<torch::Tensor>& tensors, const std::string& what);
  void barrier(const std::string& what);

  // Rank 0 publishes a value (e.g. "data ready") that the others await for as
  // long as rank 0 is alive: preparing data may take far longer than a
  // collective's timeout.
  void publish(const std::string& key, const std::string& value);
  std::string await(const std::string& key, const std::string& what);

 private:
  struct Impl;
  [[noreturn]] void fail(const std::string& what, const std::string& cause);
  DistributedOptions options_;
  std::unique_ptr<Impl> impl_;
};

// One host's share of a job, as torchrun's and Slurm's launchers give it:
// `nproc` ranks here, node_rank * nproc onwards, of nnodes * nproc in all.
struct LaunchPlan {
  int nnodes = 1;
  int node_rank = 0;
  int nproc = 1;
  std::string master_addr;  // "" = 127.0.0.1 (one host only)
  int master_port = 0;      // 0 = a free port (one host only)
  std::string interface;    // passed on as GLOO_SOCKET_IFNAME
};

// Throws InputError naming the option when the plan cannot describe a job.
void check_launch_plan(const LaunchPlan& plan);

// The launcher: starts this host's ranks as copies of this executable (argv)
// with the torchrun variables set, forwards SIGINT/SIGTERM to them, and
// returns the first non-zero exit code (after stopping the others), or 0.
int spawn_workers(const LaunchPlan& plan, char** argv);

}  // namespace aiayn
