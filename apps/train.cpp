// aiayn-train: trains a Transformer (the paper's recipe, section 5).
#include "models/transformer.h"
#include "src/app.h"
#include "src/cli.h"

int main(int argc, char** argv) {
  return aiayn::run_app("aiayn-train", [&] {
    CLI::App app{"Train a Transformer (Vaswani et al., 2017) on a parallel corpus.", "aiayn-train"};
    std::string config_path;
    int64_t vocab = 0;
    int threads = 0;
    std::string device_name = "cpu";
    uint64_t seed = 1;
    bool summary = false;
    app.add_option("-c,--config", config_path, "JSON config with a \"model\" section (configs/)")
        ->required();
    app.add_option("--vocab", vocab, "joint vocabulary size (until a tokenizer provides it)")
        ->check(CLI::PositiveNumber);
    app.add_option("--threads", threads, "intra-op threads; 0 = all cores")->capture_default_str();
    app.add_option("--device", device_name, "cpu, cuda or cuda:N")->capture_default_str();
    app.add_option("--seed", seed, "seed for weight initialisation")->capture_default_str();
    app.add_flag("--summary", summary, "build the model, print its summary and exit");
    if (int code = aiayn::parse_command_line(app, argc, argv); code >= 0) return code;

    aiayn::set_threads(threads);
    auto device = aiayn::parse_device(device_name);
    auto config = aiayn::load_model_config(config_path);
    if (vocab > 0) config.src_vocab = config.tgt_vocab = vocab;
    config.require_vocab(config_path);
    torch::manual_seed(seed);
    aiayn::Transformer model(config);
    model->to(device);
    std::cout << config_path << ": " << model->summary() << std::endl;
    if (!summary) {
      std::cerr << "aiayn-train: training is not built yet (issue #4); use --summary\n";
      return 2;
    }
    return 0;
  });
}
