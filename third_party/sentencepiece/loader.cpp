#include "loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace aiayn::spm {
namespace {

constexpr const char* kBridgeName = "libaiayn_spm_bridge.so";

std::string executable_dir() {
  std::vector<char> buf(4096);
  ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return {};
  std::string path(buf.data(), static_cast<size_t>(n));
  return path.substr(0, path.find_last_of('/'));
}

// Candidates in order: an explicit override, beside the executable's bin/
// (build tree and install tree), then the path the build produced.
std::vector<std::string> candidates() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("AIAYN_SPM_BRIDGE")) paths.emplace_back(env);
  std::string dir = executable_dir();
  if (!dir.empty()) {
    paths.push_back(dir + "/../lib/" + kBridgeName);
    paths.push_back(dir + "/" + kBridgeName);
  }
  paths.emplace_back(AIAYN_BRIDGE_BUILD_PATH);
  return paths;
}

struct Loaded {
  const aiayn_spm_api* api = nullptr;
  std::string path;
  std::string error;
};

Loaded load_bridge() {
  Loaded out;
  std::string tried;
  for (const auto& path : candidates()) {
    if (access(path.c_str(), R_OK) != 0) {
      tried += "\n  " + path + ": not found";
      continue;
    }
    // RTLD_LOCAL keeps SentencePiece's bundled protobuf out of the global
    // namespace; RTLD_DEEPBIND makes the bridge resolve its own protobuf
    // symbols before LibTorch's libprotobuf.so.32 (README.md).
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      tried += "\n  " + path + ": " + dlerror();
      continue;
    }
    using GetApi = const aiayn_spm_api* (*)();
    auto get = reinterpret_cast<GetApi>(dlsym(handle, "aiayn_spm_get_api"));
    if (get == nullptr || get()->version != AIAYN_SPM_API_VERSION) {
      tried += "\n  " + path + ": not a bridge of API version " + std::to_string(AIAYN_SPM_API_VERSION);
      continue;
    }
    out.api = get();
    out.path = path;
    return out;
  }
  out.error = "cannot load the SentencePiece bridge " + std::string(kBridgeName) +
              " (set AIAYN_SPM_BRIDGE to its path); tried:" + tried;
  return out;
}

const Loaded& loaded() {
  static const Loaded instance = load_bridge();
  return instance;
}

}  // namespace

const aiayn_spm_api& api() {
  const auto& l = loaded();
  if (l.api == nullptr) throw std::runtime_error(l.error);
  return *l.api;
}

std::string bridge_path() { return loaded().path; }

}  // namespace aiayn::spm
