// `aiayn-train --average SPEC` ("last:K", "best:K", "K"), as
// checkpoints_to_average reads it, over a save directory of three
// checkpoints, two of them validated (made once, here).
#include <cstdlib>

#include "fuzz/fuzz_input.h"
#include "src/common/error.h"
#include "src/train/checkpoint_list.h"

namespace {

const std::string& save_dir() {
  static const std::string dir = [] {
    const auto d = aiayn::fuzz::scratch() / "save";
    const char* valid[] = {"null", "2.5", "1.5"};
    for (int i = 0; i < 3; ++i) {
      const auto c = d / ("checkpoint_00000" + std::to_string(i + 1));
      std::filesystem::create_directories(c);
      std::ofstream(c / "meta.json") << R"({"format": 1, "step": )" << i + 1
                                     << R"(, "epoch": 0, "batch_index": 0,
 "skipped_updates": 0, "best_valid": null, "stale_validations": 0, "train_seconds": 1.0,
 "valid_criterion": )" << valid[i] << R"(, "tokenizer_hash": "ab12", "vocab_size": 100})";
    }
    return d.string();
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto dirs = aiayn::checkpoints_to_average(save_dir(), aiayn::fuzz::text(data, size));
    if (dirs.empty()) std::abort();  // a spec that picks nothing must be refused
  } catch (const aiayn::InputError&) {
  }
  return 0;
}
