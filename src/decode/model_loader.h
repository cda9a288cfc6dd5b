// The one way decoding gets its models: translate, --tune and the attention
// export all load through here, so that a checkpoint means the same model to
// each (they had drifted once: 3ed953c). Checkpoints are resolved and read
// (src/decode/checkpoint_reader.h), combined, heads masked, and the linear
// layers made int8 or packed for the CPU as the options say.
#pragma once
#include <torch/torch.h>

#include <iosfwd>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "src/common/precision.h"
#include "src/data/tokenizer.h"

namespace aiayn {

// What several checkpoints make: an ensemble (their log-probabilities
// averaged at every step) or one model (their weights averaged, as section
// 6.1 does with the last checkpoints of a run).
enum class Combine { one, ensemble, average_weights };

struct ModelLoadOptions {
  std::vector<std::string> checkpoints;  // checkpoint or save directories (their last)
  Combine combine = Combine::one;        // several need ensemble or average_weights
  torch::Device device = torch::kCPU;
  bool raw_weights = false;  // an EMA run's raw weights instead of the average
  std::string mask_heads;    // heads to ablate: enc:L:H,dec:L:H,cross:L:H (src/decode/head_mask.h)
  bool int8 = false;         // dynamic int8 linear layers (CPU)
  // Float weights packed once for the CPU's vector unit (models/packed_linear.h);
  // false: the BLAS at every call, as in training. Only for fp32 on the CPU.
  bool packed_weights = true;
  // The products' precision under autocast (src/common/precision.h): int8
  // and packing are fp32 paths, so anything else turns them off.
  Precision precision = Precision::fp32;

  // Whether the float weights are packed: fp32 on the CPU, not int8.
  bool packs() const;
};

struct LoadedModels {
  std::vector<std::string> dirs;    // the checkpoint directories, resolved
  std::vector<Transformer> models;  // one, or an ensemble's members; eval mode, on the device
  TokenizerPair tokenizers;         // shared by all of them
};

// Loads as the options say, writing what was done (masked heads, int8,
// autocast, ensemble size) to `log`. OptionError (keys checkpoint, int8,
// precision) for a combination that cannot run; InputError naming the file
// for a missing or damaged checkpoint.
LoadedModels load_models(const ModelLoadOptions& options, std::ostream& log);

}  // namespace aiayn
