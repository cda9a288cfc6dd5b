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
  DecodingChoice best;
  best.bleu = -1;
  nlohmann::json grid = nlohmann::json::array();
  log << "choosing beam and alpha on " << job.input << " (" << source.size() << " sentences), "
      << (job.lowercase ? "lowercased" : "cased") << " BLEU\n";
  log << "  beam  alpha   BLEU\n";
  for (int64_t beam : tune.beams) {
    for (double alpha : tune.alphas) {
      // Greedy search ranks nothing, so alpha cannot change its output.
      if (beam == 1 && alpha != tune.alphas.front()) continue;
      TranslateOptions o = options;
      o.search.beam = beam;
      o.search.length_penalty = alpha;
      o.search.nbest = 1;
      std::vector<std::string> hyps;
      for (const auto& t : translator.translate(source, o)) {
        hyps.push_back(t.texts.empty() ? "" : t.texts[0]);
      }
      const double bleu = corpus_bleu(hyps, references, job.lowercase).score;
      char row[64];
      std::snprintf(row, sizeof row, "  %4lld  %5.2f  %5.2f\n", static_cast<long long>(beam),
                    beam == 1 ? 0.0 : alpha, bleu);
      log << row;
      grid.push_back({{"beam", beam}, {"alpha", beam == 1 ? 0.0 : alpha}, {"bleu", bleu}});
      if (bleu > best.bleu) best = {beam, beam == 1 ? 0.0 : alpha, bleu, ""};
    }
  }
  const double widest = *std::max_element(tune.alphas.begin(), tune.alphas.end());
  if (best.beam > 1 && tune.alphas.size() > 1 && best.alpha == widest) {
    log << "note: alpha " << widest << " is the largest of --tune-alphas; a larger one may "
        << "score higher on this validation set (try --tune-alphas with larger values)\n";
  }
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
