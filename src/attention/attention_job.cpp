#include "src/attention/attention_job.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "src/common/app.h"
#include "src/common/blas_kernel.h"
#include "src/common/build_info.h"
#include "src/common/error.h"
#include "src/common/output_file.h"
#include "src/common/text_reader.h"
#include "src/decode/model_loader.h"

namespace aiayn {

namespace {

constexpr size_t kGroup = 32;  // sentences searched and written together

// Sends everything written to both streams (the dump and, for the viewer, a copy).
class TeeBuf : public std::streambuf {
 public:
  TeeBuf(std::streambuf* a, std::streambuf* b) : a_(a), b_(b) {}

 protected:
  int overflow(int c) override {
    if (c == EOF) return !EOF;
    const bool ok = a_->sputc(static_cast<char>(c)) != EOF && (!b_ || b_->sputc(static_cast<char>(c)) != EOF);
    return ok ? c : EOF;
  }
  int sync() override { return a_->pubsync() | (b_ ? b_->pubsync() : 0); }

 private:
  std::streambuf *a_, *b_;
};

}  // namespace

void parse_attention_kinds(const std::string& kinds, AttentionExportOptions* o) {
  o->encoder = o->decoder = o->cross = false;
  std::stringstream in(kinds);
  std::string kind;
  while (std::getline(in, kind, ',')) {
    if (kind == "encoder")
      o->encoder = true;
    else if (kind == "decoder")
      o->decoder = true;
    else if (kind == "cross")
      o->cross = true;
    else
      throw InputError("--kinds: unknown kind \"" + kind + "\" (use encoder, decoder, cross)");
  }
}

LoadedModels load_attention_model(const AttentionJob& job, std::ostream& log) {
  // The float model as training left it: attention is read, not sped up.
  ModelLoadOptions load;
  load.checkpoints = {job.checkpoint};
  load.device = job.device;
  load.mask_heads = job.mask_heads;
  load.packed_weights = false;
  return load_models(load, log);
}

void run_attention_job(const AttentionJob& job, std::ostream& log) {
  c10::OptionalDeviceGuard on_device;  // --device cuda:N is the current device throughout
  if (!job.device.is_cpu()) on_device.reset_device(job.device);
  const NamedPaths inputs = {
      {"--source", job.source}, {"--target", job.target}, {"--gold-alignment", job.gold_alignment}};
  if (!job.gold_alignment.empty() && job.target.empty()) {
    // Gold links refer to the reference's words; the model's own translation may have others.
    throw InputError("--gold-alignment " + job.gold_alignment +
                     ": needs --target, the reference translations its links refer to (force-decoded)");
  }
  refuse_output_over_input("--output", job.output, inputs);
  refuse_output_over_input("--html", job.html, inputs);
  if (!job.html.empty()) refuse_output_over_input("--html", job.html, {{"--output", job.output}});
  auto loaded = load_attention_model(job, log);
  AttentionExporter exporter(loaded.models[0], loaded.tokenizers, job.options);
  std::vector<GoldAlignment> gold;
  if (!job.gold_alignment.empty()) {
    const auto lines = read_lines(job.gold_alignment);
    for (size_t i = 0; i < lines.size(); ++i) {
      gold.push_back(parse_gold_alignment(lines[i], job.gold_alignment + ":" + std::to_string(i + 1)));
    }
  }
  auto warn = [&](const std::string& m) { log << "warning: " << m << "\n"; };
  // Inputs are opened before the output exists, so a missing one leaves nothing behind.
  std::unique_ptr<LineReader> targets;
  if (!job.target.empty()) targets = std::make_unique<LineReader>(job.target);
  std::unique_ptr<LineReader> source_file;
  std::unique_ptr<LineStream> source_stream;
  if (job.source == "-")
    source_stream = std::make_unique<LineStream>(STDIN_FILENO);
  else
    source_file = std::make_unique<LineReader>(job.source);

  // The dump goes to a temporary file renamed at the end, so an error (say,
  // a target file that runs out early) or a signal never leaves a partial
  // dump behind (src/common/output_file.h).
  std::unique_ptr<OutputFile> file;
  if (job.output != "-") file = std::make_unique<OutputFile>(job.output);
  std::ostringstream copy;
  TeeBuf tee(file ? file->stream().rdbuf() : std::cout.rdbuf(), job.html.empty() ? nullptr : copy.rdbuf());
  std::ostream out(&tee);

  const auto build = build_info();  // reads the BLAS line once, for both lines
  log << describe_build(build) << "\n";
  log << "BLAS: " << build.blas << "; threads: " << describe_threads() << "\n";
  int64_t written = 0;
  for (;;) {
    std::vector<std::string> sources, tgts;
    if (source_stream) {
      source_stream->next_group(&sources, kGroup);
    } else {
      std::string line;
      while (sources.size() < kGroup && source_file->next(&line)) sources.push_back(line);
    }
    if (targets) {
      std::string line;
      for (size_t i = 0; i < sources.size(); ++i) {
        if (!targets->next(&line)) {
          throw InputError("source and target differ in length: " + job.target + " has " +
                           std::to_string(targets->line_number()) + " lines, " + job.source + " has more");
        }
        tgts.push_back(line);
      }
    }
    if (sources.empty()) break;
    exporter.write(sources, targets ? &tgts : nullptr, written, out, warn, job.source, job.target,
                   job.gold_alignment.empty() ? nullptr : &gold);
    written += static_cast<int64_t>(sources.size());
    out.flush();
    if (file) file->check();
  }
  if (targets) {
    std::string line;
    if (targets->next(&line)) {
      throw InputError("source and target differ in length: " + job.source + " has " +
                       std::to_string(written) + " lines, " + job.target + " has more (" +
                       std::to_string(targets->line_number() + targets->count_rest()) + ")");
    }
  }
  if (!job.gold_alignment.empty() && static_cast<int64_t>(gold.size()) != written) {
    throw InputError(job.gold_alignment + ": " + std::to_string(gold.size()) + " lines, but " + job.source +
                     " has " + std::to_string(written));
  }
  out.flush();
  if (file) file->commit();
  log << "wrote the attention of " << written << " sentences to "
      << (job.output == "-" ? "stdout" : job.output) << "\n";
  if (!job.html.empty()) {
    write_file_atomically(job.html, attention_viewer_html(copy.str()));
    log << "viewer: " << job.html << "\n";
  }
  if (!job.gold_alignment.empty()) log << exporter.aer_table();
}

}  // namespace aiayn
