// Pharaoh alignments: a line of gold links ("i-j" sure, "i?j" or "ipj"
// possible) as aiayn-attention --gold-alignment reads it
// (parse_gold_alignment), then checked against a pair of 8 and 8 units.
#include "fuzz/fuzz_input.h"
#include "src/common/error.h"
#include "src/decode/alignment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto gold = aiayn::parse_gold_alignment(aiayn::fuzz::text(data, size), "gold.txt:1");
    aiayn::check_gold_alignment(gold, 8, 8);
  } catch (const aiayn::InputError&) {
  }
  return 0;
}
