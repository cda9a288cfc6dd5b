// A config file's text through to validated configs: strict JSON, every
// section's keys, their ranges and the rules between them
// (load_experiment_config). Bytes after a first NUL are --set overrides,
// one per line, as aiayn-train passes them.
#include "fuzz/fuzz_input.h"
#include "src/common/error.h"
#include "src/train/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input = aiayn::fuzz::text(data, size);
  const auto nul = input.find('\0');
  std::vector<std::string> overrides;
  if (nul != std::string::npos) {
    std::string rest = input.substr(nul + 1);
    for (size_t start = 0; start <= rest.size();) {
      auto end = rest.find('\n', start);
      if (end == std::string::npos) end = rest.size();
      overrides.push_back(rest.substr(start, end - start));
      start = end + 1;
    }
  }
  const auto path = aiayn::fuzz::write_file("config.json", data, nul == std::string::npos ? size : nul);
  try {
    aiayn::load_experiment_config(path, overrides);
  } catch (const aiayn::InputError&) {
  }
  return 0;
}
