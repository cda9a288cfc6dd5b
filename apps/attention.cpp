// aiayn-attention: every attention map of a checkpoint as JSON Lines, and an
// HTML viewer for them (docs/attention-format.md).
#include <iostream>

#include "src/attention/attention_job.h"
#include "src/common/app.h"
#include "src/common/cli.h"
#include "src/serve/attention_service.h"

int main(int argc, char** argv) {
  aiayn::tune_environment(argv, /*training=*/false);
  return aiayn::run_app("aiayn-attention", [&] {
    CLI::App app{
        "Dump the attention weights of a Transformer checkpoint as JSON Lines (one object per\n"
        "sentence; see docs/attention-format.md), optionally with a self-contained HTML viewer.\n"
        "With --target the given pairs are force-decoded; without, the model's own translation\n"
        "(greedy, or --beam) is.\n"
        "With --serve HOST:PORT, serves the live explorer instead: open http://HOST:PORT/, type a\n"
        "sentence and watch every head; POST /v1/attention answers with a dump entry\n"
        "(docs/serving.md).",
        "aiayn-attention"};
    aiayn::AttentionJob job;
    auto& o = job.options;
    std::string kinds = "encoder,decoder,cross", device_name = "cpu";
    int threads = 0;
    app.add_option("-c,--checkpoint", job.checkpoint, "checkpoint directory, or a save directory")->required();
    app.add_option("-i,--source", job.source, "source sentences; - = stdin")->capture_default_str();
    app.add_option("-t,--target", job.target, "target sentences to force-decode (line by line)");
    app.add_option("-o,--output", job.output, "JSON Lines output; - = stdout")->capture_default_str();
    app.add_option("--html", job.html, "also write the HTML viewer here, with the dump embedded");
    app.add_option("--mask-heads", job.mask_heads,
                   "head ablation: these heads' outputs and weights are zero, e.g. enc:0:1,cross:1:3 "
                   "(kind:layer:head, counted from 0)");
    app.add_option("--alignment-layer", o.alignment.layer,
                   "decoder layer whose encoder-decoder attention gives the \"alignment\" field; "
                   "-1: the penultimate")
        ->capture_default_str();
    app.add_option("--alignment-head", o.alignment.head, "one head for the alignment; -1: the heads' mean")
        ->capture_default_str();
    app.add_flag("--alignment-target-chars", o.alignment.target_characters,
                 "align to target characters instead of words (targets without spaces, as ISO dates)");
    app.add_option("--gold-alignment", job.gold_alignment,
                   "gold links per source line (Pharaoh: i-j sure, i?j possible, 0-based source-target): "
                   "print the AER of every decoder layer and head (with --target, the references they link)");
    app.add_option("--kinds", kinds, "comma-separated: encoder, decoder, cross")->capture_default_str();
    app.add_option("--layers", o.layers, "layer indices to keep (default: all)")->delimiter(',');
    app.add_option("--heads", o.heads, "head indices to keep (default: all)")->delimiter(',');
    app.add_flag("--average-heads", o.average_heads, "write the mean over the chosen heads");
    app.add_option("--decimals", o.decimals, "rounding of the weights")->capture_default_str();
    app.add_option("-b,--beam", o.search.beam, "beam for translating sources without targets")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--threads", threads, "intra-op threads; 0 = all cores")->capture_default_str();
    app.add_option("--device", device_name, "cpu, cuda or cuda:N")->capture_default_str();
    std::string serve;
    aiayn::AttentionServeOptions served;
    app.add_option("--serve", serve,
                   "serve the live explorer at HOST:PORT (127.0.0.1:8080; another host only when named) "
                   "until SIGTERM or Ctrl-C, instead of reading --source");
    app.add_option("--serve-max-tokens", served.max_sentence_tokens,
                   "--serve: tokens of a sentence or its target (more: 400)")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    app.add_option("--serve-queue", served.max_queue,
                   "--serve: requests waiting for the model; more: 503 with Retry-After")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    aiayn::add_serve_http_options(app, &served.http.max_body_bytes, &served.http.threads);
    if (int code = aiayn::parse_command_line(app, argc, argv); code >= 0) return code;
    aiayn::check_serve_mode(app, !serve.empty(),
                            {"--source", "--target", "--output", "--html", "--gold-alignment"});

    aiayn::set_threads(threads);
    job.device = aiayn::parse_device(device_name);
    aiayn::parse_attention_kinds(kinds, &o);
    if (!serve.empty()) {
      aiayn::parse_listen_address(serve, "--serve", served.http);
      aiayn::serve_attention(job, served, std::cerr);
      return 0;
    }
    aiayn::run_attention_job(job, std::cerr);
    return 0;
  });
}
