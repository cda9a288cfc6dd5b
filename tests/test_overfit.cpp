// Learning: a tiny Transformer learns to reverse a handful of sequences.
#include <catch2/catch.hpp>

#include "models/transformer.h"
#include "src/common/model_config_json.h"
#include "tests/test_util.h"

using namespace aiayn;

namespace {

// Greedy decoding with the incremental state: [B, S] -> [B, <= max_len].
torch::Tensor greedy(Transformer& m, const torch::Tensor& src, int64_t max_len) {
  torch::NoGradGuard no_grad;
  auto padding = padding_mask(src, kPadId);
  auto memory = m->encode(src, padding);
  DecoderState state;
  auto token = torch::full({src.size(0), 1}, kBosId, torch::kLong);
  std::vector<torch::Tensor> out;
  for (int64_t t = 0; t < max_len; ++t) {
    auto logits = m->logits(m->decode(token, memory, padding, {}, &state));  // [B, 1, V]
    token = logits.argmax(-1);                                               // [B, 1]
    out.push_back(token);
  }
  return torch::cat(out, 1);
}

}  // namespace

TEST_CASE("a tiny model overfits a reversal task", "[model][learning]") {
  torch::manual_seed(11);
  torch::set_num_threads(2);
  ModelConfig c = load_model_config(std::string(AIAYN_SOURCE_DIR) + "/configs/tiny.json");
  c.src_vocab = c.tgt_vocab = 16;
  c.p_drop = 0.0;
  Transformer m(c);

  // Eight sequences of 3..7 tokens from ids 4..15, right-padded.
  const int64_t pairs = 8, len = 7;
  auto src = torch::full({pairs, len}, kPadId, torch::kLong);
  auto tgt_in = torch::full({pairs, len + 1}, kPadId, torch::kLong);
  auto tgt_out = torch::full({pairs, len + 1}, kPadId, torch::kLong);
  for (int64_t i = 0; i < pairs; ++i) {
    int64_t n = 3 + i % 5;
    auto seq = torch::randint(4, 16, {n}, torch::kLong);
    auto rev = seq.flip(0);
    src[i].narrow(0, 0, n).copy_(seq);
    tgt_in[i][0] = kBosId;  // bos + y[:-1]
    tgt_in[i].narrow(0, 1, n).copy_(rev);
    tgt_out[i].narrow(0, 0, n).copy_(rev);  // y + eos
    tgt_out[i][n] = kEosId;
  }

  torch::optim::Adam adam(m->parameters(), torch::optim::AdamOptions(3e-3).betas({0.9, 0.98}).eps(1e-9));
  double loss_value = 0;
  for (int step = 0; step < 400; ++step) {
    auto logits = m->forward(src, tgt_in);  // [B, T, V]
    auto loss = torch::nn::functional::cross_entropy(
        logits.view({-1, c.tgt_vocab}), tgt_out.view({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kPadId));
    adam.zero_grad();
    loss.backward();
    adam.step();
    loss_value = loss.item<double>();
    if (loss_value < 1e-3) break;
  }
  INFO("final loss " << loss_value);
  CHECK(loss_value < 0.01);

  m->eval();
  auto hyp = greedy(m, src, len + 1);
  auto real = tgt_out.ne(kPadId);
  CHECK(torch::equal(hyp.masked_select(real), tgt_out.masked_select(real)));
}
