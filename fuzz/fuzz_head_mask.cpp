// `--mask-heads enc:L:H,dec:L:H,cross:L:H` (parse_head_mask) against a
// model of 6 encoder and 6 decoder layers of 8 heads.
#include "fuzz/fuzz_input.h"
#include "src/common/error.h"
#include "src/decode/head_mask.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  aiayn::ModelConfig config;
  config.encoder_layers = config.decoder_layers = 6;
  config.heads = 8;
  try {
    aiayn::parse_head_mask(aiayn::fuzz::text(data, size), config);
  } catch (const aiayn::InputError&) {
  }
  return 0;
}
