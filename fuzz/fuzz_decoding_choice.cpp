// A checkpoint's decoding.json, as aiayn-translate --tune writes it and
// every translation reads it (read_decoding_choice).
#include "fuzz/fuzz_input.h"
#include "src/common/error.h"
#include "src/decode/decoding_choice.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  aiayn::fuzz::write_file("decoding.json", data, size);
  try {
    aiayn::read_decoding_choice(aiayn::fuzz::scratch().string());
  } catch (const aiayn::InputError&) {
  }
  return 0;
}
