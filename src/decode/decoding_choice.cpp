#include "src/decode/decoding_choice.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <ostream>

#include "src/common/error.h"
#include "src/common/json_reader.h"
#include "src/common/output_file.h"
#include "src/common/text_reader.h"
#include "src/decode/bleu.h"
#include "src/decode/checkpoint_reader.h"

namespace aiayn {

namespace fs = std::filesystem;

std::optional<DecodingChoice> read_decoding_choice(const std::string& dir) {
  const auto path = (fs::path(dir) / "decoding.json").string();
  if (!fs::exists(path)) return std::nullopt;
  auto j = read_json_file(path);
  JsonObjectReader r(j, path, "");
  if (!r.has("beam") || !r.has("alpha")) {
    throw InputError(path + ": needs \"beam\" and \"alpha\" (rerun aiayn-translate --tune)");
  }
  DecodingChoice c;
  c.beam = r.integer("beam", c.beam, 1, 1000);
  c.alpha = r.number("alpha", c.alpha, 0.0, 10.0);
  c.bleu = r.number("bleu", c.bleu, 0.0, 101.0);  // 100 plus rounding
  c.chosen_on = r.string("chosen_on", "");
  return c;
}

namespace {

std::string grid_row(const TunedPoint& p) {
  char row[64];
  std::snprintf(row, sizeof row, "  %4lld  %5.2f  %5.2f\n", static_cast<long long>(p.beam), p.alpha, p.bleu);
  return row;
}

}  // namespace

TuneSearch search_decoding_grid(const std::vector<int64_t>& beams, const std::vector<double>& alphas,
                                double alpha_limit,
                                const std::function<double(int64_t beam, double alpha)>& bleu,
                                std::ostream& log) {
  TuneSearch s;
  s.best.bleu = -1;
  auto score = [&](int64_t beam, double alpha) {
    TunedPoint p{beam, beam == 1 ? 0.0 : alpha, 0};
    p.bleu = bleu(p.beam, p.alpha);
    log << grid_row(p);
    s.grid.push_back(p);
    if (p.bleu > s.best.bleu) s.best = p;
  };
  log << "  beam  alpha   BLEU\n";
  for (int64_t beam : beams) {
    for (double alpha : alphas) {
      // Greedy search ranks nothing, so alpha cannot change its output.
      if (beam == 1 && alpha != alphas.front()) continue;
      score(beam, alpha);
    }
  }
  std::vector<double> sorted = alphas;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  const double step = sorted.size() > 1 ? sorted.back() - sorted[sorted.size() - 2] : 0.5;
  const bool any_beam = std::any_of(beams.begin(), beams.end(), [](int64_t b) { return b > 1; });
  double largest = sorted.back();
  while (any_beam && s.best.beam > 1 && s.best.alpha == largest && largest < alpha_limit) {
    const double next = std::min(largest + step, alpha_limit);
    log << "alpha " << largest << ", the grid's largest, scores best: trying " << next
        << " (the grid grows by " << step << " while its edge wins, up to --tune-alpha-limit " << alpha_limit
        << ")\n";
    for (int64_t beam : beams) {
      if (beam > 1) score(beam, next);
    }
    s.added.push_back(next);
    largest = next;
  }
  if (s.best.beam > 1 && s.best.alpha == largest && sorted.size() + s.added.size() > 1) {
    s.edge_at_limit = true;
    log << "note: alpha " << largest << " is the largest tried (--tune-alpha-limit " << alpha_limit
        << ") and still the best: a larger one may score higher on this validation set\n";
  }
  return s;
}

DecodingChoice run_tune_job(const TuneJob& tune, std::ostream& log) {
  tune.validate();
  const TranslateJob& job = tune.translate;
  c10::OptionalDeviceGuard on_device;  // --device cuda:N is the current device throughout
  if (!job.model.device.is_cpu()) on_device.reset_device(job.model.device);
  const auto dir = resolve_checkpoint(job.model.checkpoints[0]);
  auto source = read_lines(job.input), references = read_lines(job.reference);
  if (source.size() != references.size()) {
    throw InputError(job.reference + ": " + std::to_string(references.size()) + " lines, but " + job.input +
                     " has " + std::to_string(source.size()));
  }
  // Tuned with the models and arithmetic translation will use (src/decode/model_loader.h).
  auto loaded = load_models(job.model, log);
  Translator translator(std::move(loaded.models), loaded.tokenizers, job.model.device);
  TranslateOptions options = job.options;
  options.precision = job.model.precision;
  log << "choosing beam and alpha on " << job.input << " (" << source.size() << " sentences), "
      << (job.lowercase ? "lowercased" : "cased") << " BLEU\n";
  auto validation_bleu = [&](int64_t beam, double alpha) {
    TranslateOptions o = options;
    o.search.beam = beam;
    o.search.length_penalty = alpha;
    o.search.nbest = 1;
    std::vector<std::string> hyps;
    for (const auto& t : translator.translate(source, o)) hyps.push_back(t.texts.empty() ? "" : t.texts[0]);
    return corpus_bleu(hyps, references, job.lowercase).score;
  };
  const TuneSearch search =
      search_decoding_grid(tune.beams, tune.alphas, tune.alpha_limit, validation_bleu, log);
  DecodingChoice best{search.best.beam, search.best.alpha, search.best.bleu, ""};
  nlohmann::json grid = nlohmann::json::array();
  for (const auto& p : search.grid) grid.push_back({{"beam", p.beam}, {"alpha", p.alpha}, {"bleu", p.bleu}});
  best.chosen_on = job.input + " -> " + job.reference;
  nlohmann::json out = {{"beam", best.beam},
                        {"alpha", best.alpha},
                        {"bleu", best.bleu},
                        {"chosen_on", best.chosen_on},
                        {"lowercase", job.lowercase},
                        {"raw_weights", job.model.raw_weights},
                        {"grid", grid}};
  write_file_atomically((fs::path(dir) / "decoding.json").string(), out.dump(2) + "\n");
  char summary[96];
  std::snprintf(summary, sizeof summary, "chose beam %lld, alpha %g (BLEU %.2f)",
                static_cast<long long>(best.beam), best.alpha, best.bleu);
  log << summary << "; recorded in " << (fs::path(dir) / "decoding.json").string()
      << ": aiayn-translate uses them unless --beam, --greedy or --alpha is given\n";
  return best;
}

}  // namespace aiayn
