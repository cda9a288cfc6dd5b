#include "src/serve/translate_service.h"

#include <ostream>

#include "src/common/build_info.h"
#include "src/common/error.h"

namespace aiayn {

namespace {

// One request's options over the server's defaults, and the key under which
// requests may share a decoding call.
struct RequestOptions {
  TranslateOptions options;
  bool scores = false;
  std::string key;
};

RequestOptions read_options(JsonFields& fields, const TranslateOptions& defaults) {
  RequestOptions r{defaults, false, {}};
  auto& s = r.options.search;
  s.beam = fields.integer("beam", s.beam, 1, 64);
  s.length_penalty = fields.number("alpha", s.length_penalty, 0.0, 10.0);
  s.nbest = fields.integer("nbest", 1, 1, 64);
  if (s.nbest > s.beam) {
    throw HttpError(
        400, "field \"nbest\": " + std::to_string(s.nbest) + " exceeds the beam " + std::to_string(s.beam));
  }
  r.options.alignment = fields.boolean("alignment", defaults.alignment);
  r.scores = fields.boolean("scores", false);
  r.key = std::to_string(s.beam) + "/" + std::to_string(s.length_penalty) + "/" + std::to_string(s.nbest) +
          "/" + (r.options.alignment ? "a" : "");
  return r;
}

nlohmann::json hypothesis_json(const Translation& t, size_t k, bool scores, bool alignment) {
  nlohmann::json h = {{"text", k < t.texts.size() ? t.texts[k] : std::string()}};
  if (scores) {
    h["score"] = k < t.hypotheses.size() ? t.hypotheses[k].score : -std::numeric_limits<double>::infinity();
    h["log_prob"] =
        k < t.hypotheses.size() ? t.hypotheses[k].log_prob : -std::numeric_limits<double>::infinity();
  }
  if (alignment) h["alignment"] = k < t.alignments.size() ? t.alignments[k] : std::string();
  return h;
}

nlohmann::json translation_json(const Translation& t, const RequestOptions& r) {
  auto best = hypothesis_json(t, 0, r.scores, r.options.alignment);
  if (r.options.search.nbest > 1) {
    best["nbest"] = nlohmann::json::array();
    for (size_t k = 0; k < t.hypotheses.size(); ++k) {
      best["nbest"].push_back(hypothesis_json(t, k, true, r.options.alignment));
    }
  }
  return best;
}

}  // namespace

void serve_translations(const TranslateJob& job, const TranslateServeOptions& options, std::ostream& log) {
  c10::OptionalDeviceGuard on_device;  // loading, on --device cuda:N, happens on this thread
  if (!job.model.device.is_cpu()) on_device.reset_device(job.model.device);
  job.validate();
  auto prepared = prepare_translator(job, log);
  Translator& translator = prepared.translator;
  const TranslateOptions defaults = prepared.options;
  const auto build = build_info();
  log << describe_build(build) << "\n";

  TranslationBatcher batcher(options.batcher, [&](const std::vector<std::string>& lines,
                                                  const std::vector<std::string>* prefixes,
                                                  const TranslateOptions& o) {
    // The batcher's thread decodes: --device cuda:N must be current there too.
    c10::OptionalDeviceGuard on_model_device;
    if (!job.model.device.is_cpu()) on_model_device.reset_device(job.model.device);
    // The call's sentences split evenly over the workers, each a
    // length-sorted batch on its own core: a gathered call uses every
    // core, where one request alone keeps one busy.
    TranslateOptions call = o;
    const auto n = static_cast<int64_t>(lines.size());
    call.batch_sentences = std::max<int64_t>(1, std::min(o.batch_sentences, (n + o.workers - 1) / o.workers));
    return translator.translate(lines, call, 1, {}, prefixes);
  });
  HttpService http(options.http);
  http.get("/v1/health", [&] {
    const auto stats = batcher.stats();
    return nlohmann::json{
        {"status", "ok"},
        {"model", job.model.checkpoints},
        {"libtorch", build.libtorch},
        {"blas", build.blas},
        {"queue_sentences", stats.queued_sentences},
        {"decoding_calls", stats.calls},
        {"sentences", stats.sentences},
        {"batching",
         {{"enabled", options.batcher.enabled},
          {"max_tokens", options.batcher.max_tokens},
          {"max_wait_ms", options.batcher.max_wait.count() / 1000.0},
          {"quiet_ms", options.batcher.quiet.count() / 1000.0}}},
        {"decoding_seconds", stats.decoding_seconds},
        {"defaults", {{"beam", defaults.search.beam}, {"alpha", defaults.search.length_penalty}}}};
  });
  http.post("/v1/translate", [&](const nlohmann::json& body) {
    JsonFields fields(body);
    const auto text = fields.strings("text", true);
    auto prefix = fields.strings("prefix", false);
    const auto request = read_options(fields, defaults);
    fields.reject_unknown();
    if (static_cast<int64_t>(text.size()) > options.max_sentences) {
      throw HttpError(413, "field \"text\": " + std::to_string(text.size()) +
                               " sentences, over the limit of " + std::to_string(options.max_sentences) +
                               " per request (--serve-max-sentences)");
    }
    if (!prefix.empty() && prefix.size() != text.size()) {
      throw HttpError(400, "field \"prefix\": " + std::to_string(prefix.size()) + " prefixes for " +
                               std::to_string(text.size()) + " sentences (one per sentence, \"\" for none)");
    }
    BatchRequest work{text, prefix, request.options, request.key, 0};
    // Refused here, not truncated with a warning nobody reads.
    const bool model_limits = translator.longest_source() < options.max_sentence_tokens;
    const int64_t limit = model_limits ? translator.longest_source() : options.max_sentence_tokens;
    for (size_t i = 0; i < text.size(); ++i) {
      const auto n = static_cast<int64_t>(translator.source_tokenizer().encode(text[i]).size());
      if (n > limit) {
        throw HttpError(400, "field \"text\"[" + std::to_string(i) + "]: " + std::to_string(n) +
                                 " tokens, over the limit of " + std::to_string(limit) + " per sentence (" +
                                 (model_limits ? "the model's positions" : "--serve-max-tokens") + ")");
      }
      work.tokens += n + 2;  // and bos, eos
      if (i < prefix.size() && !prefix[i].empty()) {
        const auto m = static_cast<int64_t>(translator.target_tokenizer().encode(prefix[i]).size());
        const int64_t room = translator.longest_prefix(request.options.search, n);
        if (m > room) {
          throw HttpError(400, "field \"prefix\"[" + std::to_string(i) + "]: " + std::to_string(m) +
                                   " tokens, longer than an output of this sentence may be (" +
                                   std::to_string(room) + ")");
        }
      }
    }
    nlohmann::json out = {{"translations", nlohmann::json::array()}};
    if (text.empty()) return out;
    std::vector<Translation> results;
    try {
      results = batcher.submit(std::move(work));
    } catch (const TranslationBatcher::QueueFull& e) {
      throw HttpError(503, e.what(), 1);
    }
    for (const auto& t : results) out["translations"].push_back(translation_json(t, request));
    return out;
  });
  http.run(log);
}

}  // namespace aiayn
