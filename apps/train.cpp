// aiayn-train: trains a Transformer with the paper's recipe (section 5).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <memory>
#include <thread>

#include "src/common/app.h"
#include "src/common/cli.h"
#include "src/common/error.h"
#include "src/train/checkpoint_writer.h"
#include "src/train/distributed.h"
#include "src/train/train_config.h"
#include "src/train/trainer.h"

namespace {

std::atomic<bool> g_stop{false};

// First SIGINT/SIGTERM: finish the update, checkpoint, exit 0. Second: now.
void on_signal(int) {
  if (g_stop.exchange(true)) _exit(130);
  const char msg[] = "\naiayn-train: stopping after this update (again to quit at once)\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
}

}  // namespace

int main(int argc, char** argv) {
  aiayn::tune_environment(argv, /*training=*/true);
  aiayn::keep_freed_memory();
  return aiayn::run_app("aiayn-train", [&] {
    CLI::App app{
        "Train a Transformer (Vaswani et al., 2017) on a parallel corpus.\n"
        "Settings come from a JSON config (model, data, train sections; see configs/)\n"
        "and --set overrides, e.g. --set train.max_steps=2000 --set data.train_src=train.en",
        "aiayn-train"};
    app.footer("\n" + aiayn::settings_help());
    std::string config_path, save_dir, device_name = "cpu";
    std::vector<std::string> overrides;
    int64_t vocab = 0;
    int threads = 0;
    bool resume = false, summary = false;
    app.add_option("-c,--config", config_path, "JSON config (configs/*.json)")->required();
    app.add_option("-s,--save-dir", save_dir,
                   "directory for checkpoints, logs, metrics, tokenizer and token caches");
    app.add_option("--set", overrides, "override a setting: section.key=value (repeatable)");
    auto* resume_flag = app.add_flag("--resume", resume, "continue exactly from <save-dir>/last");
    std::string init;
    app.add_option("--init", init,
                   "start from these weights: a checkpoint or save directory (its last, with its "
                   "tokenizer) or a model.pt-style file (then set data.spm_model); optimizer, "
                   "schedule and data start fresh (fine-tuning)")
        ->excludes(resume_flag);
    bool record_batches = false;
    app.add_flag("--record-batches", record_batches,
                 "append every batch to <save-dir>/batches.jsonl (update, batch, epoch and the "
                 "1-based corpus lines, in order) so that another implementation can replay the "
                 "same batch order (bench/train_reference.py --replay-batches)");
    app.add_option("--threads", threads, "intra-op threads; 0 = all cores")->capture_default_str();
    app.add_option("--device", device_name, "cpu, cuda or cuda:N")->capture_default_str();
    app.add_flag("--summary", summary, "print the model summary and exit (no data needed)");
    app.add_option("--vocab", vocab, "with --summary: joint vocabulary size")->check(CLI::PositiveNumber);
    std::string average;
    app.add_option("--average", average,
                   "average checkpoints of --save-dir into <save-dir>/averaged and exit: last:K "
                   "(the newest K; K alone means the same; paper: 5 for base, 20 for big) or "
                   "best:K (the K best by validation; train with train.keep_best >= K)");
    aiayn::LaunchPlan plan;
    double dist_timeout = 300, rendezvous_timeout = 300;
    app.add_option("--nproc", plan.nproc,
                   "data-parallel: start N worker processes (ranks) on this host, each with "
                   "cores/N threads by default; launchers such as torchrun and srun set RANK, "
                   "WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT (or SLURM_PROCID, "
                   "SLURM_NTASKS, SLURM_NODELIST) instead (docs/multi-host.md)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--nnodes", plan.nnodes,
                   "data-parallel across hosts: the number of hosts, each started with --nproc "
                   "ranks, its --node-rank and the same --master-addr/--master-port")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--node-rank", plan.node_rank,
                   "this host's number, 0 to --nnodes - 1; node 0 hosts rank 0")
        ->capture_default_str();
    app.add_option("--master-addr", plan.master_addr,
                   "address of node 0 (rank 0 hosts the rendezvous store there), reachable from "
                   "every host; default 127.0.0.1 on one host");
    app.add_option("--master-port", plan.master_port,
                   "TCP port of the rendezvous store on node 0; default a free one on one host");
    app.add_option("--dist-interface", plan.interface,
                   "network interface the ranks exchange gradients on (as GLOO_SOCKET_IFNAME); "
                   "default the one this host reaches --master-addr through");
    app.add_option("--dist-timeout", dist_timeout,
                   "data-parallel: seconds a rank may go silent (dead or hung) before the others "
                   "stop with an error naming it; must exceed a validation plus a checkpoint")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--rendezvous-timeout", rendezvous_timeout,
                   "data-parallel: seconds the ranks that started wait for the others (and for "
                   "rank 0's store) before failing with the missing ranks named")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    if (int code = aiayn::parse_command_line(app, argc, argv); code >= 0) return code;

    auto dist = aiayn::distributed_from_environment();
    dist.timeout = std::chrono::milliseconds(static_cast<int64_t>(dist_timeout * 1000));
    dist.rendezvous_timeout = std::chrono::milliseconds(static_cast<int64_t>(rendezvous_timeout * 1000));
    if (!plan.interface.empty()) dist.interface = plan.interface;
    const bool launched = std::getenv("RANK") != nullptr;
    if ((plan.nproc > 1 || plan.nnodes > 1) && !launched && !summary && average.empty()) {
      aiayn::check_launch_plan(plan);
      if (!aiayn::distributed_available()) {
        throw aiayn::InputError(
            "--nproc/--nnodes: this build has no c10d/Gloo (install libgloo-dev and rebuild)");
      }
      return aiayn::spawn_workers(plan, argv);
    }
    // Ranks on one machine share its cores.
    if (threads == 0 && dist.local_world_size > 1) {
      threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / dist.local_world_size);
    }
    const int used_threads = aiayn::set_threads(threads);
    auto device = aiayn::parse_device(device_name);
    // As torchrun's convention: rank r of a machine trains on its GPU LOCAL_RANK.
    if (dist.enabled() && device.is_cuda() && !device.has_index()) {
      device = torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(dist.local_rank));
    }
    dist.device = device;
    if (summary) {
      std::cout << aiayn::model_summary(config_path, vocab) << std::endl;
      return 0;
    }
    if (save_dir.empty()) throw aiayn::InputError("--save-dir is required");
    if (!average.empty()) {
      std::cout << aiayn::average_into(save_dir, average) << std::endl;
      return 0;
    }
    auto config = aiayn::load_experiment_config(config_path, overrides);

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    aiayn::RunOptions run;
    run.save_dir = save_dir;
    run.resume = resume;
    run.init = init;
    run.device = device;
    run.threads = used_threads;
    run.config_path = config_path;
    run.progress_bar = isatty(STDOUT_FILENO) != 0;
    run.record_batches = record_batches;
    run.stop_requested = &g_stop;
    std::unique_ptr<aiayn::Communicator> communicator;
    if (dist.enabled()) communicator = std::make_unique<aiayn::Communicator>(dist);
    run.communicator = communicator.get();
    auto result = aiayn::train(config, run);
    if (dist.rank == 0) std::cout << "last checkpoint: " << result.last_checkpoint << std::endl;
    return 0;
  });
}
