#include "src/train/checkpoint_list.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "src/common/error.h"
#include "src/train/training_state.h"

namespace aiayn {

namespace fs = std::filesystem;

std::vector<std::string> checkpoint_dirs(const std::string& save_dir) {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(save_dir, ec)) {
    auto name = e.path().filename().string();
    if (e.is_directory() && !e.is_symlink() && name.rfind("checkpoint_", 0) == 0 &&
        fs::exists(e.path() / "meta.json")) {
      dirs.push_back(e.path().string());
    }
  }
  if (ec) throw InputError(save_dir + ": cannot list checkpoints: " + ec.message());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::vector<std::string> best_validated(const std::vector<std::string>& dirs, int64_t count) {
  std::vector<std::pair<double, std::string>> scored;
  for (const auto& d : dirs) {
    const double c = read_checkpoint_meta(d).state.valid_criterion;
    if (std::isfinite(c)) scored.emplace_back(c, d);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  });
  if (static_cast<int64_t>(scored.size()) > count) scored.resize(static_cast<size_t>(count));
  std::vector<std::string> out;
  for (const auto& [c, d] : scored) out.push_back(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> last_checkpoints(const std::string& save_dir, int64_t count) {
  auto dirs = checkpoint_dirs(save_dir);
  if (static_cast<int64_t>(dirs.size()) > count) dirs.erase(dirs.begin(), dirs.end() - count);
  if (dirs.empty()) throw InputError(save_dir + ": holds no checkpoint_<step> directories");
  return dirs;
}

std::vector<std::string> best_checkpoints(const std::string& save_dir, int64_t count) {
  auto dirs = best_validated(checkpoint_dirs(save_dir), count);
  if (dirs.empty()) {
    throw InputError(save_dir +
                     ": holds no validated checkpoint (best:K needs a validation set; "
                     "use last:K)");
  }
  return dirs;
}

std::vector<std::string> checkpoints_to_average(const std::string& save_dir, const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string kind = colon == std::string::npos ? "last" : spec.substr(0, colon);
  const std::string number = colon == std::string::npos ? spec : spec.substr(colon + 1);
  int64_t count = 0;
  try {
    size_t used = 0;
    count = std::stoll(number, &used);
    if (used != number.size()) count = 0;
  } catch (const std::exception&) {
    count = 0;
  }
  if (count <= 0 || (kind != "last" && kind != "best")) {
    throw InputError("--average " + spec + ": give last:K or best:K with K >= 1 (or K alone, = last:K)");
  }
  return kind == "best" ? best_checkpoints(save_dir, count) : last_checkpoints(save_dir, count);
}

}  // namespace aiayn
