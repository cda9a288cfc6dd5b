// Positional information, section 3.5: the sinusoids
//   PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(...)
// or learned position embeddings (Table 3 row E).
#pragma once
#include <torch/torch.h>

namespace aiayn {

struct PositionalEncodingOptions {
  PositionalEncodingOptions(int64_t d_model, int64_t max_positions)
      : d_model_(d_model), max_positions_(max_positions) {}
  /// Width of the encodings.
  TORCH_ARG(int64_t, d_model);
  /// Longest sequence supported.
  TORCH_ARG(int64_t, max_positions);
  /// Learned embeddings instead of sinusoids.
  TORCH_ARG(bool, learned) = false;
};

class PositionalEncodingImpl : public torch::nn::Module {
 public:
  explicit PositionalEncodingImpl(const PositionalEncodingOptions& options);
  // Encodings of positions [offset, offset + length): [length, d_model].
  torch::Tensor forward(int64_t offset, int64_t length);

  PositionalEncodingOptions options;
  torch::Tensor table;  // [max_positions, d_model]: a buffer, or a parameter when learned
};
TORCH_MODULE(PositionalEncoding);

// The sinusoid table of section 3.5: [max_positions, d_model].
torch::Tensor sinusoid_table(int64_t max_positions, int64_t d_model);

}  // namespace aiayn
