// `--mask-heads enc:L:H,dec:L:H,cross:L:H`: the heads to ablate at inference
// (Michel et al., 2019), numbered from 0 as the attention dump numbers them.
#pragma once
#include <string>
#include <vector>

#include "models/config.h"
#include "models/transformer.h"

namespace aiayn {

// Parses a list against the model's layers and heads; InputError naming
// `option`, the item and the valid range otherwise. "" gives no heads.
std::vector<HeadRef> parse_head_mask(const std::string& spec, const ModelConfig& config,
                                     const std::string& option = "--mask-heads");

// "enc:0:1" for a head.
std::string to_string(const HeadRef& head);

}  // namespace aiayn
