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
#include "src/decode/head_mask.h"

namespace aiayn {

namespace fs = std::filesystem;

namespace {

std::string render(const Translator& translator, const Hypothesis& h, const std::string& text,
                   OutputFormat format) {
  if (format == OutputFormat::text) return text;
  std::string out;
  for (int64_t id : h.tokens) {
    if (!out.empty()) out += ' ';
    out += format == OutputFormat::ids ? std::to_string(id) : translator.tokenizer().piece(static_cast<int32_t>(id));
  }
  return out;
}

// Writes one input line's output: its best translation, or with scores every
// n-best hypothesis as "index ||| text ||| score ||| log-prob".
void write_translation(std::ostream& out, const Translator& translator, const Translation& t,
                       int64_t index, const TranslateJob& job) {
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
    out << index << " ||| " << render(translator, h, t.texts[k], job.output_format) << buf << links(k) << '\n';
  }
}

// Beam and alpha: the checkpoint's decoding.json unless the user set them.
// True when they came from there.
bool apply_recorded_decoding(const TranslateJob& job, const std::vector<std::string>& dirs,
                             SearchOptions& s, std::ostream& log) {
  if (!job.recorded_decoding || dirs.size() != 1 || s.sampling.enabled) return false;
  auto choice = read_decoding_choice(dirs[0]);
  if (!choice) return false;
  s.beam = choice->beam;
  s.length_penalty = choice->alpha;
  log << "decoding: beam " << s.beam << ", alpha " << s.length_penalty << ", as chosen on "
      << choice->chosen_on << " (" << dirs[0] << "/decoding.json; --beam or --alpha overrides)\n";
  return true;
}

// Packed weights are the float32 CPU path: int8 and autocast replace it.
bool packs_weights(const TranslateJob& job) {
  return job.packed_weights && !job.int8 && job.device.is_cpu() && job.options.precision == Precision::fp32;
}

// The models the checkpoints make (one, an ensemble, or their averaged
// weights), int8 when asked or else, on the CPU, with packed float weights,
// with the tokenizers they share.
Translator load_translator(const TranslateJob& job, const std::vector<std::string>& dirs, std::ostream& log) {
  if (dirs.size() > 1 && job.combine == Combine::one) {
    throw InputError("--checkpoint given " + std::to_string(dirs.size()) + " times: add --ensemble (average "
                     "their log-probabilities at every step) or --average-weights (average their weights "
                     "into one model)");
  }
  if (job.int8 && !job.device.is_cpu()) throw InputError("--int8: runs on --device cpu only");
  const auto precision = job.options.precision;
  if (job.int8 && precision != Precision::fp32) {
    throw InputError(std::string("--int8 and --precision ") + to_string(precision) +
                     ": choose one (int8 replaces the float products)");
  }
  if (const auto why = precision_unavailable_reason(precision, job.device); !why.empty()) {
    throw InputError("--precision: " + why);
  }
  if (job.int8) {
    if (const auto why = int8_unavailable_reason(); !why.empty()) throw InputError("--int8: " + why);
  }
  auto tokenizers = load_checkpoint_tokenizers(dirs.back());
  std::vector<Transformer> models;
  if (job.combine == Combine::ensemble) {
    for (const auto& dir : dirs) {
      auto own = load_checkpoint_tokenizers(dir);
      if (own.source.hash() != tokenizers.source.hash() || own.target.hash() != tokenizers.target.hash()) {
        throw InputError(dir + ": its vocabulary (spm.model) differs from that of " + dirs.back() +
                         "; an ensemble needs one vocabulary");
      }
      models.push_back(load_averaged_model({dir}, job.device, job.raw_weights));
    }
  } else {
    models.push_back(load_averaged_model(dirs, job.device, job.raw_weights));
  }
  if (!job.mask_heads.empty()) {
    for (auto& m : models) {
      const auto heads = parse_head_mask(job.mask_heads, m->config());
      m->mask_heads(heads);
    }
    log << "masked heads: " << job.mask_heads << " (their outputs are zero)\n";
  }
  if (job.int8) {
    const auto engine = select_int8_engine();
    for (auto& m : models) m->quantize_int8();
    log << "int8: linear layers quantized (per-row int8 weights, dynamic 8-bit inputs; " << engine
        << " engine)\n";
  } else if (packs_weights(job)) {
    for (auto& m : models) m->pack_weights();
  }
  if (precision != Precision::fp32) {
    log << "precision: " << to_string(precision) << " matrix products under autocast, fp32 weights and "
        << "log-probabilities" << (job.device.is_cpu() && !cpu_has_native_bf16() && precision == Precision::bf16
                                       ? " (this CPU has no native bf16: expect it slower than fp32)" : "")
        << "\n";
  }
  if (job.options.alignment) validate_alignment_options(job.options.alignment_options, models[0]->config());
  if (models.size() > 1) log << "ensemble of " << models.size() << " models (log-probabilities averaged)\n";
  return Translator(std::move(models), tokenizers, job.device);
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
      << 100.0 * static_cast<double>(report.exact_matches) / static_cast<double>(std::max<size_t>(hypotheses.size(), 1))
      << "% (" << report.exact_matches << " of " << hypotheses.size() << " lines)\n";
  log.unsetf(std::ios::floatfield);
}

}  // namespace

void set_decoding_threads(TranslateJob& job, int threads) {
  if (job.options.workers > 1) set_threads(1);
  if (job.options.workers <= 1 && threads > 1) job.packed_weights = false;
}

TranslateReport run_translate_job(const TranslateJob& job, std::ostream& log) {
  c10::OptionalDeviceGuard on_device;  // --device cuda:N is the current device throughout
  if (!job.device.is_cpu()) on_device.reset_device(job.device);
  if (job.checkpoints.empty()) throw InputError("--checkpoint: at least one is needed");
  refuse_output_over_input("--output", job.output, {{"--input", job.input}, {"--reference", job.reference},
                                                    {"--prefix", job.prefix}, {"--score-targets", job.score_targets}});
  std::vector<std::string> dirs;
  for (const auto& c : job.checkpoints) dirs.push_back(resolve_checkpoint(c));
  TranslateOptions options = job.options;
  auto& s = options.search;
  const bool beam_recorded = apply_recorded_decoding(job, dirs, s, log);
  if (s.nbest > s.beam && !s.sampling.enabled) {
    throw InputError("--nbest " + std::to_string(s.nbest) + " exceeds " +
                     (beam_recorded ? "the beam " + std::to_string(s.beam) + " recorded in " + dirs[0] +
                                          "/decoding.json; give --beam as well"
                                    : "--beam " + std::to_string(s.beam)));
  }
  s.validate();
  auto translator = load_translator(job, dirs, log);

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

  const bool packed = packs_weights(job) && PackedLinear::available();
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
      << report.output_tokens << " tokens) in " << report.seconds << " s: " << report.sentences / report.seconds
      << " sentences/s, " << report.output_tokens / report.seconds << " tokens/s\n";
  if (!job.reference.empty()) report_scores(job, hypotheses, references, report, log);
  return report;
}

}  // namespace aiayn
