#include "src/app.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>
#include <spdlog/spdlog.h>
#include <strings.h>

#include <cstdlib>
#include <iostream>
#include <limits>
#include <thread>

#include "src/distributed.h"
#include "src/error.h"

namespace aiayn {

int run_app(const std::string& name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const InputError& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 2;
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

void tune_environment(char** argv) {
#ifdef __linux__
  if (is_set("AIAYN_NO_REEXEC") || is_set("AIAYN_TUNED") || openblas_parallel() != 1) return;
  std::string tuned;
  if (!is_set("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    tuned += "OMP_WAIT_POLICY";
  }
  if (!is_set("OPENBLAS_THREAD_TIMEOUT")) {
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    tuned += tuned.empty() ? "OPENBLAS_THREAD_TIMEOUT" : ",OPENBLAS_THREAD_TIMEOUT";
  }
  if (tuned.empty()) return;
  // Which variables were ours, for describe_threads(); also stops a second exec.
  setenv("AIAYN_TUNED", tuned.c_str(), 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc?): go on untuned; the thread split below copes.
  unsetenv("AIAYN_TUNED");
#else
  (void)argv;
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
         (blas ? ", OpenBLAS " + std::to_string(blas()) : std::string()) +
         " (OMP_WAIT_POLICY " + (wait ? wait : "unset") + (ours ? ", set by aiayn" : "") + ")";
}

int set_threads(int threads) {
  if (threads < 0) throw InputError("--threads must be >= 0 (0 = all cores), got " +
                                    std::to_string(threads));
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
