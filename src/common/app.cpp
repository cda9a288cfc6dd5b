#include "src/common/app.h"

#include <dlfcn.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <thread>

#include "aiayn_version.h"
#include "src/common/blas_kernel.h"
#include "src/common/build_info.h"
#include "src/common/error.h"

namespace aiayn {

int run_app(const std::string& name, const std::function<int()>& body) {
  // A file-size limit (ulimit -f) then fails the write with EFBIG, reported
  // like a full disk, instead of killing the process mid-file.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    check_nccl_matches();
    return body();
  } catch (const OptionError& e) {
    std::cerr << name << ": error: " << e.render([](const std::string& key) { return "--" + key; }) << "\n";
    return 2;
  } catch (const InputError& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 2;
  } catch (const IOError& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 1;
  } catch (const DivergenceError& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 3;
  } catch (const DistributedError& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << name << ": internal error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << name << ": internal error: " << e.what() << "\n";
    return 1;
  }
}

namespace {

// OpenBLAS reports how it runs its pool: 0 sequential, 1 pthreads, 2 OpenMP.
// -1: the BLAS is not OpenBLAS (an official LibTorch uses MKL on OpenMP).
int openblas_parallel() {
  using Getter = int (*)();
  auto get = reinterpret_cast<Getter>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  return get ? get() : -1;
}

bool user_chose_passive_wait() {
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  return wait != nullptr && strcasecmp(wait, "passive") == 0;
}

bool is_set(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0';
}

}  // namespace

namespace {

// Largest error a float kernel may make on blas_check_error's products,
// relative to sum |a*b|: float rounding gives ~1e-7; a broken kernel, O(1).
constexpr double kBlasTolerance = 1e-4;

// Sets OPENBLAS_CORETYPE when OpenBLAS fell back to a generic kernel
// (src/common/blas_kernel.h). In the image started with it, checks the kernel on a
// small product; a wrong result puts OpenBLAS's own choice back. Returns
// whether the process must re-execute to apply what it set.
bool tune_blas_kernel() {
  const std::string kernel = openblas_kernel();
  if (kernel.empty() || is_set("AIAYN_OPENBLAS_REJECTED")) return false;
  // A library built for one CPU has no other kernel to switch to.
  if (openblas_config().find("DYNAMIC_ARCH") == std::string::npos) return false;
  if (is_set("AIAYN_OPENBLAS_CHOSE") && !openblas_kernel_set_by_aiayn()) {
    // Inherited from an aiayn parent (a test, a script) by a process whose
    // OPENBLAS_CORETYPE someone changed since: that setting is theirs.
    unsetenv("AIAYN_OPENBLAS_CHOSE");
    unsetenv("AIAYN_OPENBLAS_SET");
  }
  if (is_set("AIAYN_OPENBLAS_CHOSE")) {
    const double error = blas_check_error();
    if (error <= kBlasTolerance) return false;
    char note[160];
    std::snprintf(note, sizeof note, "%s was rejected: its check product erred by %.2g", kernel.c_str(),
                  error);
    std::cerr << "warning: OpenBLAS kernel " << kernel << " failed a check against a float64 product "
              << "(relative error " << error << "); keeping OpenBLAS's own choice\n";
    setenv("AIAYN_OPENBLAS_REJECTED", note, 1);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("AIAYN_OPENBLAS_CHOSE");
    unsetenv("AIAYN_OPENBLAS_SET");
    return true;
  }
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  const auto decision = choose_openblas_kernel(detect_cpu_features(), kernel, user ? user : "");
  if (decision.set.empty()) return false;
  setenv("OPENBLAS_CORETYPE", decision.set.c_str(), 1);
  setenv("AIAYN_OPENBLAS_CHOSE", kernel.c_str(), 1);
  setenv("AIAYN_OPENBLAS_SET", decision.set.c_str(), 1);
  return true;
}

// OMP_WAIT_POLICY and OPENBLAS_THREAD_TIMEOUT for training (see app.h).
bool tune_thread_pools() {
  if (is_set("AIAYN_TUNED") || openblas_parallel() != 1) return false;
  std::string tuned;
  if (!is_set("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    tuned += "OMP_WAIT_POLICY";
  }
  if (!is_set("OPENBLAS_THREAD_TIMEOUT")) {
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    tuned += tuned.empty() ? "OPENBLAS_THREAD_TIMEOUT" : ",OPENBLAS_THREAD_TIMEOUT";
  }
  if (tuned.empty()) return false;
  // Which variables were ours, for describe_threads(); also stops a second exec.
  setenv("AIAYN_TUNED", tuned.c_str(), 1);
  return true;
}

}  // namespace

void tune_environment(char** argv, bool training) {
#ifdef __linux__
  if (is_set("AIAYN_NO_REEXEC")) return;
  const bool blas = tune_blas_kernel();
  const bool pools = training && tune_thread_pools();
  if (!blas && !pools) return;
  execv("/proc/self/exe", argv);
  // exec failed (no /proc?): go on as loaded; describe_blas() says so.
  unsetenv("AIAYN_TUNED");
  unsetenv("AIAYN_OPENBLAS_CHOSE");
  unsetenv("AIAYN_OPENBLAS_SET");
#else
  (void)argv;
  (void)training;
#endif
}

void keep_freed_memory() {
#ifdef M_MMAP_MAX
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
#endif
}

void set_blas_threads(int threads) {
  // OpenBLAS keeps a thread pool of its own, which set_num_threads leaves alone.
  using Setter = void (*)(int);
  if (auto set = reinterpret_cast<Setter>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(threads);
  }
}

std::string describe_threads() {
  using Getter = int (*)();
  auto blas = reinterpret_cast<Getter>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  const char* tuned = std::getenv("AIAYN_TUNED");
  const bool ours = tuned != nullptr && std::string(tuned).find("OMP_WAIT_POLICY") != std::string::npos;
  return "LibTorch intra-op " + std::to_string(torch::get_num_threads()) +
         (blas ? ", OpenBLAS " + std::to_string(blas()) : std::string()) + " (OMP_WAIT_POLICY " +
         (wait ? wait : "unset") + (ours ? ", set by aiayn" : "") + ")";
}

int set_threads(int threads) {
  if (threads < 0) throw InputError("--threads must be >= 0 (0 = all cores), got " + std::to_string(threads));
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Debian's LibTorch multiplies matrices with OpenBLAS on a pthread pool,
  // while its other kernels run on libgomp's OpenMP pool, whose workers spin
  // after each parallel region by default. Two pools as large as the machine
  // then fight for its cores: here (2 cores) that cost 1.4x in training and
  // 4x in decoding one batch at a time (README, Threads). So OpenBLAS gets
  // the cores and the OpenMP pool one thread -- unless OMP_WAIT_POLICY=PASSIVE
  // (set by tune_environment, or by the user), which lets both pools have
  // every core without the fight.
  const bool pools_fight = openblas_parallel() == 1 && !user_chose_passive_wait();
  torch::set_num_threads(pools_fight ? 1 : threads);
  set_blas_threads(threads);
  return threads;
}

std::string describe_cpu() {
  const auto cpu = detect_cpu_features();
  return (cpu.model_name.empty() ? std::string("unknown CPU") : cpu.model_name) + " (" +
         (cpu.vendor.empty() ? std::string("?") : cpu.vendor) + " family " + std::to_string(cpu.family) +
         " model " + std::to_string(cpu.model) + "; " + cpu.describe() + "), " +
         std::to_string(std::thread::hardware_concurrency()) + " cores";
}

std::string version_text(const std::string& app_name) {
  const auto build = build_info();
  return app_name + " " + AIAYN_VERSION + "\n" + describe_build(build) + "\nBLAS: " + build.blas +
         "\nCPU: " + describe_cpu();
}

torch::Device parse_device(const std::string& name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw InputError("--device: unknown device \"" + name + "\" (use cpu, cuda or cuda:N)");
  }
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw InputError("--device " + name + ": CUDA is not available in this LibTorch build or machine");
  }
  return device;
}

}  // namespace aiayn
