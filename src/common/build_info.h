// What this executable was built with and runs on: LibTorch, CUDA, cuDNN,
// NCCL, the BLAS, the C++ standard and ABI. Read from LibTorch itself
// (at::show_config, the loaded NCCL) and from what configure compiled in
// (aiayn_version.h), never from guesses, so that --version, the logs and
// the first record of metrics.jsonl say which of the two build flavours
// (docs/libtorch2.md) produced a figure.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace aiayn {

struct BuildInfo {
  std::string libtorch;       // "2.13.0"
  std::string cxx;            // "C++20, libstdc++ cxx11 ABI"
  bool cuda = false;          // LibTorch was built with CUDA
  std::string cuda_version;   // the CUDA it was built with, "13.0"; "" without
  std::string cudnn_version;  // "9.20.0"; "" without
  std::string nccl_header;    // the nccl.h compiled against; "" without c10d's NCCL
  std::string nccl_loaded;    // the NCCL library in this process; "" when none is loaded
  int cuda_devices = 0;       // CUDA devices this process sees
  std::string blas;           // describe_blas()
};

BuildInfo build_info();

// The value of `key` in at::show_config()'s "Build settings: K=V, K=V, ..."
// line ("CUDA_VERSION" -> "13.0"), or "" where the key is absent.
std::string build_setting(const std::string& show_config, const std::string& key);

// "LibTorch 2.13.0 (C++20, libstdc++ cxx11 ABI); CUDA 13.0 compiled in (cuDNN
// 9.20.0, NCCL 2.29.7), 0 devices seen" -- one line for --version and logs.
std::string describe_build(const BuildInfo& info);
nlohmann::json build_json(const BuildInfo& info);

// The refusal for an NCCL header that is not the loaded NCCL (a mismatch
// corrupts memory in ProcessGroupNCCL's inline code), or "" when they match
// or either is absent.
std::string nccl_mismatch(const std::string& header, const std::string& loaded);

// Run at every executable's start: throws InputError with nccl_mismatch's
// message when this process loaded another NCCL than the one compiled for.
void check_nccl_matches();

}  // namespace aiayn
