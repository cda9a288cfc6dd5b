#include "src/common/build_info.h"

#include <ATen/Version.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include "aiayn_version.h"
#include "src/common/blas_kernel.h"
#include "src/common/error.h"

namespace aiayn {

namespace {

// The NCCL this process loaded (a CUDA LibTorch links it), asked through
// dlsym so that no layer below c10d needs nccl.h; what c10d::getNcclVersion
// asks too.
std::string loaded_nccl_version() {
  using Getter = int (*)(int*);
  auto get = reinterpret_cast<Getter>(dlsym(RTLD_DEFAULT, "ncclGetVersion"));
  int code = 0;
  if (get == nullptr || get(&code) != 0 || code <= 0) return "";
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch, older *1000 + *100.
  const int major = code >= 10000 ? code / 10000 : code / 1000;
  const int minor = code >= 10000 ? code % 10000 / 100 : code % 1000 / 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(code % 100);
}

std::string cxx_description() {
  std::string standard = "C++" + std::to_string(AIAYN_CXX_STANDARD);
#if defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI
  return standard + ", libstdc++ cxx11 ABI";
#elif defined(_GLIBCXX_USE_CXX11_ABI)
  return standard + ", libstdc++ pre-cxx11 ABI";
#else
  return standard;
#endif
}

}  // namespace

std::string build_setting(const std::string& show_config, const std::string& key) {
  for (const std::string separator : {" ", ","}) {
    const auto at = show_config.find(separator + key + "=");
    if (at == std::string::npos) continue;
    const auto begin = at + separator.size() + key.size() + 1;
    const auto end = show_config.find_first_of(",\n", begin);
    return show_config.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  }
  return "";
}

BuildInfo build_info() {
  BuildInfo info;
  info.libtorch = TORCH_VERSION;
  info.cxx = cxx_description();
  const std::string config = at::show_config();
  const std::string use_cuda = build_setting(config, "USE_CUDA");
  info.cuda = use_cuda == "1" || use_cuda == "ON";
  if (info.cuda) {
    info.cuda_version = build_setting(config, "CUDA_VERSION");
    info.cudnn_version = build_setting(config, "CUDNN_VERSION");
  }
  info.nccl_header = AIAYN_NCCL_HEADER_VERSION;
  info.nccl_loaded = loaded_nccl_version();
  info.cuda_devices = static_cast<int>(torch::cuda::device_count());
  info.blas = describe_blas();
  return info;
}

std::string describe_build(const BuildInfo& info) {
  std::string out = "LibTorch " + info.libtorch + " (" + info.cxx + "); ";
  if (!info.cuda) return out + "CPU only, no CUDA compiled in";
  out += "CUDA " + info.cuda_version + " compiled in (cuDNN " +
         (info.cudnn_version.empty() ? std::string("none") : info.cudnn_version) + ", NCCL ";
  if (!info.nccl_loaded.empty()) {
    out += info.nccl_loaded + (info.nccl_header.empty() ? ", its c10d backend not built" : "");
  } else {
    out += "not loaded";
  }
  return out + "), " + std::to_string(info.cuda_devices) + " device" + (info.cuda_devices == 1 ? "" : "s") +
         " seen";
}

nlohmann::json build_json(const BuildInfo& info) {
  return {{"libtorch", info.libtorch},         {"cxx", info.cxx},          {"cuda", info.cuda_version},
          {"cudnn", info.cudnn_version},       {"nccl", info.nccl_loaded}, {"nccl_header", info.nccl_header},
          {"cuda_devices", info.cuda_devices}, {"blas", info.blas}};
}

std::string nccl_mismatch(const std::string& header, const std::string& loaded) {
  if (header.empty() || loaded.empty() || header == loaded) return "";
  return "NCCL header mismatch: built against nccl.h of NCCL " + header + " but this process loaded NCCL " +
         loaded +
         "; c10d's NCCL backend would corrupt memory: rebuild with -DNCCL_INCLUDE_DIR=<include of NCCL " +
         loaded + "> (scripts/build.sh --torch pip picks the wheel's), or run with the NCCL it was built for";
}

void check_nccl_matches() {
  const std::string header = AIAYN_NCCL_HEADER_VERSION;
  if (header.empty()) return;
  if (auto why = nccl_mismatch(header, loaded_nccl_version()); !why.empty()) throw InputError(why);
}

}  // namespace aiayn
