#include "src/data/bpe_dropout.h"

#include <queue>

namespace aiayn {

namespace {

const std::string kWordStart = "\xE2\x96\x81";  // U+2581, SentencePiece's word boundary

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double uniform(uint64_t* state) { return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53; }

size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

BpeDropout::BpeDropout(const Tokenizer& tokenizer) {
  const auto n = static_cast<int32_t>(tokenizer.vocab_size());
  text_.resize(static_cast<size_t>(n));
  starts_word_.resize(static_cast<size_t>(n));
  normal_.resize(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    text_[id] = tokenizer.piece(id);
    starts_word_[id] = text_[id].compare(0, kWordStart.size(), kWordStart) == 0;
    normal_[id] = tokenizer.is_normal(id);
    if (normal_[id]) pieces_.emplace(text_[id], Piece{id, tokenizer.score(id)});
  }
}

uint64_t BpeDropout::seed_for(uint64_t seed, int64_t epoch, int64_t pair, int side) {
  uint64_t state = seed;
  for (uint64_t v :
       {static_cast<uint64_t>(epoch), static_cast<uint64_t>(pair), static_cast<uint64_t>(side)}) {
    state = splitmix64(&state) ^ v;
  }
  return splitmix64(&state);
}

// SentencePiece's BPE encoding (bpe_model.cc) on one word: start from its
// characters, repeatedly apply the best-scoring merge of two neighbours whose
// concatenation is a piece (the leftmost on ties), and skip a merge with
// probability p when it comes up.
void BpeDropout::merge_word(const std::string& word, double p, uint64_t* state,
                            std::vector<int64_t>* out) const {
  struct Symbol {
    size_t begin, size;
    int prev, next;
  };
  std::vector<Symbol> symbols;
  for (size_t i = 0; i < word.size();) {
    const size_t len = std::min(utf8_length(static_cast<unsigned char>(word[i])), word.size() - i);
    symbols.push_back({i, len, static_cast<int>(symbols.size()) - 1, static_cast<int>(symbols.size()) + 1});
    i += len;
  }
  symbols.back().next = -1;
  struct Candidate {
    float score;
    int left, right;
    size_t size;
  };
  auto lower = [](const Candidate& a, const Candidate& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(lower)> agenda(lower);
  auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t size = symbols[left].size + symbols[right].size;
    auto it = pieces_.find(word.substr(symbols[left].begin, size));
    if (it != pieces_.end()) agenda.push({it->second.score, left, right, size});
  };
  for (size_t i = 1; i < symbols.size(); ++i) consider(static_cast<int>(i) - 1, static_cast<int>(i));
  while (!agenda.empty()) {
    const Candidate top = agenda.top();
    agenda.pop();
    auto& l = symbols[top.left];
    auto& r = symbols[top.right];
    if (l.size == 0 || r.size == 0 || l.size + r.size != top.size) continue;  // stale
    if (p > 0 && uniform(state) < p) continue;                                // dropped this time
    l.size += r.size;
    r.size = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = top.left;
    consider(l.prev, top.left);
    consider(top.left, l.next);
  }
  for (int i = 0; i >= 0; i = symbols[i].next) {
    out->push_back(pieces_.at(word.substr(symbols[i].begin, symbols[i].size)).id);
  }
}

void BpeDropout::resample(const int64_t* ids, int64_t n, double p, uint64_t seed,
                          std::vector<int64_t>* out) const {
  out->clear();
  uint64_t state = seed;
  for (int64_t begin = 0; begin < n;) {
    int64_t end = begin + 1;
    while (end < n && !starts_word_[ids[end]]) ++end;
    // A word is re-merged only when every character is itself a piece.
    bool ok = true;
    std::string word;
    for (int64_t i = begin; i < end && ok; ++i) {
      ok = normal_[ids[i]] != 0;
      word += text_[ids[i]];
    }
    for (size_t i = 0; i < word.size() && ok;) {
      const size_t len = std::min(utf8_length(static_cast<unsigned char>(word[i])), word.size() - i);
      ok = pieces_.count(word.substr(i, len)) > 0;
      i += len;
    }
    if (ok) {
      merge_word(word, p, &state, out);
    } else {
      out->insert(out->end(), ids + begin, ids + end);
    }
    begin = end;
  }
}

}  // namespace aiayn
