#include "src/decode/translate_job.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "src/common/app.h"
#include "src/common/blas_kernel.h"
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
                   const std::string& format) {
  if (format == "text") return text;
  std::string out;
  for (int64_t id : h.tokens) {
    if (!out.empty()) out += ' ';
    out += format == "ids" ? std::to_string(id) : translator.tokenizer().piece(static_cast<int32_t>(id));
  }
  return out;
}

// Writes one input line's output: its best translation, or with scores every
// n-best hypothesis as "index ||| text ||| score ||| log-prob".
void write_translation(std::ostream& out, const Translator& translator, const Translation& t,
                       int64_t index, const TranslateJob& job) {
  if (!job.scores) {
    out << (t.hypotheses.empty() ? "" : render(translator, t.hypotheses[0], t.texts[0], job.output_format))
        << '\n';
    return;
  }
  if (t.hypotheses.empty()) out << index << " |||  ||| -inf ||| -inf\n";
  char buf[64];
  for (size_t k = 0; k < t.hypotheses.size(); ++k) {
    const auto& h = t.hypotheses[k];
    std::snprintf(buf, sizeof buf, " ||| %.6f ||| %.6f", h.score, h.log_prob);
    out << index << " ||| " << render(translator, h, t.texts[k], job.output_format) << buf << '\n';
  }
}

}  // namespace

TranslateReport run_translate_job(const TranslateJob& job, std::ostream& log) {
  if (job.checkpoints.empty()) throw InputError("--checkpoint: at least one is needed");
  refuse_output_over_input("--output", job.output, {{"--input", job.input}, {"--reference", job.reference}});
  std::vector<std::string> dirs;
  for (const auto& c : job.checkpoints) dirs.push_back(resolve_checkpoint(c));
  TranslateOptions options = job.options;
  auto& s = options.search;
  bool beam_recorded = false;
  if (job.recorded_decoding && dirs.size() == 1) {
    if (auto choice = read_decoding_choice(dirs[0])) {
      beam_recorded = true;
      s.beam = choice->beam;
      s.length_penalty = choice->alpha;
      log << "decoding: beam " << s.beam << ", alpha " << s.length_penalty << ", as chosen on "
          << choice->chosen_on << " (" << dirs[0] << "/decoding.json; --beam or --alpha overrides)\n";
    }
  }
  if (s.nbest > s.beam) {
    throw InputError("--nbest " + std::to_string(s.nbest) + " exceeds " +
                     (beam_recorded ? "the beam " + std::to_string(s.beam) + " recorded in " + dirs[0] +
                                          "/decoding.json; give --beam as well"
                                    : "--beam " + std::to_string(s.beam)));
  }
  auto tokenizers = load_checkpoint_tokenizers(dirs.back());
  if (job.int8 && !job.device.is_cpu()) throw InputError("--int8: runs on --device cpu only");
  auto model = load_averaged_model(dirs, job.device, job.raw_weights);
  if (job.int8) {
    const auto engine = select_int8_engine();
    model->quantize_int8();
    log << "int8: linear layers quantized (per-row int8 weights, dynamic 8-bit inputs; "
        << engine << " engine)\n";
  }
  Translator translator(model, tokenizers, job.device);

  // A file is read (and checked against the reference) before anything is
  // translated or written; stdin is read as it arrives.
  std::vector<std::string> input, references;
  if (job.input != "-") input = read_lines(job.input);
  if (!job.reference.empty()) {
    references = read_lines(job.reference);
    if (job.input != "-" && references.size() != input.size()) {
      throw InputError(job.reference + ": " + std::to_string(references.size()) +
                       " lines, but the input has " + std::to_string(input.size()));
    }
  }

  // Output to a temporary file renamed at the end: a failure or a signal
  // never leaves a truncated translation under the requested name, nor the
  // temporary (src/common/output_file.h).
  std::unique_ptr<OutputFile> file;
  if (job.output != "-") file = std::make_unique<OutputFile>(job.output);
  std::ostream& out = file ? file->stream() : std::cout;
  auto warn = [&](const std::string& m) { log << "warning: " << job.input << ": " << m << "\n"; };

  log << "BLAS: " << describe_blas() << "; threads: " << describe_threads() << "\n";
  TranslateReport report;
  std::vector<std::string> hypotheses;
  const auto start = std::chrono::steady_clock::now();
  auto emit = [&](const std::vector<std::string>& lines, int64_t first) {
    auto results = translator.translate(lines, options, first, warn);
    for (size_t i = 0; i < results.size(); ++i) {
      write_translation(out, translator, results[i], first - 1 + static_cast<int64_t>(i), job);
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
  if (!job.reference.empty() && references.size() != hypotheses.size()) {
    throw InputError(job.reference + ": " + std::to_string(references.size()) +
                     " lines, but the input has " + std::to_string(hypotheses.size()));
  }
  if (file) file->commit();
  log << "translated " << report.sentences << " sentences (" << report.output_tokens
      << " tokens) in " << report.seconds << " s: " << report.sentences / report.seconds
      << " sentences/s, " << report.output_tokens / report.seconds << " tokens/s\n";
  if (!job.reference.empty()) {
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
  return report;
}

}  // namespace aiayn
