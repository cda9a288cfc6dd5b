#include "src/attention/attention_export.h"

#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "models/config.h"
#include "src/common/error.h"
#include "src/common/text_reader.h"

namespace aiayn {

namespace {

std::string index_list(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

std::vector<int64_t> all_up_to(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

}  // namespace

void validate_attention_options(const AttentionExportOptions& o, const ModelConfig& m) {
  if (!o.encoder && !o.decoder && !o.cross) throw InputError("--kinds: choose at least one kind");
  // A layer index must exist in every stack whose maps are written.
  int64_t layers = std::numeric_limits<int64_t>::max();
  if (o.encoder) layers = std::min(layers, m.encoder_layers);
  if (o.decoder || o.cross) layers = std::min(layers, m.decoder_layers);
  for (int64_t l : o.layers) {
    if (l < 0 || l >= layers) {
      throw InputError("--layers " + index_list(o.layers) + ": layer " + std::to_string(l) +
                       " does not exist; the model has " + std::to_string(m.encoder_layers) +
                       " encoder and " + std::to_string(m.decoder_layers) + " decoder layers (valid: 0-" +
                       std::to_string(layers - 1) + ")");
    }
  }
  for (int64_t h : o.heads) {
    if (h < 0 || h >= m.heads) {
      throw InputError("--heads " + index_list(o.heads) + ": head " + std::to_string(h) +
                       " does not exist; the model has " + std::to_string(m.heads) + " heads (valid: 0-" +
                       std::to_string(m.heads - 1) + ")");
    }
  }
  if (o.decimals < 0 || o.decimals > 8) throw InputError("--decimals must be in [0, 8]");
  validate_alignment_options(o.alignment, m);
}

AttentionExporter::AttentionExporter(Transformer model, TokenizerPair tokenizers,
                                     AttentionExportOptions options)
    : model_(std::move(model)), tokenizers_(std::move(tokenizers)), options_(std::move(options)) {
  model_->eval();
  validate_attention_options(options_, model_->config());
}

std::vector<int64_t> AttentionExporter::layer_ids(int64_t stack_layers) const {
  return options_.layers.empty() ? all_up_to(stack_layers) : options_.layers;
}

nlohmann::json AttentionExporter::maps_json(const std::vector<torch::Tensor>& per_layer) const {
  const auto layers = layer_ids(static_cast<int64_t>(per_layer.size()));
  const auto heads = options_.heads.empty() ? all_up_to(model_->config().heads) : options_.heads;
  auto head_index = torch::tensor(heads, torch::kLong);
  const double scale = std::pow(10.0, options_.decimals);
  nlohmann::json out = nlohmann::json::array();
  for (int64_t l : layers) {
    auto maps = per_layer[static_cast<size_t>(l)][0].cpu().index_select(0, head_index);  // [h', T, S]
    if (options_.average_heads) maps = maps.mean(0, true);                               // [1, T, S]
    maps = maps.to(torch::kDouble).contiguous();
    auto a = maps.accessor<double, 3>();
    nlohmann::json layer = nlohmann::json::array();
    for (int64_t h = 0; h < a.size(0); ++h) {
      nlohmann::json rows = nlohmann::json::array();
      for (int64_t q = 0; q < a.size(1); ++q) {
        nlohmann::json row = nlohmann::json::array();
        for (int64_t k = 0; k < a.size(2); ++k) row.push_back(std::round(a[h][q][k] * scale) / scale);
        rows.push_back(std::move(row));
      }
      layer.push_back(std::move(rows));
    }
    out.push_back(std::move(layer));
  }
  return out;
}

void AttentionExporter::write(const std::vector<std::string>& sources,
                              const std::vector<std::string>* targets, int64_t first_index, std::ostream& out,
                              const std::function<void(const std::string&)>& warn,
                              const std::string& source_name, const std::string& target_name,
                              const std::vector<GoldAlignment>* gold) {
  for (const auto& entry : entries(sources, targets, first_index, warn, source_name, target_name, gold)) {
    out << entry.dump() << '\n';
  }
  out.flush();
}

std::vector<nlohmann::json> AttentionExporter::entries(
    const std::vector<std::string>& sources, const std::vector<std::string>* targets, int64_t first_index,
    const std::function<void(const std::string&)>& warn, const std::string& source_name,
    const std::string& target_name, const std::vector<GoldAlignment>* gold) {
  std::vector<nlohmann::json> out;
  const int64_t limit = model_->config().max_positions - 1;
  const size_t n = sources.size();
  std::vector<std::vector<int64_t>> src(n), tgt(n);
  std::vector<std::string> target_text(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string line = ":" + std::to_string(first_index + static_cast<int64_t>(i) + 1);
    src[i] = encode_for_model(tokenizers_.source, sources[i], limit, source_name + line,
                              "that side is left empty", warn);
    if (targets != nullptr) {
      target_text[i] = (*targets)[i];
      tgt[i] = encode_for_model(tokenizers_.target, target_text[i], limit, target_name + line,
                                "that side is left empty", warn);
    }
  }
  if (targets == nullptr) {
    // The model's own translations, searched as a batch.
    std::vector<size_t> rows;
    std::vector<const std::vector<int64_t>*> row_ids;
    for (size_t i = 0; i < n; ++i) {
      if (!src[i].empty()) {
        rows.push_back(i);
        row_ids.push_back(&src[i]);
      }
    }
    if (!rows.empty()) {
      auto batch = source_batch(row_ids);  // [B, S]
      auto results = search(*model_, batch.to(model_->src_embed->weight.device()), options_.search);
      for (size_t r = 0; r < rows.size(); ++r) {
        tgt[rows[r]] = results[r].empty() ? std::vector<int64_t>{} : results[r][0].tokens;
        target_text[rows[r]] =
            tokenizers_.target.decode(std::vector<int32_t>(tgt[rows[r]].begin(), tgt[rows[r]].end()));
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    nlohmann::json entry = {{"version", kAttentionFormatVersion},
                            {"index", first_index + static_cast<int64_t>(i)},
                            {"source", valid_utf8(sources[i]) ? sources[i] : ""},
                            {"target", valid_utf8(target_text[i]) ? target_text[i] : ""}};
    nlohmann::json enc_tokens = nlohmann::json::array(), dec_tokens = nlohmann::json::array();
    AttentionMaps maps;
    std::string alignment;
    if (!src[i].empty()) {
      std::vector<std::string> source_pieces, target_pieces;
      for (int64_t id : src[i]) source_pieces.push_back(tokenizers_.source.piece(static_cast<int32_t>(id)));
      for (int64_t id : tgt[i]) target_pieces.push_back(tokenizers_.target.piece(static_cast<int32_t>(id)));
      for (const auto& p : source_pieces) enc_tokens.push_back(p);
      enc_tokens.push_back(tokenizers_.source.piece(kEosId));
      dec_tokens.push_back(tokenizers_.target.piece(kBosId));
      for (const auto& p : target_pieces) dec_tokens.push_back(p);
      maps = capture_attention(*model_, src[i], tgt[i]);
      const int64_t layer = alignment_layer(options_.alignment, model_->config().decoder_layers);
      const auto links = hard_alignment(maps.cross[static_cast<size_t>(layer)], source_pieces, target_pieces,
                                        options_.alignment);
      alignment = pharaoh(links);
      const size_t index = static_cast<size_t>(first_index) + i;
      if (gold != nullptr && index < gold->size()) {
        // hard_alignment gives one link per target unit (word or character).
        check_gold_alignment((*gold)[index], count_words(source_pieces), static_cast<int64_t>(links.size()));
        for (int64_t l = 0; l < model_->config().decoder_layers; ++l) {
          for (int64_t h = -1; h < model_->config().heads; ++h) {
            AlignmentOptions o = options_.alignment;
            o.layer = l;
            o.head = h;
            aer_[{l, h}].add(
                hard_alignment(maps.cross[static_cast<size_t>(l)], source_pieces, target_pieces, o),
                (*gold)[index]);
          }
        }
      }
    }
    entry["alignment"] = alignment;
    entry["encoder_tokens"] = enc_tokens;
    entry["decoder_tokens"] = dec_tokens;
    entry["layers"] = {{"encoder", layer_ids(model_->config().encoder_layers)},
                       {"decoder", layer_ids(model_->config().decoder_layers)}};
    entry["heads"] =
        options_.average_heads
            ? nlohmann::json("mean")
            : nlohmann::json(options_.heads.empty() ? all_up_to(model_->config().heads) : options_.heads);
    auto kind = [&](bool on, const char* name, const std::vector<torch::Tensor>& m) {
      if (on) entry[name] = src[i].empty() ? nlohmann::json::array() : maps_json(m);
    };
    kind(options_.encoder, "encoder_attention", maps.encoder);
    kind(options_.decoder, "decoder_attention", maps.decoder);
    kind(options_.cross, "cross_attention", maps.cross);
    out.push_back(std::move(entry));
  }
  return out;
}

std::string AttentionExporter::aer_table() const {
  std::ostringstream out;
  out << "AER of encoder-decoder attention (lower is better), per decoder layer: the heads' mean, then each head\n";
  out << std::fixed << std::setprecision(3);
  for (int64_t l = 0; l < model_->config().decoder_layers; ++l) {
    out << "layer " << l << ":";
    for (int64_t h = -1; h < model_->config().heads; ++h) {
      auto it = aer_.find({l, h});
      out << (h < 0 ? " mean " : (h == 0 ? " | heads" : "")) << " "
          << (it == aer_.end() ? 0.0 : it->second.aer());
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace aiayn
