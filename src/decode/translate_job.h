// What aiayn-translate does, as a library call: checkpoints and text in,
// translations, speed and (given references) BLEU and chrF out.
#pragma once
#include <torch/torch.h>

#include <iosfwd>
#include <string>
#include <vector>

#include "src/decode/translator.h"

namespace aiayn {

// How each translation is written: detokenized text, the target pieces, or
// their ids (space-separated).
enum class OutputFormat { text, pieces, ids };

// What several checkpoints make: an ensemble (their log-probabilities
// averaged at every step) or one model (their weights averaged, as section
// 6.1 does with the last checkpoints of a run).
enum class Combine { one, ensemble, average_weights };

struct TranslateJob {
  std::vector<std::string> checkpoints;  // one, or several to combine
  Combine combine = Combine::one;        // several need ensemble or average_weights
  std::string input = "-";               // "-" = stdin, streamed line by line
  std::string output = "-";              // "-" = stdout
  TranslateOptions options;
  OutputFormat output_format = OutputFormat::text;
  bool scores = false;                   // "i ||| text ||| score ||| log-prob" lines
  std::string reference;                 // score the output against this file
  std::string prefix;                    // target prefixes, one per input line, forced
  std::string score_targets;             // instead of translating: score these targets, one per line
  std::string mask_heads;                // heads to ablate: enc:L:H,dec:L:H,cross:L:H (src/decode/head_mask.h)
  bool lowercase = false;                // case-insensitive BLEU/chrF
  torch::Device device = torch::kCPU;
  bool int8 = false;                     // dynamic int8 linear layers (CPU)
  // Float weights packed once for the CPU's vector unit (models/packed_linear.h),
  // for workers of one thread each (set_decoding_threads); false: the BLAS
  // at every call, as in training.
  bool packed_weights = true;
  bool raw_weights = false;              // an EMA run's raw weights instead of the average
  // Beam and alpha from the checkpoint's decoding.json (aiayn-translate
  // --tune), when it has one; false when the user set them.
  bool recorded_decoding = true;
};

struct TranslateReport {
  int64_t sentences = 0;
  int64_t output_tokens = 0;
  double seconds = 0;
  std::string bleu, chrf;  // formatted scores with signatures, when a reference was given
  double bleu_score = 0;
  int64_t exact_matches = 0;  // hypotheses equal to their reference line
};

// Threads for decoding, `threads` in all (after set_threads): several
// workers multiply each on its own thread, with packed weights; one worker
// on several threads keeps the BLAS, whose own pool splits each product.
// The packed kernel runs on the thread that calls it, and splitting it on
// LibTorch's OpenMP pool lost to OpenBLAS's pool (greedy, Multi30k, 2 cores:
// 293 against 352 sentences/s; single-threaded, packed wins 326 to 264).
void set_decoding_threads(TranslateJob& job, int threads);

// Translates as the job says, writing translations to job.output and
// warnings and the summary to `log`. Throws InputError for bad input; an
// output file is written under a temporary name and renamed at the end.
TranslateReport run_translate_job(const TranslateJob& job, std::ostream& log);

}  // namespace aiayn
