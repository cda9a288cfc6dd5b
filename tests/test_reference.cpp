// Numerical equivalence with PyTorch's torch.nn.TransformerEncoder/Decoder:
// the reference is generated at test time by tests/reference/torch_stacks.py
// with Debian's python3-torch; no binary fixtures are committed.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "models/decoder.h"
#include "models/encoder.h"
#include "tests/test_util.h"

using namespace aiayn;

namespace {

constexpr const char* kPython = "/usr/bin/python3";

// Raw tensors written by torch_stacks.py, by name.
std::map<std::string, torch::Tensor> load_dump(const std::string& dir) {
  auto manifest = nlohmann::json::parse(test::read_file(dir + "/manifest.json"));
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, info] : manifest.items()) {
    std::vector<int64_t> shape = info["shape"];
    auto dtype = info["dtype"] == "bool" ? torch::kBool : torch::kFloat32;
    std::string bytes = test::read_file(dir + "/" + name + ".bin");
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    REQUIRE(bytes.size() == size_t(t.numel()) * t.element_size());
    std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
    out[name] = t;
  }
  return out;
}

// PyTorch names its feed-forward linear1/linear2 directly on the layer; ours
// sit in a FeedForward module (section 3.3). Everything else matches by name.
std::string our_name(std::string name) {
  for (const char* l : {".linear1.", ".linear2."}) {
    auto at = name.find(l);
    if (at != std::string::npos) name.insert(at + 1, "feed_forward.");
  }
  return name;
}

void load_weights(torch::nn::Module& module, const std::string& prefix,
                  const std::map<std::string, torch::Tensor>& dump) {
  torch::NoGradGuard no_grad;
  auto params = module.named_parameters();
  size_t loaded = 0;
  for (const auto& [name, value] : dump) {
    if (name.rfind(prefix, 0) != 0) continue;
    auto ours = our_name(name.substr(prefix.size()));
    auto* p = params.find(ours);
    INFO("PyTorch parameter " << name << " -> " << ours);
    REQUIRE(p != nullptr);
    REQUIRE(p->sizes() == value.sizes());
    p->copy_(value);
    ++loaded;
  }
  CHECK(loaded == params.size());  // every parameter of ours was set
}

void compare_with_pytorch(bool norm_first) {
  test::TempDir dir;
  std::string script = std::string(AIAYN_SOURCE_DIR) + "/tests/reference/torch_stacks.py";
  auto result = test::run(std::string(kPython) + " " + script + " " + dir.path().string() +
                          (norm_first ? " --norm-first" : ""));
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  auto dump = load_dump(dir.path().string());

  auto options = LayerOptions(32, 4, 64).p_drop(0.0).norm_first(norm_first);
  Encoder encoder(options, 2);
  Decoder decoder(options, 2);
  load_weights(*encoder, "encoder.", dump);
  load_weights(*decoder, "decoder.", dump);
  encoder->eval();
  decoder->eval();
  torch::NoGradGuard no_grad;

  auto memory = encoder(dump["src"], dump["src_padding"]);
  double encoder_diff = test::max_abs_diff(memory, dump["memory"]);
  // The decoder gets PyTorch's memory, so its check does not inherit ours.
  auto decoded = decoder(dump["tgt"], dump["memory"], dump["tgt_padding"], dump["src_padding"]);
  double decoder_diff = test::max_abs_diff(decoded, dump["decoded"]);
  WARN((norm_first ? "pre-LN" : "post-LN")
       << " max abs diff vs PyTorch: encoder " << encoder_diff << ", decoder " << decoder_diff);
  CHECK(encoder_diff <= 1e-5);
  CHECK(decoder_diff <= 1e-5);
}

}  // namespace

TEST_CASE("encoder and decoder stacks equal PyTorch's (post-LN)", "[model][reference]") {
  compare_with_pytorch(false);
}

TEST_CASE("encoder and decoder stacks equal PyTorch's (pre-LN)", "[model][reference]") {
  compare_with_pytorch(true);
}
