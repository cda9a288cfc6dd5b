// aiayn-translate --serve: the job's model behind POST /v1/translate and
// GET /v1/health, with concurrent requests decoded together
// (src/serve/translation_batcher.h).
#pragma once
#include <iosfwd>

#include "src/decode/translate_job.h"
#include "src/serve/http_service.h"
#include "src/serve/translation_batcher.h"

namespace aiayn {

struct TranslateServeOptions {
  ServeOptions http;
  BatcherOptions batcher;
  int64_t max_sentences = 64;         // per request; more: 413
  int64_t max_sentence_tokens = 256;  // source tokens per sentence; more: 400
};

// Serves until SIGTERM or SIGINT, then finishes the requests in flight.
// The job's options are each request's defaults (beam and alpha from the
// checkpoint's decoding.json where the command line gave neither).
void serve_translations(const TranslateJob& job, const TranslateServeOptions& options, std::ostream& log);

}  // namespace aiayn
