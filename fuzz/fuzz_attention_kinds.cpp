// aiayn-attention's `--kinds encoder,decoder,cross` (parse_attention_kinds).
// The attention dump itself (JSON Lines) is read back only by Python
// (tools/plot_attention.py, tools/head_importance.py) and the viewer's
// JavaScript; this is the attention tool's own C++ reader of user text,
// beside --mask-heads (fuzz_head_mask) and --gold-alignment (fuzz_gold_alignment).
#include "fuzz/fuzz_input.h"
#include "src/attention/attention_job.h"
#include "src/common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  aiayn::AttentionExportOptions options;
  try {
    aiayn::parse_attention_kinds(aiayn::fuzz::text(data, size), &options);
  } catch (const aiayn::InputError&) {
  }
  return 0;
}
