// aiayn-translate: translates text with a trained checkpoint (beam search,
// incremental decoding), and scores it when given references.
#include <iostream>

#include "src/common/app.h"
#include "src/common/cli.h"
#include "src/common/error.h"
#include "src/decode/decoding_choice.h"
#include "src/decode/translate_job.h"

int main(int argc, char** argv) {
  aiayn::tune_environment(argv, /*training=*/false);
  return aiayn::run_app("aiayn-translate", [&] {
    CLI::App app{
        "Translate text with a Transformer checkpoint written by aiayn-train.\n"
        "Reads one sentence per line (a file, or stdin as lines arrive) and writes one\n"
        "translation per line, in input order.\n"
        "With --tune, translates validation data (--input, --reference) with every beam\n"
        "and alpha of a grid instead, and records the best in the checkpoint's\n"
        "decoding.json; later runs on that checkpoint use them by default.",
        "aiayn-translate"};
    aiayn::TranslateJob job;
    auto& search = job.options.search;
    int threads = 0;
    std::string device_name = "cpu";
    bool greedy = false, no_cache = false;
    app.add_option("-c,--checkpoint", job.checkpoints,
                   "checkpoint directory, or a save directory (its last); several are averaged")
        ->required();
    app.add_option("-i,--input", job.input, "source text; - = stdin")->capture_default_str();
    app.add_option("-o,--output", job.output, "translations; - = stdout")->capture_default_str();
    app.add_option("-b,--beam", search.beam, "beam size (paper: 4)")
        ->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_flag("--greedy", greedy, "greedy decoding (same as --beam 1)");
    app.add_option("--alpha", search.length_penalty, "length penalty ((5+|Y|)/6)^alpha (paper: 0.6)")
        ->check(CLI::Range(0.0, 10.0))->capture_default_str();
    app.add_option("--max-len-a", search.max_len_a, "output at most a*|x|+b tokens")
        ->check(CLI::Range(0.0, 100.0))->capture_default_str();
    app.add_option("--max-len-b", search.max_len_b, "output at most a*|x|+b tokens (paper: |x|+50)")
        ->check(CLI::Range(0, 100000))->capture_default_str();
    app.add_option("-n,--nbest", search.nbest, "hypotheses per sentence (implies --scores)")
        ->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_flag("--scores", job.scores, "write 'index ||| text ||| score ||| log-prob' lines");
    app.add_option("--batch-size", job.options.batch_sentences, "sentences per batch")
        ->check(CLI::Range(1, 100000))->capture_default_str();
    app.add_option("--batch-tokens", job.options.batch_tokens, "source tokens per batch")
        ->check(CLI::Range(1, 10000000))->capture_default_str();
    app.add_option("--output-format", job.output_format, "text, pieces or ids")
        ->check(CLI::IsMember({"text", "pieces", "ids"}))->capture_default_str();
    app.add_option("-r,--reference", job.reference, "print BLEU and chrF2 against this file");
    app.add_flag("--lowercase", job.lowercase, "case-insensitive BLEU and chrF");
    app.add_flag("--no-cache", no_cache, "recompute the decoder over the whole prefix (slow; for comparison)");
    app.add_flag("--int8", job.int8,
                 "int8 weights and dynamically quantized inputs for every linear layer "
                 "(CPU; faster, BLEU within a few tenths)");
    app.add_option("--threads", threads, "threads in all; 0 = all cores")->capture_default_str();
    int64_t workers = 0;
    app.add_option("--workers", workers,
                   "batches decoded in parallel, one thread each (the rest of --threads splits "
                   "each matrix product instead); 0 = one per thread for a file, 1 for stdin")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
    app.add_option("--device", device_name, "cpu, cuda or cuda:N")->capture_default_str();
    app.add_flag("--raw-weights", job.raw_weights,
                 "a checkpoint trained with train.ema_decay: its raw weights, not the moving average");
    aiayn::TuneJob tune;
    bool tuning = false;
    app.add_flag("--tune", tuning,
                 "choose beam and alpha by BLEU on --input/--reference (validation data, never "
                 "the test set) and record them in the checkpoint's decoding.json");
    app.add_option("--tune-beams", tune.beams, "beams --tune tries")
        ->delimiter(',')->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_option("--tune-alphas", tune.alphas, "length penalties --tune tries with each beam > 1")
        ->delimiter(',')->check(CLI::Range(0.0, 10.0))->capture_default_str();
    if (int code = aiayn::parse_command_line(app, argc, argv); code >= 0) return code;

    const int total = aiayn::set_threads(threads);
    job.device = aiayn::parse_device(device_name);
    if (workers == 0) workers = job.input == "-" || job.device.is_cuda() ? 1 : total;
    job.options.workers = workers;
    // Each worker multiplies on its own thread; one worker uses them all.
    if (workers > 1) aiayn::set_threads(1);
    // Beam and alpha given here win over the checkpoint's decoding.json.
    job.recorded_decoding = !greedy && app.count("--beam") == 0 && app.count("--alpha") == 0;
    if (greedy) search.beam = 1;
    if (search.nbest > 1) job.scores = true;
    search.use_cache = !no_cache;
    // Options that belong to the other mode are refused, not silently dropped.
    if (!tuning) {
      for (const char* flag : {"--tune-beams", "--tune-alphas"}) {
        if (app.count(flag) > 0) throw aiayn::InputError(std::string(flag) + ": only with --tune");
      }
    }
    if (tuning) {
      for (const char* flag : {"--output", "--beam", "--alpha", "--greedy", "--nbest", "--scores"}) {
        if (app.count(flag) > 0) {
          throw aiayn::InputError(std::string(flag) + ": not with --tune (it tries --tune-beams x " +
                                  "--tune-alphas and writes decoding.json, not translations)");
        }
      }
      if (job.checkpoints.size() != 1) {
        throw aiayn::InputError("--tune: give one checkpoint (average first with aiayn-train --average)");
      }
      if (job.input == "-") throw aiayn::InputError("--tune: --input must be a file (validation source)");
      tune.checkpoint = job.checkpoints[0];
      tune.input = job.input;
      tune.reference = job.reference;
      tune.options = job.options;
      tune.lowercase = job.lowercase;
      tune.raw_weights = job.raw_weights;
      tune.device = job.device;
      aiayn::run_tune_job(tune, std::cerr);
      return 0;
    }
    aiayn::run_translate_job(job, std::cerr);
    return 0;
  });
}
