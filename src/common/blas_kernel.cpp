#include "src/common/blas_kernel.h"

#include "src/common/build_info.h"

#include <ATen/Version.h>
#include <dlfcn.h>
#include <strings.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace aiayn {

namespace {

// OpenBLAS 0.3.x kernel names (its dynamic.c) by the widest vector unit they
// use. A choice of a lower tier than the CPU's features allow is a fallback.
int kernel_tier(const std::string& name) {
  static const std::vector<std::pair<const char*, int>> tiers = {
      {"Katmai", 0},        {"Coppermine", 0},  {"Northwood", 0},    {"Prescott", 0},   {"Banias", 0},
      {"Core2", 0},         {"Penryn", 0},      {"Dunnington", 0},   {"Nehalem", 0},    {"Atom", 0},
      {"Athlon", 0},        {"Opteron", 0},     {"Opteron_SSE3", 0}, {"Barcelona", 0},  {"Nano", 0},
      {"Unknown", 0},       {"Sandybridge", 1}, {"Bulldozer", 1},    {"Piledriver", 1}, {"Steamroller", 1},
      {"Excavator", 1},     {"Haswell", 2},     {"Zen", 2},          {"SkylakeX", 3},   {"Cooperlake", 4},
      {"SapphireRapids", 5}};
  for (const auto& [known, tier] : tiers) {
    if (strcasecmp(known, name.c_str()) == 0) return tier;
  }
  return -1;
}

// What makes a kernel the best one, for the log line.
std::string kernel_feature_note(const std::string& kernel) {
  if (kernel == "Cooperlake") return "AVX-512 BF16 present";
  if (kernel == "SkylakeX") return "AVX-512 F/BW/VL/DQ/CD present";
  if (kernel == "Haswell") return "AVX2 and FMA present";
  if (kernel == "Sandybridge") return "AVX present";
  return "";
}

using NameGetter = char* (*)();

std::string call_openblas_string(const char* symbol) {
  auto get = reinterpret_cast<NameGetter>(dlsym(RTLD_DEFAULT, symbol));
  if (get == nullptr) return "";
  const char* s = get();
  return s ? std::string(s) : std::string();
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

}  // namespace

std::string non_openblas_description(const std::string& show_config) {
  // Official builds link MKL statically: "Intel(R) oneAPI Math Kernel Library
  // Version 2024.2-Product Build ..." -> "MKL 2024.2".
  const std::string mkl = "Math Kernel Library Version ";
  if (const auto at = show_config.find(mkl); at != std::string::npos) {
    const auto begin = at + mkl.size();
    const auto end = show_config.find_first_of(" -\n", begin);
    return "MKL " + show_config.substr(begin, end - begin) + " (linked into LibTorch; no kernel to choose)";
  }
  const std::string info = build_setting(show_config, "BLAS_INFO");
  return info.empty() ? "LibTorch's own BLAS (not OpenBLAS)" : "LibTorch's own BLAS (BLAS_INFO=" + info + ")";
}

std::string CpuFeatures::describe() const {
  std::vector<std::string> bits;
  if (avx) bits.push_back("AVX");
  if (avx2) bits.push_back("AVX2");
  if (fma) bits.push_back("FMA");
  if (avx512f) {
    std::string s = "AVX-512 F";
    if (avx512bw) s += "/BW";
    if (avx512vl) s += "/VL";
    if (avx512dq) s += "/DQ";
    if (avx512cd) s += "/CD";
    bits.push_back(s);
  }
  if (avx512_vnni) bits.push_back("VNNI");
  if (avx512_bf16) bits.push_back("BF16");
  std::string out;
  for (const auto& b : bits) out += (out.empty() ? "" : " ") + b;
  return out.empty() ? "no AVX" : out;
}

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  f.vendor = vendor;
  __get_cpuid(1, &a, &b, &c, &d);
  const unsigned base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
  f.family = static_cast<int>(base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family);
  f.model = static_cast<int>(base_family == 0x6 || base_family == 0xf ? base_model + (((a >> 16) & 0xf) << 4)
                                                                      : base_model);
  const bool osxsave = (c >> 27) & 1;
  // XCR0: which register states the OS saves across context switches.
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  const bool os_avx = (xcr0 & 0x6) == 0x6;                 // XMM and YMM
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  f.avx = os_avx && ((c >> 28) & 1);
  f.fma = os_avx && ((c >> 12) & 1);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned max_subleaf = a;
    f.avx2 = os_avx && ((b >> 5) & 1);
    f.avx512f = os_avx512 && ((b >> 16) & 1);
    f.avx512dq = os_avx512 && ((b >> 17) & 1);
    f.avx512cd = os_avx512 && ((b >> 28) & 1);
    f.avx512bw = os_avx512 && ((b >> 30) & 1);
    f.avx512vl = os_avx512 && ((b >> 31) & 1);
    f.avx512_vnni = os_avx512 && ((c >> 11) & 1);
    if (max_subleaf >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      f.avx512_bf16 = os_avx512 && ((a >> 5) & 1);
    }
  }
  __get_cpuid(0x80000000, &a, &b, &c, &d);
  if (a >= 0x80000004) {
    unsigned brand[12];
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
    }
    std::string name(reinterpret_cast<const char*>(brand), sizeof brand);
    name = name.c_str();  // up to the first NUL
    const auto first = name.find_first_not_of(' ');
    f.model_name = first == std::string::npos ? "" : name.substr(first);
  }
#endif
  return f;
}

std::string best_openblas_kernel(const CpuFeatures& cpu) {
  if (cpu.avx512_skylakex() && cpu.avx512_bf16) return "Cooperlake";
  if (cpu.avx512_skylakex()) return "SkylakeX";
  if (cpu.avx2 && cpu.fma) return "Haswell";
  if (cpu.avx) return "Sandybridge";
  return "";
}

KernelDecision choose_openblas_kernel(const CpuFeatures& cpu, const std::string& openblas_choice,
                                      const std::string& user_setting) {
  const std::string best = best_openblas_kernel(cpu);
  if (!user_setting.empty()) {
    std::string why = "OPENBLAS_CORETYPE=" + user_setting + ", the user's setting";
    if (!best.empty() && strcasecmp(best.c_str(), user_setting.c_str()) != 0) {
      why += "; this CPU's best is " + best;
    }
    return {"", why};
  }
  const int chosen = kernel_tier(openblas_choice);
  // A name this table does not know is newer than it: OpenBLAS knows better.
  // Zen is OpenBLAS's choice for that vendor's CPUs, not a fallback; whether
  // the AVX-512 kernels beat it on a Zen 4 is not measured here.
  if (best.empty() || chosen < 0 || strcasecmp(openblas_choice.c_str(), "Zen") == 0 ||
      chosen >= kernel_tier(best)) {
    return {"", "OpenBLAS's choice"};
  }
  return {best,
          "OpenBLAS chose " + openblas_choice + ": CPU model unknown to it; " + kernel_feature_note(best)};
}

std::string openblas_kernel() { return call_openblas_string("openblas_get_corename"); }

bool openblas_kernel_set_by_aiayn() {
  const std::string set = env("AIAYN_OPENBLAS_SET");
  return !set.empty() && set == env("OPENBLAS_CORETYPE");
}

std::string openblas_config() { return call_openblas_string("openblas_get_config"); }

std::string describe_blas() {
  const std::string config = openblas_config();
  if (config.empty()) return non_openblas_description(at::show_config());
  // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..." -> "OpenBLAS 0.3.21"
  std::istringstream words(config);
  std::string name, version;
  words >> name >> version;
  const std::string kernel = openblas_kernel();
  std::string out = name + " " + version + ", kernel " + kernel + " (";
  const std::string chose = env("AIAYN_OPENBLAS_CHOSE"), rejected = env("AIAYN_OPENBLAS_REJECTED");
  if (!chose.empty() && openblas_kernel_set_by_aiayn()) {
    out += "OpenBLAS chose " + chose + ": CPU model unknown to it; " + kernel_feature_note(kernel);
  } else if (!rejected.empty()) {
    out += "OpenBLAS's choice; " + rejected;
  } else {
    const auto decision = choose_openblas_kernel(detect_cpu_features(), kernel, env("OPENBLAS_CORETYPE"));
    if (decision.set.empty()) {
      out += decision.why;
    } else {
      out += std::string("OpenBLAS's choice, ") +
             (env("AIAYN_NO_REEXEC").empty() ? "as the re-exec failed" : "kept by AIAYN_NO_REEXEC") +
             "; this CPU runs " + decision.set + ", " + kernel_feature_note(decision.set);
    }
  }
  if (config.find("DYNAMIC_ARCH") == std::string::npos) out += "; built for one CPU, no other kernel";
  return out + ")";
}

double blas_check_error() {
  torch::NoGradGuard no_grad;
  double worst = 0;
  // Fixed values, not the random generator: the caller's seed stays untouched.
  auto values = [](int64_t rows, int64_t cols, double phase) {
    return torch::sin(torch::arange(rows * cols, torch::kFloat) * 0.7311 + phase)
        .reshape({rows, cols});  // [rows, cols]
  };
  // Odd sizes reach the kernels' edge code; the transposed views reach their
  // other packing routines.
  const std::vector<std::array<int64_t, 3>> shapes = {{67, 129, 45}, {256, 192, 160}, {5, 300, 7}};
  for (const auto& [m, k, n] : shapes) {
    for (bool transposed : {false, true}) {
      auto a = transposed ? values(k, m, 0.1).t() : values(m, k, 0.1);  // [m, k]
      auto b = transposed ? values(n, k, 1.3).t() : values(k, n, 1.3);  // [k, n]
      auto c = torch::mm(a, b);                                         // [m, n]
      auto a64 = a.to(torch::kDouble).contiguous(), b64 = b.to(torch::kDouble).contiguous();
      auto c64 = c.to(torch::kDouble).contiguous();
      const double *pa = a64.data_ptr<double>(), *pb = b64.data_ptr<double>(), *pc = c64.data_ptr<double>();
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double sum = 0, magnitude = 0;
          for (int64_t l = 0; l < k; ++l) {
            sum += pa[i * k + l] * pb[l * n + j];
            magnitude += std::abs(pa[i * k + l] * pb[l * n + j]);
          }
          const double error = std::abs(pc[i * n + j] - sum) / std::max(magnitude, 1e-30);
          if (!std::isfinite(error)) return INFINITY;
          worst = std::max(worst, error);
        }
      }
    }
  }
  return worst;
}

}  // namespace aiayn
