// Decoding settings chosen on validation data and kept with the checkpoint
// (<checkpoint>/decoding.json), so that aiayn-translate uses the beam and
// length penalty that were measured best rather than a default. Choosing
// them on the test set would report a tuned number: give validation data.
#pragma once
#include <torch/torch.h>

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "src/decode/translator.h"

namespace aiayn {

struct DecodingChoice {
  int64_t beam = 4;
  double alpha = 0.6;
  double bleu = 0;       // on the data it was chosen on
  std::string chosen_on;  // "<source file> -> <reference file>"
};

// <dir>/decoding.json, or nothing when the checkpoint has none. InputError
// naming the file when it is damaged.
std::optional<DecodingChoice> read_decoding_choice(const std::string& dir);

struct TuneJob {
  std::string checkpoint;       // one checkpoint directory (or save directory: its last)
  std::string input, reference; // validation source and reference
  std::vector<int64_t> beams = {1, 4, 5, 8};
  std::vector<double> alphas = {0.0, 0.3, 0.6, 1.0, 1.5, 2.0};
  TranslateOptions options;     // batching, workers, max length; beam and alpha are swept
  bool lowercase = false;       // choose by lowercased BLEU
  bool raw_weights = false;
  torch::Device device = torch::kCPU;
  bool packed_weights = true;   // as TranslateJob's (set_decoding_threads decides it)
};

// Translates the input with every beam x alpha (alpha only for beams > 1),
// prints a table of BLEU to `log`, writes the best as <checkpoint>/decoding.json
// (atomically) and returns it. Ties go to the smaller beam, then smaller alpha.
// A choice on the edge of the alpha grid is reported as such: a wider grid
// may score higher.
DecodingChoice run_tune_job(const TuneJob& job, std::ostream& log);

}  // namespace aiayn
