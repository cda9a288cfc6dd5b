// Token embeddings, section 3.4: a learned [vocab, d_model] matrix whose rows
// are multiplied by sqrt(d_model). The same matrix may also serve as the
// pre-softmax projection (weight tying, see Transformer).
#pragma once
#include <torch/torch.h>

namespace aiayn {

struct TokenEmbeddingOptions {
  TokenEmbeddingOptions(int64_t vocab, int64_t d_model) : vocab_(vocab), d_model_(d_model) {}
  /// Vocabulary size.
  TORCH_ARG(int64_t, vocab);
  /// Embedding width.
  TORCH_ARG(int64_t, d_model);
  /// Id whose row stays zero and gets no gradient.
  TORCH_ARG(int64_t, pad_id) = 0;
};

class TokenEmbeddingImpl : public torch::nn::Module {
 public:
  explicit TokenEmbeddingImpl(const TokenEmbeddingOptions& options);
  torch::Tensor forward(const torch::Tensor& ids);  // [B, T] -> [B, T, d_model]

  TokenEmbeddingOptions options;
  torch::Tensor weight;  // [vocab, d_model]
};
TORCH_MODULE(TokenEmbedding);

}  // namespace aiayn
