// aiayn-attention: Dump every attention map of a Transformer checkpoint as JSON.
#include "src/app.h"
#include "src/cli.h"

int main(int argc, char** argv) {
  return aiayn::run_app("aiayn-attention", [&] {
    CLI::App app{"Dump every attention map of a Transformer checkpoint as JSON.", "aiayn-attention"};
    std::string checkpoint;
    int threads = 0;
    std::string device_name = "cpu";
    app.add_option("--checkpoint", checkpoint, "checkpoint directory written by aiayn-train")
        ->required();
    app.add_option("--threads", threads, "intra-op threads; 0 = all cores")->capture_default_str();
    app.add_option("--device", device_name, "cpu, cuda or cuda:N")->capture_default_str();
    if (int code = aiayn::parse_command_line(app, argc, argv); code >= 0) return code;
    aiayn::set_threads(threads);
    aiayn::parse_device(device_name);
    std::cerr << "aiayn-attention: checkpoints are not readable yet (issue #4)\n";
    return 2;
  });
}
