#include "src/decode/model_loader.h"

#include <ostream>

#include "models/int8_linear.h"
#include "models/packed_linear.h"
#include "src/common/error.h"
#include "src/decode/checkpoint_reader.h"
#include "src/decode/head_mask.h"

namespace aiayn {

namespace {

// Refuses what cannot run here before anything is read.
void check_runnable(const ModelLoadOptions& o) {
  if (o.checkpoints.empty()) throw OptionError("checkpoint", ": at least one is needed");
  if (o.checkpoints.size() > 1 && o.combine == Combine::one) {
    throw OptionError("checkpoint", " given " + std::to_string(o.checkpoints.size()) +
                                        " times: add {ensemble} (average their log-probabilities at every "
                                        "step) or {average-weights} (average their weights into one model)");
  }
  if (o.int8 && !o.device.is_cpu()) throw OptionError("int8", ": runs on {device} cpu only");
  if (o.int8 && o.precision != Precision::fp32) {
    throw OptionError("int8", std::string(" and {precision} ") + to_string(o.precision) +
                                  ": choose one (int8 replaces the float products)");
  }
  if (const auto why = precision_unavailable_reason(o.precision, o.device); !why.empty()) {
    throw OptionError("precision", ": " + why);
  }
  if (o.int8) {
    if (const auto why = int8_unavailable_reason(); !why.empty()) throw OptionError("int8", ": " + why);
  }
}

// The models the directories make: each its own (an ensemble) or one of
// their averaged weights.
std::vector<Transformer> read_models(const ModelLoadOptions& o, const std::vector<std::string>& dirs,
                                     const TokenizerPair& tokenizers) {
  std::vector<Transformer> models;
  if (o.combine != Combine::ensemble) {
    models.push_back(load_averaged_model(dirs, o.device, o.raw_weights));
    return models;
  }
  for (const auto& dir : dirs) {
    auto own = load_checkpoint_tokenizers(dir);
    if (own.source.hash() != tokenizers.source.hash() || own.target.hash() != tokenizers.target.hash()) {
      throw InputError(dir + ": its vocabulary (spm.model) differs from that of " + dirs.back() +
                       "; an ensemble needs one vocabulary");
    }
    models.push_back(load_model(dir, o.device, o.raw_weights));
  }
  return models;
}

}  // namespace

bool ModelLoadOptions::packs() const {
  return packed_weights && !int8 && device.is_cpu() && precision == Precision::fp32;
}

LoadedModels load_models(const ModelLoadOptions& o, std::ostream& log) {
  check_runnable(o);
  LoadedModels out;
  for (const auto& c : o.checkpoints) out.dirs.push_back(resolve_checkpoint(c));
  out.tokenizers = load_checkpoint_tokenizers(out.dirs.back());
  out.models = read_models(o, out.dirs, out.tokenizers);
  if (!o.mask_heads.empty()) {
    for (auto& m : out.models) m->mask_heads(parse_head_mask(o.mask_heads, m->config()));
    log << "masked heads: " << o.mask_heads << " (their outputs are zero)\n";
  }
  if (o.int8) {
    const auto engine = select_int8_engine();
    for (auto& m : out.models) m->quantize_int8();
    log << "int8: linear layers quantized (per-row int8 weights, dynamic 8-bit inputs; " << engine
        << " engine)\n";
  } else if (o.packs()) {
    for (auto& m : out.models) m->pack_weights();
  }
  if (o.precision != Precision::fp32) {
    log << "precision: " << to_string(o.precision) << " matrix products under autocast, fp32 weights and "
        << "log-probabilities"
        << (o.device.is_cpu() && !cpu_has_native_bf16() && o.precision == Precision::bf16
                ? " (this CPU has no native bf16: expect it slower than fp32)"
                : "")
        << "\n";
  }
  if (out.models.size() > 1)
    log << "ensemble of " << out.models.size() << " models (log-probabilities averaged)\n";
  return out;
}

}  // namespace aiayn
