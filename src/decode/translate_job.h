// What aiayn-translate does, as a library call: checkpoints and text in,
// translations, speed and (given references) BLEU and chrF out.
#pragma once
#include <torch/torch.h>

#include <iosfwd>
#include <set>
#include <string>
#include <vector>

#include "src/decode/model_loader.h"
#include "src/decode/translator.h"

namespace aiayn {

// How each translation is written: detokenized text, the target pieces, or
// their ids (space-separated).
enum class OutputFormat { text, pieces, ids };

struct TranslateJob {
  ModelLoadOptions model;    // checkpoints and how to load them (src/decode/model_loader.h)
  std::string input = "-";   // "-" = stdin, streamed line by line
  std::string output = "-";  // "-" = stdout
  TranslateOptions options;  // options.precision is taken from model.precision
  OutputFormat output_format = OutputFormat::text;
  bool scores = false;        // "i ||| text ||| score ||| log-prob" lines
  std::string reference;      // score the output against this file
  std::string prefix;         // target prefixes, one per input line, forced
  std::string score_targets;  // instead of translating: score these targets, one per line
  bool lowercase = false;     // case-insensitive BLEU/chrF
  // The options the user set, by key (the command line's flags without
  // "--"): validate() refuses combinations by them, and beam and alpha
  // given win over the checkpoint's decoding.json.
  std::set<std::string> given;

  // The rules of the modes (translate, sampling, forced scoring, --tune) and
  // the search options', all here: OptionError naming the key.
  void validate() const;
  // Beam and alpha from decoding.json, unless the user set them.
  bool uses_recorded_decoding() const;
};

// aiayn-translate --tune: the translation job's model, data and batching,
// with a grid of beams and length penalties to choose from.
struct TuneJob {
  TranslateJob translate;  // input and reference are the validation data
  std::vector<int64_t> beams = {1, 4, 5, 8};
  std::vector<double> alphas = {0.0, 0.3, 0.6, 1.0, 1.5, 2.0};
  // While the best alpha is the grid's largest, larger ones are tried, up to
  // this (search_decoding_grid in src/decode/decoding_choice.h).
  double alpha_limit = 4.0;

  // translate.validate() and tuning's own needs: OptionError naming the key.
  void validate() const;
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

// The job's translator and options: its checkpoints loaded, beam and alpha
// from decoding.json where the user gave neither. The job is validated by
// the caller.
struct PreparedTranslator {
  Translator translator;
  TranslateOptions options;
};
PreparedTranslator prepare_translator(const TranslateJob& job, std::ostream& log);

// Translates as the job says, writing translations to job.output and
// warnings and the summary to `log`. Throws InputError for bad input; an
// output file is written under a temporary name and renamed at the end.
TranslateReport run_translate_job(const TranslateJob& job, std::ostream& log);

}  // namespace aiayn
