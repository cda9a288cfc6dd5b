// aiayn-attention --serve: the live attention explorer. GET / is the page
// (self-contained, no network), POST /v1/attention answers a sentence with
// its dump entry (docs/attention-format.md), GET /v1/health says what runs.
#pragma once
#include <iosfwd>

#include "src/attention/attention_job.h"
#include "src/serve/http_service.h"

namespace aiayn {

struct AttentionServeOptions {
  ServeOptions http;
  int64_t max_sentence_tokens = 256;  // source or target tokens; more: 400
  int64_t max_queue = 16;             // requests waiting for the model; more: 503
};

// Serves until SIGTERM or SIGINT, then finishes the requests in flight. The
// job's options (kinds, layers, heads, beam, alignment, --mask-heads) are
// each request's defaults.
void serve_attention(const AttentionJob& job, const AttentionServeOptions& options, std::ostream& log);

}  // namespace aiayn
