// aiayn-translate: translates text with a trained checkpoint (beam search,
// incremental decoding), and scores it when given references.
#include <iostream>
#include <map>

#include "src/common/app.h"
#include "src/common/cli.h"
#include "src/common/error.h"
#include "src/decode/decoding_choice.h"
#include "src/decode/translate_job.h"
#include "src/serve/translate_service.h"

int main(int argc, char** argv) {
  aiayn::tune_environment(argv, /*training=*/false);
  return aiayn::run_app("aiayn-translate", [&] {
    CLI::App app{
        "Translate text with a Transformer checkpoint written by aiayn-train.\n"
        "Reads one sentence per line (a file, or stdin as lines arrive) and writes one\n"
        "translation per line, in input order.\n"
        "With --tune, translates validation data (--input, --reference) with every beam\n"
        "and alpha of a grid instead, and records the best in the checkpoint's\n"
        "decoding.json; later runs on that checkpoint use them by default.\n"
        "With --serve HOST:PORT, serves POST /v1/translate and GET /v1/health instead\n"
        "(docs/serving.md), decoding concurrent requests together.",
        "aiayn-translate"};
    aiayn::TranslateJob job;
    auto& search = job.options.search;
    int threads = 0;
    std::string device_name = "cpu";
    bool greedy = false, no_cache = false;
    app.add_option("-c,--checkpoint", job.model.checkpoints,
                   "checkpoint directory, or a save directory (its last); several need --ensemble "
                   "or --average-weights")
        ->required();
    bool ensemble = false, average_weights = false;
    auto* ensemble_flag = app.add_flag("--ensemble", ensemble,
                                       "several -c: decode with all of them, their log-probabilities "
                                       "averaged at every step (they must share one vocabulary)");
    app.add_flag("--average-weights", average_weights,
                 "several -c: average their weights into one model (section 6.1's checkpoint averaging)")
        ->excludes(ensemble_flag);
    auto& sampling = search.sampling;
    auto* sampling_flag = app.add_flag("--sampling", sampling.enabled,
                                       "sample outputs instead of searching (back-translation); --nbest N "
                                       "gives N samples per line");
    app.add_option("--sampling-topk", sampling.top_k, "sample among the K likeliest tokens only; 0 = all")
        ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
        ->capture_default_str()
        ->needs(sampling_flag);
    app.add_option("--sampling-topp", sampling.top_p,
                   "sample among the likeliest tokens that make up this probability (nucleus); 1 = all")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str()
        ->needs(sampling_flag);
    app.add_option("--temperature", sampling.temperature,
                   "divides the log-probabilities before sampling; 0 = greedy")
        ->check(CLI::Range(0.0, 1e6))
        ->capture_default_str()
        ->needs(sampling_flag);
    app.add_option("--seed", sampling.seed,
                   "sampling seed: each draw depends on it, the line and the sample alone (not on "
                   "batching, threads or workers)")
        ->capture_default_str()
        ->needs(sampling_flag);
    app.add_option("--prefix", job.prefix,
                   "target prefixes, one per input line (empty line: none): each output starts with its "
                   "line's prefix, forced, and search continues after it");
    app.add_option("--mask-heads", job.model.mask_heads,
                   "head ablation: these heads' outputs are zero, e.g. enc:0:1,dec:2:0,cross:1:3 "
                   "(kind:layer:head, counted from 0 as in aiayn-attention's dump)");
    auto& align = job.options.alignment_options;
    auto* alignment_flag = app.add_flag("--alignment", job.options.alignment,
                                        "append each output's word alignment, ' ||| 0-0 1-2 ...' (Pharaoh: "
                                        "source-target words, 0-based), from encoder-decoder attention");
    app.add_option("--alignment-layer", align.layer,
                   "decoder layer whose attention aligns; -1: the penultimate (Garg et al., 2019)")
        ->capture_default_str()
        ->needs(alignment_flag);
    app.add_option("--alignment-head", align.head, "one head; -1: the mean of the layer's heads")
        ->capture_default_str()
        ->needs(alignment_flag);
    app.add_flag("--alignment-target-chars", align.target_characters,
                 "align to target characters instead of words (targets without spaces)")
        ->needs(alignment_flag);
    app.add_option("--score-targets", job.score_targets,
                   "instead of translating, score these targets (one per input line) by forced decoding: "
                   "'index ||| target ||| score ||| log-prob' lines");
    app.add_option("-i,--input", job.input, "source text; - = stdin")->capture_default_str();
    app.add_option("-o,--output", job.output, "translations; - = stdout")->capture_default_str();
    app.add_option("-b,--beam", search.beam, "beam size (paper: 4)")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_flag("--greedy", greedy, "greedy decoding (same as --beam 1)");
    app.add_option("--alpha", search.length_penalty, "length penalty ((5+|Y|)/6)^alpha (paper: 0.6)")
        ->check(CLI::Range(0.0, 10.0))
        ->capture_default_str();
    app.add_option("--max-len-a", search.max_len_a, "output at most a*|x|+b tokens")
        ->check(CLI::Range(0.0, 100.0))
        ->capture_default_str();
    app.add_option("--max-len-b", search.max_len_b, "output at most a*|x|+b tokens (paper: |x|+50)")
        ->check(CLI::Range(0, 100000))
        ->capture_default_str();
    app.add_option("-n,--nbest", search.nbest, "hypotheses per sentence (implies --scores)")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_flag("--scores", job.scores, "write 'index ||| text ||| score ||| log-prob' lines");
    app.add_option("--batch-size", job.options.batch_sentences, "sentences per batch")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    app.add_option("--batch-tokens", job.options.batch_tokens, "source tokens per batch")
        ->check(CLI::Range(1, 10000000))
        ->capture_default_str();
    const std::map<std::string, aiayn::OutputFormat> formats = {{"text", aiayn::OutputFormat::text},
                                                                {"pieces", aiayn::OutputFormat::pieces},
                                                                {"ids", aiayn::OutputFormat::ids}};
    app.add_option("--output-format", job.output_format,
                   "text (detokenized), pieces (SentencePiece pieces) or ids")
        ->transform(CLI::CheckedTransformer(formats))
        ->default_str("text");
    app.add_option("-r,--reference", job.reference, "print BLEU and chrF2 against this file");
    app.add_flag("--lowercase", job.lowercase, "case-insensitive BLEU and chrF");
    app.add_flag("--no-cache", no_cache,
                 "recompute the decoder over the whole prefix (slow; for comparison)");
    app.add_flag("--int8", job.model.int8,
                 "int8 weights and dynamically quantized inputs for every linear layer (CPU; BLEU within "
                 "a few tenths; 1.3-1.7x fp32 with AVX-512 VNNI, measured on an AMD EPYC; without VNNI "
                 "LibTorch's int8 engine, measured at 0.93x fp32: docs/benchmarks.md)");
    bool no_pack = false;
    app.add_flag("--no-pack", no_pack,
                 "multiply by the float weights through the BLAS at every call, as training does, instead "
                 "of a copy packed once for the CPU's vector unit (slower; for comparison)");
    app.add_option("--threads", threads, "threads in all; 0 = all cores")->capture_default_str();
    int64_t workers = 0;
    app.add_option("--workers", workers,
                   "batches decoded in parallel, one thread each (the rest of --threads splits "
                   "each matrix product instead); 0 = one per thread for a file, 1 for stdin")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
    app.add_option("--device", device_name, "cpu, cuda or cuda:N")->capture_default_str();
    std::string precision = "fp32";
    app.add_option("--precision", precision,
                   "fp32, or bf16 / fp16 matrix products under autocast (fp32 weights and "
                   "log-probabilities); for GPUs: on the CPU the packed fp32 kernels decode faster")
        ->capture_default_str();
    app.add_flag("--raw-weights", job.model.raw_weights,
                 "a checkpoint trained with train.ema_decay: its raw weights, not the moving average");
    aiayn::TuneJob tune;
    bool tuning = false;
    app.add_flag("--tune", tuning,
                 "choose beam and alpha by BLEU on --input/--reference (validation data, never "
                 "the test set) and record them in the checkpoint's decoding.json");
    app.add_option("--tune-beams", tune.beams, "beams --tune tries")
        ->delimiter(',')
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--tune-alphas", tune.alphas, "length penalties --tune tries with each beam > 1")
        ->delimiter(',')
        ->check(CLI::Range(0.0, 10.0))
        ->capture_default_str();
    app.add_option("--tune-alpha-limit", tune.alpha_limit,
                   "while the best alpha is the largest tried, --tune tries larger ones (by the "
                   "grid's last step) up to this; at most the largest of --tune-alphas: no growth")
        ->check(CLI::Range(0.0, 10.0))
        ->capture_default_str();
    std::string serve;
    aiayn::TranslateServeOptions served;
    int64_t batch_wait_us = 5000, batch_quiet_us = 1000;
    bool no_batching = false;
    app.add_option("--serve", serve,
                   "serve HTTP at HOST:PORT (127.0.0.1:8080; another host only when "
                   "named) until SIGTERM or Ctrl-C, instead of translating --input");
    app.add_option("--serve-batch-tokens", served.batcher.max_tokens,
                   "--serve: source tokens of concurrent requests decoded in one call")
        ->check(CLI::Range(1, 10000000))
        ->capture_default_str();
    app.add_option("--serve-batch-wait", batch_wait_us,
                   "--serve: microseconds a decoding call waits at most for requests to share it, "
                   "counted from when the decoder is free")
        ->check(CLI::Range(0, 10000000))
        ->capture_default_str();
    app.add_option("--serve-batch-quiet", batch_quiet_us,
                   "--serve: a call also closes when no request came for this many microseconds (0: wait "
                   "--serve-batch-wait in full)")
        ->check(CLI::Range(0, 10000000))
        ->capture_default_str();
    app.add_flag("--serve-no-batching", no_batching, "--serve: decode each request alone, in arrival order");
    app.add_option("--serve-max-sentences", served.max_sentences,
                   "--serve: sentences per request (more: 413)")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    app.add_option("--serve-max-tokens", served.max_sentence_tokens,
                   "--serve: source tokens per sentence (more: 400)")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    app.add_option("--serve-queue", served.batcher.max_queue,
                   "--serve: sentences waiting to be decoded; more: 503 with Retry-After")
        ->check(CLI::Range(1, 100000000))
        ->capture_default_str();
    aiayn::add_serve_http_options(app, &served.http.max_body_bytes, &served.http.threads);
    if (int code = aiayn::parse_command_line(app, argc, argv); code >= 0) return code;
    aiayn::check_serve_mode(
        app, !serve.empty(),
        {"--input", "--output", "--reference", "--tune", "--prefix", "--score-targets", "--sampling"});

    const int total = aiayn::set_threads(threads);
    job.given = aiayn::given_options(app);
    job.model.device = aiayn::parse_device(device_name);
    // A server splits each gathered call over all workers (src/serve/translate_service.cpp).
    if (workers == 0) workers = (job.input == "-" && serve.empty()) || job.model.device.is_cuda() ? 1 : total;
    job.options.workers = workers;
    job.model.precision = aiayn::parse_precision(precision, "--precision");
    job.model.packed_weights = !no_pack;
    aiayn::set_decoding_threads(job, total);
    if (greedy) search.beam = 1;
    if (search.nbest > 1) job.scores = true;
    search.use_cache = !no_cache;
    job.model.combine = ensemble          ? aiayn::Combine::ensemble
                        : average_weights ? aiayn::Combine::average_weights
                                          : aiayn::Combine::one;
    if (!serve.empty()) {
      aiayn::parse_listen_address(serve, "--serve", served.http);
      served.batcher.enabled = !no_batching;
      served.batcher.max_wait = std::chrono::microseconds(batch_wait_us);
      served.batcher.quiet = std::chrono::microseconds(batch_quiet_us);
      aiayn::serve_translations(job, served, std::cerr);
      return 0;
    }
    if (tuning) {
      tune.translate = job;
      aiayn::run_tune_job(tune, std::cerr);
      return 0;
    }
    aiayn::run_translate_job(job, std::cerr);
    return 0;
  });
}
