#include "src/decode/head_mask.h"

#include <sstream>

#include "src/common/error.h"

namespace aiayn {

namespace {

const char* kind_name(AttentionKind kind) {
  return kind == AttentionKind::encoder ? "enc" : kind == AttentionKind::decoder ? "dec" : "cross";
}

int64_t parse_index(const std::string& text, bool* ok) {
  size_t used = 0;
  int64_t value = -1;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  *ok = used == text.size() && !text.empty() && value >= 0;
  return value;
}

}  // namespace

std::string to_string(const HeadRef& head) {
  return std::string(kind_name(head.kind)) + ":" + std::to_string(head.layer) + ":" +
         std::to_string(head.head);
}

std::vector<HeadRef> parse_head_mask(const std::string& spec, const ModelConfig& config,
                                     const std::string& option) {
  std::vector<HeadRef> heads;
  std::stringstream items(spec);
  std::string item;
  while (std::getline(items, item, ',')) {
    auto refuse = [&](const std::string& why) {
      throw InputError(option + " " + spec + ": \"" + item + "\": " + why);
    };
    const auto first = item.find(':'),
               second = item.find(':', first == std::string::npos ? first : first + 1);
    if (first == std::string::npos || second == std::string::npos ||
        item.find(':', second + 1) != std::string::npos) {
      refuse("expected KIND:LAYER:HEAD, e.g. enc:0:1 (kinds enc, dec, cross)");
    }
    const std::string kind = item.substr(0, first);
    HeadRef ref;
    if (kind == "enc") {
      ref.kind = AttentionKind::encoder;
    } else if (kind == "dec") {
      ref.kind = AttentionKind::decoder;
    } else if (kind == "cross") {
      ref.kind = AttentionKind::cross;
    } else {
      refuse("the kind must be enc, dec or cross");
    }
    bool ok_layer = false, ok_head = false;
    ref.layer = parse_index(item.substr(first + 1, second - first - 1), &ok_layer);
    ref.head = parse_index(item.substr(second + 1), &ok_head);
    const int64_t layers = ref.kind == AttentionKind::encoder ? config.encoder_layers : config.decoder_layers;
    if (!ok_layer || ref.layer >= layers) {
      refuse("the layer must be 0.." + std::to_string(layers - 1) + " (layers count from 0)");
    }
    if (!ok_head || ref.head >= config.heads) {
      refuse("the head must be 0.." + std::to_string(config.heads - 1) + " (heads count from 0)");
    }
    heads.push_back(ref);
  }
  return heads;
}

}  // namespace aiayn
