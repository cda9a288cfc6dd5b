// Decoding settings chosen on validation data and kept with the checkpoint
// (<checkpoint>/decoding.json), so that aiayn-translate uses the beam and
// length penalty that were measured best rather than a default. Choosing
// them on the test set would report a tuned number: give validation data.
#pragma once
#include <torch/torch.h>

#include <iosfwd>
#include <optional>
#include <string>

#include "src/decode/translate_job.h"

namespace aiayn {

struct DecodingChoice {
  int64_t beam = 4;
  double alpha = 0.6;
  double bleu = 0;        // on the data it was chosen on
  std::string chosen_on;  // "<source file> -> <reference file>"
};

// <dir>/decoding.json, or nothing when the checkpoint has none. InputError
// naming the file when it is damaged.
std::optional<DecodingChoice> read_decoding_choice(const std::string& dir);

// Translates the input with every beam x alpha (alpha only for beams > 1),
// prints a table of BLEU to `log`, writes the best as <checkpoint>/decoding.json
// (atomically) and returns it. Ties go to the smaller beam, then smaller alpha.
// A choice on the edge of the alpha grid is reported as such: a wider grid
// may score higher.
DecodingChoice run_tune_job(const TuneJob& job, std::ostream& log);

}  // namespace aiayn
