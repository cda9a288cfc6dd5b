// A checkpoint's meta.json (read_checkpoint_meta): step, data position,
// validation results, loss scale, tokenizer hashes and vocabulary sizes.
#include "fuzz/fuzz_input.h"
#include "src/common/error.h"
#include "src/train/training_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  aiayn::fuzz::write_file("meta.json", data, size);
  try {
    aiayn::read_checkpoint_meta(aiayn::fuzz::scratch().string());
  } catch (const aiayn::InputError&) {
  }
  return 0;
}
