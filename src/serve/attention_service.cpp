#include "src/serve/attention_service.h"

#include <atomic>
#include <limits>
#include <mutex>
#include <ostream>

#include "src/common/build_info.h"
#include "src/common/error.h"
#include "src/decode/head_mask.h"

namespace aiayn {

namespace {

// One request: the sentence, its forced target (empty: the model's own
// translation), and its options over the server's defaults.
struct AttentionRequest {
  std::string text, target;
  std::string mask_heads;
  AttentionExportOptions options;
};

// Reads the kinds as the dump names them ("encoder", "decoder", "cross").
void read_kinds(JsonFields& fields, AttentionExportOptions& o) {
  const auto kinds = fields.strings("kinds", false);
  if (fields.find("kinds") == nullptr) return;
  o.encoder = o.decoder = o.cross = false;
  for (const auto& k : kinds) {
    if (k == "encoder")
      o.encoder = true;
    else if (k == "decoder")
      o.decoder = true;
    else if (k == "cross")
      o.cross = true;
    else
      throw HttpError(400, "field \"kinds\": unknown kind \"" + k + "\" (use encoder, decoder, cross)");
  }
  if (!o.encoder && !o.decoder && !o.cross) throw HttpError(400, "field \"kinds\": choose at least one kind");
}

AttentionRequest read_request(JsonFields& fields, const AttentionJob& job, const ModelConfig& m) {
  AttentionRequest r;
  r.options = job.options;
  r.mask_heads = job.mask_heads;
  auto& o = r.options;
  r.text = fields.string("text", "", true);
  r.target = fields.string("target", "", false);
  o.search.beam = fields.integer("beam", o.search.beam, 1, 64);
  r.mask_heads = fields.string("mask_heads", r.mask_heads, false);
  o.alignment.layer = fields.integer("alignment_layer", o.alignment.layer, -1, m.decoder_layers - 1);
  o.alignment.head = fields.integer("alignment_head", o.alignment.head, -1, m.heads - 1);
  o.alignment.target_characters = fields.boolean("alignment_target_chars", o.alignment.target_characters);
  read_kinds(fields, o);
  // A layer must exist in every stack whose maps are asked for.
  int64_t layers = std::numeric_limits<int64_t>::max();
  if (o.encoder) layers = std::min(layers, m.encoder_layers);
  if (o.decoder || o.cross) layers = std::min(layers, m.decoder_layers);
  if (fields.find("layers") != nullptr) o.layers = fields.integers("layers", 0, layers - 1);
  if (fields.find("heads") != nullptr) o.heads = fields.integers("heads", 0, m.heads - 1);
  o.average_heads = fields.boolean("average_heads", o.average_heads);
  o.decimals = static_cast<int>(fields.integer("decimals", o.decimals, 0, 8));
  fields.reject_unknown();
  return r;
}

// A 400 naming the field when a side is over --serve-max-tokens.
void check_length(const Tokenizer& tokenizer, const std::string& text, const std::string& field,
                  int64_t limit) {
  const auto n = static_cast<int64_t>(tokenizer.encode(text).size());
  if (n > limit) {
    throw HttpError(400, "field \"" + field + "\": " + std::to_string(n) + " tokens, over the limit of " +
                             std::to_string(limit) + " per sentence (--serve-max-tokens)");
  }
}

}  // namespace

void serve_attention(const AttentionJob& job, const AttentionServeOptions& options, std::ostream& log) {
  c10::OptionalDeviceGuard on_device;
  if (!job.device.is_cpu()) on_device.reset_device(job.device);
  auto loaded = load_attention_model(job, log);
  Transformer model = loaded.models[0];
  const ModelConfig config = model->config();
  validate_attention_options(job.options, config);
  const auto build = build_info();
  log << describe_build(build) << "\n";

  // Head masks are the model's state (models/attention.h), so one request
  // at a time uses the model: set its masks, capture, answer.
  std::mutex model_mutex;
  std::atomic<int64_t> waiting{0}, answered{0};
  HttpService http(options.http);
  http.document("/", "text/html; charset=utf-8", attention_explorer_html());
  http.get("/v1/health", [&] {
    return nlohmann::json{{"status", "ok"},
                          {"model", job.checkpoint},
                          {"libtorch", build.libtorch},
                          {"blas", build.blas},
                          {"encoder_layers", config.encoder_layers},
                          {"decoder_layers", config.decoder_layers},
                          {"heads", config.heads},
                          {"queue_requests", waiting.load()},
                          {"requests", answered.load()},
                          {"defaults",
                           {{"beam", job.options.search.beam},
                            {"mask_heads", job.mask_heads},
                            {"alignment_layer", job.options.alignment.layer},
                            {"alignment_head", job.options.alignment.head}}}};
  });
  http.post("/v1/attention", [&](const nlohmann::json& body) {
    JsonFields fields(body);
    const auto request = read_request(fields, job, config);
    check_length(loaded.tokenizers.source, request.text, "text", options.max_sentence_tokens);
    check_length(loaded.tokenizers.target, request.target, "target", options.max_sentence_tokens);
    std::vector<HeadRef> masked;
    try {
      masked = parse_head_mask(request.mask_heads, config, "field \"mask_heads\"");
    } catch (const InputError& e) {
      throw HttpError(400, e.what());
    }
    if (waiting.fetch_add(1) >= options.max_queue) {
      waiting.fetch_sub(1);
      throw HttpError(503,
                      "the server is busy: " + std::to_string(options.max_queue) +
                          " requests wait already (--serve-queue); retry shortly",
                      1);
    }
    std::vector<std::string> warnings;
    std::vector<nlohmann::json> entries;
    try {
      std::lock_guard<std::mutex> lock(model_mutex);
      waiting.fetch_sub(1);
      c10::OptionalDeviceGuard on_model_device;  // each connection's thread
      if (!job.device.is_cpu()) on_model_device.reset_device(job.device);
      model->mask_heads(masked);
      AttentionExporter exporter(model, loaded.tokenizers, request.options);
      const std::vector<std::string> targets = {request.target};
      entries = exporter.entries(
          {request.text}, request.target.empty() ? nullptr : &targets, 0,
          [&](const std::string& w) { warnings.push_back(w); }, "text", "target");
    } catch (const InputError& e) {
      throw HttpError(400, e.what());
    }
    ++answered;
    auto entry = std::move(entries.at(0));
    if (!warnings.empty()) entry["warnings"] = warnings;
    return entry;
  });
  http.run(log);
}

}  // namespace aiayn
