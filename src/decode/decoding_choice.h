// Decoding settings chosen on validation data and kept with the checkpoint
// (<checkpoint>/decoding.json), so that aiayn-translate uses the beam and
// length penalty that were measured best rather than a default. Choosing
// them on the test set would report a tuned number: give validation data.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

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

// One point of the tuning grid and its validation BLEU.
struct TunedPoint {
  int64_t beam = 1;
  double alpha = 0;  // 0 for beam 1
  double bleu = 0;
};

struct TuneSearch {
  std::vector<TunedPoint> grid;  // every point tried, in order
  TunedPoint best;               // ties go to the point tried first
  std::vector<double> added;     // alphas tried beyond the given grid
  bool edge_at_limit = false;    // the best alpha is the largest tried, and that is the limit
};

// Scores every beam x alpha (alpha only for beams > 1, where it ranks
// hypotheses), printing a table to `log`. While the best alpha is the
// grid's largest, the grid grows by its last step (0.5 for a one-value grid)
// for every beam > 1, up to `alpha_limit`, and the log says so: a length
// penalty that still wins at the edge may win further out. `bleu` scores
// one (beam, alpha).
TuneSearch search_decoding_grid(const std::vector<int64_t>& beams, const std::vector<double>& alphas,
                                double alpha_limit,
                                const std::function<double(int64_t beam, double alpha)>& bleu,
                                std::ostream& log);

// Translates the input with the grid of search_decoding_grid, writes the best
// as <checkpoint>/decoding.json (atomically, with every point tried) and
// returns it.
DecodingChoice run_tune_job(const TuneJob& job, std::ostream& log);

}  // namespace aiayn
