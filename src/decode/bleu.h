// Corpus BLEU (Papineni et al., 2002) and chrF (Popović, 2015) computed
// exactly as sacreBLEU 2.x does by default, so that scores printed by this
// toolkit can be compared with published sacreBLEU numbers: 13a tokenization,
// one reference per segment, corpus-level statistics.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace aiayn {

// sacreBLEU's default "13a" tokenizer (the tokenization of mteval-v13a.pl):
// output tokens are separated by single spaces, no leading/trailing space.
std::string tokenize_13a(const std::string& line);

// Python's str.lower() for U+0000-U+017F (ASCII, Latin-1, Latin Extended-A)
// and U+0400-U+052F (Cyrillic); other code points and invalid UTF-8 bytes are
// left unchanged. This is what `lowercase` applies before scoring.
std::string lowercase_utf8(const std::string& text);

struct BleuScore {
  double score = 0.0;                  // 0..100
  std::array<double, 4> precisions{};  // percent, after "exp" smoothing
  std::array<long long, 4> matches{};  // clipped n-gram matches per order
  std::array<long long, 4> totals{};   // hypothesis n-grams per order
  double bp = 0.0;                     // brevity penalty
  double ratio = 0.0;                  // hyp_len / ref_len (0 if ref_len == 0)
  long long hyp_len = 0;
  long long ref_len = 0;
  bool lowercase = false;

  // "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:aiayn"
  std::string signature() const;
  // "BLEU = 34.52 67.1/41.2/27.8/19.0 (BP = 1.000 ratio = 1.012 hyp_len = 12345 ref_len = 12200)"
  std::string format() const;
};

struct ChrfScore {
  double score = 0.0;  // 0..100
  bool lowercase = false;

  // "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:aiayn"
  std::string signature() const;
  // "chrF2 = 57.12"
  std::string format() const;
};

// hyps[i] is scored against refs[i]. Throws std::invalid_argument when the
// two have different sizes.
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                      bool lowercase = false);
ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                      bool lowercase = false);

}  // namespace aiayn
