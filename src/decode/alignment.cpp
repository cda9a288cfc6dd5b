#include "src/decode/alignment.h"

#include <algorithm>
#include <sstream>

#include "models/config.h"
#include "src/common/error.h"
#include "src/decode/search.h"

namespace aiayn {

namespace {

const std::string kWordMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's word start

bool starts_word(const std::string& piece) { return piece.compare(0, kWordMarker.size(), kWordMarker) == 0; }

// UTF-8 code points of a piece, word markers excluded.
int64_t characters(const std::string& piece) {
  int64_t n = 0;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kWordMarker.size(), kWordMarker) == 0) {
      i += kWordMarker.size();
      continue;
    }
    const auto c = static_cast<unsigned char>(piece[i]);
    i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    ++n;
  }
  return n;
}

// The word of each piece: a new one at each word marker (and at the first).
std::vector<int64_t> word_of_pieces(const std::vector<std::string>& pieces) {
  std::vector<int64_t> word(pieces.size());
  int64_t current = -1;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (i == 0 || starts_word(pieces[i])) ++current;
    word[i] = current;
  }
  return word;
}

}  // namespace

AttentionMaps capture_attention(TransformerImpl& model, const std::vector<int64_t>& source,
                                const std::vector<int64_t>& target) {
  torch::NoGradGuard no_grad;
  const auto device = model.src_embed->weight.device();
  std::vector<int64_t> tgt_ids = {kBosId};
  tgt_ids.insert(tgt_ids.end(), target.begin(), target.end());
  auto src = source_batch({&source}).to(device);                            // [1, S]: + eos
  auto tgt = torch::tensor(tgt_ids, torch::kLong).unsqueeze(0).to(device);  // [1, T]
  auto padding = padding_mask(src, kPadId);                                 // [1, S]
  AttentionMaps maps;
  auto memory = model.encode(src, padding, &maps);
  model.decode(tgt, memory, padding, {}, nullptr, &maps);
  return maps;
}

void validate_alignment_options(const AlignmentOptions& o, const ModelConfig& m) {
  if (o.layer < -1 || o.layer >= m.decoder_layers) {
    throw InputError("--alignment-layer " + std::to_string(o.layer) + ": the decoder has " +
                     std::to_string(m.decoder_layers) + " layers (0-" + std::to_string(m.decoder_layers - 1) +
                     ", or -1 for the penultimate)");
  }
  if (o.head < -1 || o.head >= m.heads) {
    throw InputError("--alignment-head " + std::to_string(o.head) + ": the model has " +
                     std::to_string(m.heads) + " heads (0-" + std::to_string(m.heads - 1) +
                     ", or -1 for their mean)");
  }
}

int64_t alignment_layer(const AlignmentOptions& o, int64_t layers) {
  return o.layer >= 0 ? o.layer : std::max<int64_t>(0, layers - 2);
}

std::vector<Link> hard_alignment(const torch::Tensor& cross, const std::vector<std::string>& source_pieces,
                                 const std::vector<std::string>& target_pieces, const AlignmentOptions& o) {
  const auto s = static_cast<int64_t>(source_pieces.size()), t = static_cast<int64_t>(target_pieces.size());
  if (s == 0 || t == 0) return {};
  auto heads = cross[0].to(torch::kCPU, torch::kDouble);   // [h, T+1, S+1]
  auto map = o.head >= 0 ? heads[o.head] : heads.mean(0);  // [T+1, S+1]
  // Row j is the query that produced target piece j; the last (eos) row and
  // the eos key are not words.
  map = map.narrow(0, 0, t).narrow(1, 0, s).contiguous();  // [T, S]
  const auto source_word = word_of_pieces(source_pieces);
  const int64_t source_words = source_word.back() + 1;
  auto by_word = torch::zeros({t, source_words}, torch::kDouble);  // [T, source words]
  by_word.index_add_(1, torch::tensor(source_word, torch::kLong), map);
  // Target units: the pieces of each (word or character) unit, then a mean.
  std::vector<std::vector<int64_t>> unit_pieces;
  if (o.target_characters) {
    for (int64_t j = 0; j < t; ++j) {
      for (int64_t c = 0; c < characters(target_pieces[static_cast<size_t>(j)]); ++c)
        unit_pieces.push_back({j});
    }
  } else {
    const auto target_word = word_of_pieces(target_pieces);
    unit_pieces.resize(static_cast<size_t>(target_word.back() + 1));
    for (int64_t j = 0; j < t; ++j) unit_pieces[static_cast<size_t>(target_word[j])].push_back(j);
  }
  std::vector<Link> links;
  for (size_t unit = 0; unit < unit_pieces.size(); ++unit) {
    auto rows = torch::tensor(unit_pieces[unit], torch::kLong);  // [pieces of the unit]
    auto weights = by_word.index_select(0, rows).mean(0);        // [source words]
    links.emplace_back(weights.argmax().item<int64_t>(), static_cast<int64_t>(unit));
  }
  return links;
}

std::string pharaoh(const std::vector<Link>& links) {
  std::string out;
  for (const auto& [i, j] : links)
    out += (out.empty() ? "" : " ") + std::to_string(i) + "-" + std::to_string(j);
  return out;
}

GoldAlignment parse_gold_alignment(const std::string& line, const std::string& where) {
  GoldAlignment gold;
  gold.where = where;
  std::istringstream items(line);
  std::string item;
  while (items >> item) {
    const auto cut = item.find_first_of("-?p");
    bool ok = cut != std::string::npos && cut > 0 && cut + 1 < item.size();
    int64_t i = -1, j = -1;
    if (ok) {
      size_t used_i = 0, used_j = 0;
      try {
        i = std::stoll(item.substr(0, cut), &used_i);
        j = std::stoll(item.substr(cut + 1), &used_j);
      } catch (const std::exception&) {
        ok = false;
      }
      ok = ok && used_i == cut && used_j == item.size() - cut - 1 && i >= 0 && j >= 0;
    }
    if (!ok) {
      throw InputError(where + ": \"" + item +
                       "\" is not a link (i-j sure, i?j possible; 0-based source-target)");
    }
    if (item[cut] == '-') gold.sure.insert({i, j});
    gold.possible.insert({i, j});
  }
  return gold;
}

void check_gold_alignment(const GoldAlignment& gold, int64_t source_words, int64_t target_units) {
  for (const auto& [i, j] : gold.possible) {
    if (i >= source_words || j >= target_units) {
      throw InputError(gold.where + ": link " + std::to_string(i) + "-" + std::to_string(j) +
                       " lies outside the pair: " + std::to_string(source_words) + " source words and " +
                       std::to_string(target_units) +
                       " target units (0-based; is the gold file for this source "
                       "and --target, and --alignment-target-chars set as the gold needs?)");
    }
  }
}

int64_t count_words(const std::vector<std::string>& pieces) {
  return pieces.empty() ? 0 : word_of_pieces(pieces).back() + 1;
}

void AerCounts::add(const std::vector<Link>& links, const GoldAlignment& gold) {
  const std::set<Link> a(links.begin(), links.end());
  for (const auto& l : a) {
    hits_sure += gold.sure.count(l);
    hits_possible += gold.possible.count(l);
  }
  predicted += static_cast<int64_t>(a.size());
  sure += static_cast<int64_t>(gold.sure.size());
}

double AerCounts::aer() const {
  const int64_t denominator = predicted + sure;
  return denominator == 0
             ? 0.0
             : 1.0 - static_cast<double>(hits_sure + hits_possible) / static_cast<double>(denominator);
}

}  // namespace aiayn
