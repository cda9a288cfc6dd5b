#include "src/decode/translate_job.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <tuple>

#include "src/common/app.h"
#include "src/common/blas_kernel.h"
#include "src/common/build_info.h"
#include "src/common/error.h"
#include "src/common/output_file.h"
#include "src/common/text_reader.h"
#include "src/decode/bleu.h"
#include "src/decode/checkpoint_reader.h"
#include "src/decode/decoding_choice.h"

namespace aiayn {

namespace fs = std::filesystem;

namespace {

std::string render(const Translator& translator, const Hypothesis& h, const std::string& text,
                   OutputFormat format) {
  if (format == OutputFormat::text) return text;
  std::string out;
  for (int64_t id : h.tokens) {
    if (!out.empty()) out += ' ';
    out += format == OutputFormat::ids ? std::to_string(id)
                                       : translator.tokenizer().piece(static_cast<int32_t>(id));
  }
  return out;
}

// Writes one input line's output: its best translation, or with scores every
// n-best hypothesis as "index ||| text ||| score ||| log-prob".
void write_translation(std::ostream& out, const Translator& translator, const Translation& t, int64_t index,
                       const TranslateJob& job) {
  // With alignments, each line ends in " ||| 0-0 1-2 ..." (Marian's layout).
  auto links = [&](size_t k) {
    return job.options.alignment ? " ||| " + (k < t.alignments.size() ? t.alignments[k] : std::string()) : "";
  };
  if (!job.scores) {
    out << (t.hypotheses.empty() ? "" : render(translator, t.hypotheses[0], t.texts[0], job.output_format))
        << links(0) << '\n';
    return;
  }
  if (t.hypotheses.empty()) out << index << " |||  ||| -inf ||| -inf" << links(0) << "\n";
  char buf[64];
  for (size_t k = 0; k < t.hypotheses.size(); ++k) {
    const auto& h = t.hypotheses[k];
    std::snprintf(buf, sizeof buf, " ||| %.6f ||| %.6f", h.score, h.log_prob);
    out << index << " ||| " << render(translator, h, t.texts[k], job.output_format) << buf << links(k)
        << '\n';
  }
}

// A path inside an OptionError's text, its braces kept literal.
std::string literal(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '{' ? std::string("{{") : std::string(1, c);
  return out;
}

// Beam and alpha: the checkpoint's decoding.json unless the user set them.
// True when they came from there.
bool apply_recorded_decoding(const TranslateJob& job, const std::vector<std::string>& dirs, SearchOptions& s,
                             std::ostream& log) {
  if (!job.uses_recorded_decoding() || dirs.size() != 1 || s.sampling.enabled) return false;
  auto choice = read_decoding_choice(dirs[0]);
  if (!choice) return false;
  s.beam = choice->beam;
  s.length_penalty = choice->alpha;
  log << "decoding: beam " << s.beam << ", alpha " << s.length_penalty << ", as chosen on "
      << choice->chosen_on << " (" << dirs[0] << "/decoding.json; --beam or --alpha overrides)\n";
  return true;
}

// The models the checkpoints make, with the tokenizers they share
// (src/decode/model_loader.h), for translating with `options`.
Translator load_translator(const TranslateJob& job, const TranslateOptions& options, std::ostream& log) {
  auto loaded = load_models(job.model, log);
  if (options.alignment) validate_alignment_options(options.alignment_options, loaded.models[0]->config());
  return Translator(std::move(loaded.models), loaded.tokenizers, job.model.device);
}

// Options that exclude each other: a mode, and the options it refuses.
const std::vector<std::pair<std::string, std::vector<std::string>>>& exclusions() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> rules = {
      {"sampling", {"beam", "greedy", "tune", "score-targets"}},
      {"score-targets", {"prefix", "nbest", "beam", "greedy", "tune"}},
      {"prefix", {"tune"}},
      {"int8", {"no-pack", "precision"}},
      {"tune", {"output", "beam", "alpha", "greedy", "nbest", "scores"}},
  };
  return rules;
}

// A file of one line per input line: refused when the counts differ.
std::vector<std::string> read_aligned(const std::string& option, const std::string& path,
                                      const std::vector<std::string>& input, bool input_known) {
  if (path.empty()) return {};
  auto lines = read_lines(path);
  if (input_known && lines.size() != input.size()) {
    throw InputError(path + ": " + std::to_string(lines.size()) + " lines, but the input has " +
                     std::to_string(input.size()) + " (" + option + " takes one line per input line)");
  }
  return lines;
}

void report_scores(const TranslateJob& job, const std::vector<std::string>& hypotheses,
                   const std::vector<std::string>& references, TranslateReport& report, std::ostream& log) {
  auto bleu = corpus_bleu(hypotheses, references, job.lowercase);
  auto chrf = corpus_chrf(hypotheses, references, job.lowercase);
  report.bleu = bleu.format() + "\n" + bleu.signature();
  report.chrf = chrf.format() + "\n" + chrf.signature();
  report.bleu_score = bleu.score;
  // Whole-sentence accuracy, for tasks with one right answer (the demo's dates).
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    const bool same = job.lowercase ? lowercase_utf8(hypotheses[i]) == lowercase_utf8(references[i])
                                    : hypotheses[i] == references[i];
    report.exact_matches += same ? 1 : 0;
  }
  log << report.bleu << "\n" << report.chrf << "\n";
  log << "exact match = " << std::fixed << std::setprecision(2)
      << 100.0 * static_cast<double>(report.exact_matches) /
             static_cast<double>(std::max<size_t>(hypotheses.size(), 1))
      << "% (" << report.exact_matches << " of " << hypotheses.size() << " lines)\n";
  log.unsetf(std::ios::floatfield);
}

}  // namespace

void TranslateJob::validate() const {
  for (const auto& [mode, refused] : exclusions()) {
    if (given.count(mode) == 0) continue;
    for (const auto& key : refused) {
      if (given.count(key) == 0) continue;
      // Tuning writes decoding.json from a grid of its own, not translations.
      throw OptionError(key, ": not with {" + mode + "}" +
                                 (mode == "tune" ? " (it tries every beam and alpha of its grid and writes "
                                                   "decoding.json, not translations)"
                                                 : ""));
    }
  }
  for (const char* key : {"tune-beams", "tune-alphas", "tune-alpha-limit"}) {
    if (given.count(key) > 0 && given.count("tune") == 0) throw OptionError(key, ": only with {tune}");
  }
  if (model.checkpoints.empty()) throw OptionError("checkpoint", ": at least one is needed");
  // Without beam or alpha given the beam may come from decoding.json: nbest
  // is checked against that beam once it is read (run_translate_job).
  SearchOptions search = options.search;
  if (uses_recorded_decoding()) search.beam = std::max(search.beam, search.nbest);
  search.validate();
}

bool TranslateJob::uses_recorded_decoding() const {
  return given.count("beam") == 0 && given.count("alpha") == 0 && given.count("greedy") == 0;
}

void TuneJob::validate() const {
  translate.validate();
  if (translate.model.checkpoints.size() != 1) {
    throw OptionError("tune", ": give one checkpoint (average first with aiayn-train --average)");
  }
  if (translate.input == "-") throw OptionError("tune", ": {input} must be a file (validation source)");
  if (translate.input.empty() || translate.reference.empty()) {
    throw OptionError("tune",
                      ": give the validation source as {input} and its translation as {reference} "
                      "(not the test set)");
  }
  if (beams.empty() || alphas.empty()) {
    throw OptionError("tune-beams", " and {tune-alphas} need at least one value each");
  }
}

void set_decoding_threads(TranslateJob& job, int threads) {
  if (job.options.workers > 1) set_threads(1);
  if (job.options.workers <= 1 && threads > 1) job.model.packed_weights = false;
}

PreparedTranslator prepare_translator(const TranslateJob& job, std::ostream& log) {
  std::vector<std::string> dirs;
  for (const auto& c : job.model.checkpoints) dirs.push_back(resolve_checkpoint(c));
  TranslateOptions options = job.options;
  options.precision = job.model.precision;
  auto& s = options.search;
  if (apply_recorded_decoding(job, dirs, s, log) && s.nbest > s.beam) {
    throw OptionError("nbest", " " + std::to_string(s.nbest) + ": exceeds the beam " +
                                   std::to_string(s.beam) + " recorded in " + literal(dirs[0]) +
                                   "/decoding.json; give {beam} as well");
  }
  s.validate();
  return {load_translator(job, options, log), options};
}

TranslateReport run_translate_job(const TranslateJob& job, std::ostream& log) {
  c10::OptionalDeviceGuard on_device;  // --device cuda:N is the current device throughout
  if (!job.model.device.is_cpu()) on_device.reset_device(job.model.device);
  job.validate();
  refuse_output_over_input("--output", job.output,
                           {{"--input", job.input},
                            {"--reference", job.reference},
                            {"--prefix", job.prefix},
                            {"--score-targets", job.score_targets}});
  auto prepared = prepare_translator(job, log);
  Translator& translator = prepared.translator;
  const TranslateOptions& options = prepared.options;

  // A file is read (and checked against the reference, prefixes and
  // targets) before anything is translated or written; stdin is read as it
  // arrives, and the counts are checked at the end.
  const bool input_known = job.input != "-";
  std::vector<std::string> input;
  if (input_known) input = read_lines(job.input);
  const auto references = read_aligned("--reference", job.reference, input, input_known);
  const auto prefixes = read_aligned("--prefix", job.prefix, input, input_known);
  const auto targets = read_aligned("--score-targets", job.score_targets, input, input_known);

  // Output to a temporary file renamed at the end: a failure or a signal
  // never leaves a truncated translation under the requested name, nor the
  // temporary (src/common/output_file.h).
  std::unique_ptr<OutputFile> file;
  if (job.output != "-") file = std::make_unique<OutputFile>(job.output);
  std::ostream& out = file ? file->stream() : std::cout;
  auto warn = [&](const std::string& m) { log << "warning: " << job.input << ": " << m << "\n"; };

  const bool packed = job.model.packs() && PackedLinear::available();
  const auto build = build_info();  // reads the BLAS line once, for both lines
  log << describe_build(build) << "\n";
  log << "BLAS: " << build.blas << "; threads: " << describe_threads()
      << (packed ? "; linear layers: weights packed for " + packed_kernel_name() : std::string()) << "\n";
  TranslateReport report;
  std::vector<std::string> hypotheses;
  const auto start = std::chrono::steady_clock::now();
  TranslateJob shown = job;
  if (!job.score_targets.empty()) shown.scores = true;  // a score is all forced scoring gives
  // Lines [first - 1, first - 1 + n) of the input, and the same lines of
  // the aligned files (fewer at the end of a short file: the counts are
  // then refused below).
  auto aligned = [](const std::vector<std::string>& all, int64_t first, size_t n) {
    const size_t begin = std::min(all.size(), static_cast<size_t>(first - 1));
    return std::vector<std::string>(all.begin() + begin, all.begin() + std::min(all.size(), begin + n));
  };
  auto emit = [&](const std::vector<std::string>& lines, int64_t first) {
    std::vector<Translation> results;
    if (!job.score_targets.empty()) {
      results = translator.score(lines, aligned(targets, first, lines.size()), options, first, warn);
    } else if (!job.prefix.empty()) {
      const auto group_prefixes = aligned(prefixes, first, lines.size());
      results = translator.translate(lines, options, first, warn, &group_prefixes);
    } else {
      results = translator.translate(lines, options, first, warn);
    }
    for (size_t i = 0; i < results.size(); ++i) {
      write_translation(out, translator, results[i], first - 1 + static_cast<int64_t>(i), shown);
      hypotheses.push_back(results[i].texts.empty() ? "" : results[i].texts[0]);
      if (!results[i].hypotheses.empty()) report.output_tokens += results[i].hypotheses[0].tokens.size();
    }
    report.sentences += static_cast<int64_t>(lines.size());
    out.flush();
    if (file) file->check();
  };
  if (job.input == "-") {
    LineStream stream(STDIN_FILENO);
    std::vector<std::string> group;
    while (group.clear(), stream.next_group(&group, static_cast<size_t>(options.batch_sentences))) {
      emit(group, report.sentences + 1);
    }
  } else {
    emit(input, 1);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& [option, path, lines] : {std::tuple{"--reference", &job.reference, &references},
                                            {"--prefix", &job.prefix, &prefixes},
                                            {"--score-targets", &job.score_targets, &targets}}) {
    if (!path->empty() && lines->size() != hypotheses.size()) {
      throw InputError(*path + ": " + std::to_string(lines->size()) + " lines, but the input has " +
                       std::to_string(hypotheses.size()) + " (" + option + " takes one line per input line)");
    }
  }
  if (file) file->commit();
  log << (job.score_targets.empty() ? "translated " : "scored ") << report.sentences << " sentences ("
      << report.output_tokens << " tokens) in " << report.seconds
      << " s: " << report.sentences / report.seconds << " sentences/s, "
      << report.output_tokens / report.seconds << " tokens/s\n";
  if (!job.reference.empty()) report_scores(job, hypotheses, references, report, log);
  return report;
}

}  // namespace aiayn
