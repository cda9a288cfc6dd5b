// Scoring (src/bleu): the 13a tokenizer on hand cases, BLEU and chrF on
// corpora small enough to compute by hand, and agreement with NLTK's
// corpus_bleu on perturbed Multi30k references (tests/reference/nltk_bleu.py,
// run with Debian's python3-nltk).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "src/decode/bleu.h"
#include "tests/multi30k_data.h"
#include "tests/test_util.h"

using namespace aiayn;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

constexpr const char* kPython = "/usr/bin/python3";

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) FAIL("cannot read " << path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

using test::multi30k;
using test::multi30k_present;

std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> w;
  std::istringstream in(line);
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

// A deterministic "system output" made from reference i: two to five edits
// (drop a word, swap two, truncate, change a word's case, replace a word),
// chosen by a fixed LCG. Lands BLEU in the 20-60 range. Never leaves fewer
// than 4 words (see corpus()).
std::string perturb(const std::string& line, size_t i) {
  std::vector<std::string> w = words_of(line);
  uint32_t state = static_cast<uint32_t>(i) * 2654435761u + 12345u;
  const auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  const int edits = 2 + static_cast<int>(i % 4);
  for (int k = 0; k < edits && w.size() > 4; ++k) {
    const size_t p = next() % (w.size() - 1);
    switch (next() % 6) {
      case 0:
        w.erase(w.begin() + p);
        break;
      case 1:
        std::swap(w[p], w[p + 1]);
        break;
      case 2:
        w.resize(std::max<size_t>(4, w.size() * 2 / 3));
        break;
      case 3:
        w[p] = lowercase_utf8(w[p]);
        break;  // "Mann" -> "mann": lowercase BLEU forgives it
      case 4:
        w[p] = "etwas";
        break;
      case 5:
        for (char& c : w[p]) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        break;
    }
  }
  std::string out;
  for (const auto& s : w) out += (out.empty() ? "" : " ") + s;
  return out;
}

// Lines that exercise every 13a rule, entities, quotes, non-ASCII letters and
// Python's Unicode whitespace; appended to the NLTK corpus so that the Python
// re-based tokenizer cross-checks ours on them.
const std::vector<std::string> kTricky = {
    "Hello, world!",
    "It costs 3.5 dollars.",
    "1,000 people came.",
    "e.g., this one",
    "They co-operate.",
    "open 9-5 daily",
    "Tom &amp; Jerry",
    "&quot;Hi,&quot; she said.",
    "\"Quoted\" and 'single' quotes",
    "Ein Mädchen.",
    "a\u00a0b c\u2009d.",
    "$5.00 (approx.)",
    ".5 and 5. and 5.5.",
    "a.b,c a.,b ,,1 .,.",
    "<skipped>Hi",
    "&amp;lt; &amp;amp; &lt;&gt;",
    "Ünïcödé, naïve café.",
    "A-B 3-4-5 x-1 1--2",
    "50% of C++ {x} [y] ~z | ^ _ `",
    "ČEŠTINA: Žluťoučký kůň úpěl ďábelské ódy.",
    "x\x1cy\u0085z\u2028w\u3000v\tu\rt",
    "İstanbul, İZMİR.",
    "Straße ÄÖÜ, 2-3.",
    "trailing-",
    "  spaces   around  ",
};

struct NltkResult {
  double bleu, chrf;
  long long hyp_len, ref_len;
  int tok_mismatches, lines;
  int lower_mismatches = -1;
};

// Writes raw and 13a-tokenized lines, runs the reference script, parses it.
NltkResult run_reference(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                         bool lowercase, const test::TempDir& dir) {
  const auto write = [&](const std::string& name, const std::vector<std::string>& lines, bool tokenize) {
    std::string text;
    for (const auto& l : lines)
      text += (tokenize ? tokenize_13a(lowercase ? lowercase_utf8(l) : l) : l) + "\n";
    test::write_file(dir.file(name), text);
  };
  write("hyp.txt", hyps, false);
  write("ref.txt", refs, false);
  write("hyp.tok", hyps, true);
  write("ref.tok", refs, true);
  std::string script = std::string(AIAYN_SOURCE_DIR) + "/tests/reference/nltk_bleu.py";
  auto r = test::run(std::string(kPython) + " " + script + " " + dir.path().string() +
                     (lowercase ? " --lowercase" : ""));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  NltkResult out{j["bleu"], j["chrf"], j["hyp_len"], j["ref_len"], j["tok_mismatches"], j["lines"]};
  if (j.contains("lower_mismatches")) out.lower_mismatches = j["lower_mismatches"];
  return out;
}

// Multi30k German references, their perturbations, and the tricky lines.
// Every output line has at least 4 tokens: NLTK's modified_precision counts
// max(1, n-gram count) in the denominator, so for a line with fewer than n
// tokens NLTK adds a phantom n-gram that sacreBLEU (and Papineni et al.) do
// not; the two definitions agree exactly only without such lines.
void corpus(const std::string& file, std::vector<std::string>& hyps, std::vector<std::string>& refs) {
  for (const auto& line : read_lines(multi30k(file))) {
    if (words_of(line).size() < 4) continue;
    hyps.push_back(perturb(line, refs.size()));
    refs.push_back(line);
  }
  REQUIRE(refs.size() >= 990);
  for (size_t i = 0; i < kTricky.size(); ++i) {
    refs.push_back(kTricky[i]);
    hyps.push_back((i % 2 ? kTricky[i] : perturb(kTricky[i], i + 1)) + " und so weiter");
  }
  for (const auto& h : hyps) REQUIRE(words_of(tokenize_13a(h)).size() >= 4);
}

}  // namespace

TEST_CASE("13a tokenizer splits as sacreBLEU does", "[scoring][13a]") {
  // Symbols are split off; ' and - between letters are kept.
  CHECK(tokenize_13a("Hello, world!") == "Hello , world !");
  CHECK(tokenize_13a("\"Quoted\" and 'single' quotes") == "\" Quoted \" and 'single' quotes");
  CHECK(tokenize_13a("don't") == "don't");
  CHECK(tokenize_13a("They co-operate.") == "They co-operate .");
  CHECK(tokenize_13a("path/to/file 50%") == "path / to / file 50 %");
  CHECK(tokenize_13a("$5.00 (approx.)") == "$ 5.00 ( approx . )");
  // Period and comma stay inside numbers, are split elsewhere.
  CHECK(tokenize_13a("It costs 3.5 dollars.") == "It costs 3.5 dollars .");
  CHECK(tokenize_13a("1,000 people came.") == "1,000 people came .");
  CHECK(tokenize_13a(".5 and 5. and 5.5.") == ". 5 and 5 . and 5.5 .");
  CHECK(tokenize_13a("e.g., this") == "e . g . , this");
  CHECK(tokenize_13a("a.b,c") == "a . b , c");
  CHECK(tokenize_13a("Mädchen,5") == "Mädchen , 5");
  // A dash after a digit is split; after a letter it is not.
  CHECK(tokenize_13a("open 9-5 daily") == "open 9 - 5 daily");
  CHECK(tokenize_13a("A-B 3-4-5 x-1") == "A-B 3 - 4 - 5 x-1");
  // mteval's entity unescaping (in sacreBLEU's order: &amp;lt; becomes <).
  CHECK(tokenize_13a("Tom &amp; Jerry") == "Tom & Jerry");
  CHECK(tokenize_13a("&quot;Hi,&quot; she said.") == "\" Hi , \" she said .");
  CHECK(tokenize_13a("&amp;lt; C++ &lt;3") == "< C + + < 3");
  // <skipped>, hyphenated line breaks, newlines.
  CHECK(tokenize_13a("<skipped>Hi") == "Hi");
  CHECK(tokenize_13a("line-\nbreak one\ntwo") == "linebreak one two");
  // Non-ASCII letters are word characters; Unicode whitespace separates.
  CHECK(tokenize_13a("Ein Mädchen.") == "Ein Mädchen .");
  CHECK(tokenize_13a("Ünïcödé, naïve café.") == "Ünïcödé , naïve café .");
  CHECK(tokenize_13a("a\u00a0b") == "a b");
  CHECK(tokenize_13a("x\u2009y. \u3000z\u0085") == "x y . z");
  CHECK(tokenize_13a("  spaces   around  ") == "spaces around");
  CHECK(tokenize_13a("") == "");
}

TEST_CASE("lowercase_utf8 follows Python's str.lower on Latin and Cyrillic", "[scoring]") {
  CHECK(lowercase_utf8("Ein MÄDCHEN, ČŘŠŽ Ÿ") == "ein mädchen, čřšž ÿ");
  CHECK(lowercase_utf8("İ") == "i\u0307");
  CHECK(lowercase_utf8("ПРИВЕТ Ёж") == "привет ёж");
  CHECK(lowercase_utf8("ΣΑ") == "ΣΑ");  // Greek is outside the supported ranges
  CHECK(lowercase_utf8("bad \xff byte") == "bad \xff byte");
}

TEST_CASE("BLEU of an identical corpus is 100", "[scoring][bleu]") {
  std::vector<std::string> refs = {"The cat sat on the mat.", "Ein Mann schläft auf einem Sofa."};
  auto s = corpus_bleu(refs, refs);
  CHECK(s.score == Approx(100.0).margin(1e-9));
  for (double p : s.precisions) CHECK(p == Approx(100.0));
  CHECK(s.bp == 1.0);
  CHECK(s.hyp_len == 14);  // 7 + 7 tokens after 13a
  CHECK(s.ref_len == 14);
  CHECK(s.ratio == 1.0);
}

TEST_CASE("BLEU applies the brevity penalty", "[scoring][bleu]") {
  // Every n-gram of the 6-token output is correct; the reference has 8.
  auto s = corpus_bleu({"a b c d e f"}, {"a b c d e f g h"});
  CHECK(s.precisions[0] == Approx(100.0));
  CHECK(s.precisions[3] == Approx(100.0));
  CHECK(s.bp == Approx(std::exp(1.0 - 8.0 / 6.0)));
  CHECK(s.score == Approx(100.0 * std::exp(-1.0 / 3.0)));  // 71.653
  CHECK(s.ratio == Approx(0.75));
  // Longer output than reference: no penalty.
  CHECK(corpus_bleu({"a b c d e f g h"}, {"a b c d e f"}).bp == 1.0);
}

TEST_CASE("BLEU smooths orders without matches the 'exp' way", "[scoring][bleu]") {
  // hyp "the cat the dog" vs ref "the dog the cat": unigrams 4/4, bigrams
  // 2/3 (the cat, the dog), trigrams 0/2, 4-grams 0/1. exp smoothing gives
  // the first empty order 100/(2*2), the second 100/(4*1).
  auto s = corpus_bleu({"the cat the dog"}, {"the dog the cat"});
  CHECK(s.matches == std::array<long long, 4>{4, 2, 0, 0});
  CHECK(s.totals == std::array<long long, 4>{4, 3, 2, 1});
  CHECK(s.precisions[0] == Approx(100.0));
  CHECK(s.precisions[1] == Approx(200.0 / 3));
  CHECK(s.precisions[2] == Approx(25.0));
  CHECK(s.precisions[3] == Approx(25.0));
  CHECK(s.score == Approx(std::pow(100.0 * (200.0 / 3) * 25.0 * 25.0, 0.25)));  // 45.18
  CHECK(s.score == Approx(45.1801).epsilon(1e-5));
}

TEST_CASE("BLEU clips repeated n-grams by the reference count", "[scoring][bleu]") {
  // "the" x4 against one "the": unigrams 1/4; bigrams 0/3, trigrams 0/2 and
  // 4-grams 0/1 are the 1st, 2nd, 3rd empty orders: 100/6, 100/8, 100/8.
  auto s = corpus_bleu({"the the the the"}, {"the cat"});
  CHECK(s.matches[0] == 1);
  CHECK(s.precisions[0] == Approx(25.0));
  CHECK(s.precisions[1] == Approx(100.0 / 6));
  CHECK(s.precisions[2] == Approx(12.5));
  CHECK(s.precisions[3] == Approx(12.5));
  CHECK(s.bp == 1.0);
  CHECK(s.score == Approx(std::pow(25.0 * (100.0 / 6) * 12.5 * 12.5, 0.25)));
}

TEST_CASE("BLEU counts at corpus level, not per sentence", "[scoring][bleu]") {
  // Line 1 has no 4-gram match on its own; pooled with line 2 it is not an
  // empty order, so no smoothing applies: 4-grams (0 + 1) / (1 + 1).
  auto s = corpus_bleu({"a b c d", "e f g h"}, {"a b c x", "e f g h"});
  CHECK(s.matches == std::array<long long, 4>{7, 5, 3, 1});
  CHECK(s.totals == std::array<long long, 4>{8, 6, 4, 2});
  CHECK(s.score == Approx(100.0 * std::pow(7.0 / 8 * 5.0 / 6 * 3.0 / 4 * 1.0 / 2, 0.25)));
}

TEST_CASE("BLEU of empty output and of lines under four tokens", "[scoring][bleu]") {
  auto empty = corpus_bleu({""}, {"a b c d"});
  CHECK(empty.score == 0.0);
  CHECK(empty.bp == 0.0);
  CHECK(empty.hyp_len == 0);
  CHECK(empty.ref_len == 4);
  CHECK(empty.ratio == 0.0);

  auto none = corpus_bleu({}, {});
  CHECK(none.score == 0.0);
  CHECK(none.ratio == 0.0);

  // One empty line among others only shortens the output (brevity penalty).
  auto some = corpus_bleu({"a b c d", ""}, {"a b c d", "e f g h"});
  CHECK(some.precisions[3] == Approx(100.0));
  CHECK(some.bp == Approx(std::exp(1.0 - 8.0 / 4.0)));
  CHECK(some.score == Approx(100.0 * std::exp(-1.0)));

  // No 4-gram can exist: sacreBLEU stops at that order and floors log(0), so
  // even a perfect 3-token output scores 0.
  auto shorter = corpus_bleu({"a b c"}, {"a b c"});
  CHECK(shorter.precisions[2] == Approx(100.0));
  CHECK(shorter.precisions[3] == 0.0);
  CHECK(shorter.score == Approx(0.0).margin(1e-12));
}

TEST_CASE("BLEU lowercase option, format and signature", "[scoring][bleu]") {
  std::vector<std::string> hyps = {"DER MANN SCHLÄFT AUF DEM SOFA ."};
  std::vector<std::string> refs = {"Der Mann schläft auf dem Sofa."};
  CHECK(corpus_bleu(hyps, refs).score < 10.0);  // only "." matches
  auto lc = corpus_bleu(hyps, refs, true);
  CHECK(lc.score == Approx(100.0));
  CHECK(lc.signature() == "nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:aiayn");
  CHECK(corpus_bleu(hyps, refs).signature() == "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:aiayn");

  auto s = corpus_bleu({"the cat the dog"}, {"the dog the cat"});
  CHECK(s.format() == "BLEU = 45.18 100.0/66.7/25.0/25.0 (BP = 1.000 ratio = 1.000 hyp_len = 4 ref_len = 4)");
  auto bp = corpus_bleu({"a b c d e f"}, {"a b c d e f g h"});
  CHECK(bp.format() ==
        "BLEU = 71.65 100.0/100.0/100.0/100.0 (BP = 0.717 ratio = 0.750 hyp_len = 6 ref_len = 8)");
}

TEST_CASE("chrF2 on hand-computed cases", "[scoring][chrf]") {
  CHECK(corpus_chrf({"Ein Mann schläft."}, {"Ein Mann schläft."}).score == Approx(100.0));
  CHECK(corpus_chrf({"xyz"}, {"abc"}).score == 0.0);
  // Whitespace is removed before counting character n-grams.
  CHECK(corpus_chrf({"a b  c"}, {"abc"}).score == Approx(100.0));
  // hyp "ab", ref "abc": order 1 P = 2/2, R = 2/3; order 2 P = 1/1, R = 1/2;
  // order 3 has no hypothesis n-gram and orders 4-6 none at all, so only two
  // orders count: P = 1, R = 7/12, F2 = 5PR / (4P + R) = 7/11.
  CHECK(corpus_chrf({"ab"}, {"abc"}).score == Approx(700.0 / 11));
  // Characters are code points, not bytes: "ä" is one 1-gram, not two.
  CHECK(corpus_chrf({"äb"}, {"äbc"}).score == Approx(700.0 / 11));
  CHECK(corpus_chrf({"a\u00a0b\u3000c"}, {"abc"}).score == Approx(100.0));
  // Corpus statistics are summed first. A segment's hypothesis n-grams count
  // only where its reference has n-grams of that order (sacreBLEU): "ab"/"a"
  // adds nothing to order 2. Order 1: P = 3/4, R = 3/3; order 2: P = 1/1,
  // R = 1/1; P = 7/8, R = 1, F2 = 5PR / (4P + R) = 35/36.
  CHECK(corpus_chrf({"ab", "cd"}, {"a", "cd"}).score == Approx(3500.0 / 36));
  // Lowercasing.
  CHECK(corpus_chrf({"MÄDCHEN"}, {"mädchen"}).score == 0.0);
  CHECK(corpus_chrf({"MÄDCHEN"}, {"mädchen"}, true).score == Approx(100.0));

  auto s = corpus_chrf({"ab"}, {"abc"});
  CHECK(s.format() == "chrF2 = 63.64");
  CHECK(s.signature() == "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:aiayn");
  CHECK(corpus_chrf({"a"}, {"a"}, true).signature() ==
        "nrefs:1|case:lc|eff:yes|nc:6|nw:0|space:no|version:aiayn");
}

TEST_CASE("scores refuse corpora of different line counts", "[scoring]") {
  CHECK_THROWS_AS(corpus_bleu({"a", "b"}, {"a"}), std::invalid_argument);
  CHECK_THROWS_WITH(corpus_bleu({"a", "b"}, {"a"}), Contains("2 hypotheses but 1 references"));
  CHECK_THROWS_AS(corpus_chrf({"a"}, {}), std::invalid_argument);
}

TEST_CASE("BLEU agrees with NLTK's corpus_bleu on Multi30k", "[scoring][bleu][reference]") {
  if (!multi30k_present()) return;
  std::vector<std::string> hyps, refs;
  corpus("val.de", hyps, refs);
  test::TempDir dir;
  auto ref = run_reference(hyps, refs, false, dir);
  auto ours = corpus_bleu(hyps, refs);
  auto chrf = corpus_chrf(hyps, refs);
  double diff = std::abs(ours.score - ref.bleu);
  WARN("cased: " << ours.format() << "; NLTK " << ref.bleu << ", |diff| " << diff << "; chrF2 " << chrf.score
                 << " vs " << ref.chrf);
  CHECK(ref.lines == static_cast<int>(refs.size()));
  CHECK(ref.tok_mismatches == 0);
  CHECK(ours.hyp_len == ref.hyp_len);
  CHECK(ours.ref_len == ref.ref_len);
  // Every order has matches, so NLTK's unsmoothed BLEU is defined and equal.
  for (long long m : ours.matches) CHECK(m > 0);
  CHECK(ours.bp < 1.0);  // the truncations shorten the output
  CHECK(ours.score > 20.0);
  CHECK(ours.score < 60.0);
  CHECK(diff <= 0.01);
  CHECK(chrf.score == Approx(ref.chrf).margin(1e-9));
}

TEST_CASE("lowercased BLEU agrees with NLTK on Multi30k", "[scoring][bleu][reference]") {
  if (!multi30k_present()) return;
  std::vector<std::string> hyps, refs;
  corpus("test_2016_flickr.de", hyps, refs);
  test::TempDir dir;
  // Also check lowercase_utf8 against str.lower() on every code point it
  // claims (U+0001-U+017F, U+0400-U+052F), 32 to a line, '\n' left out.
  std::string in, out;
  int on_line = 0;
  const auto add = [&](char32_t from, char32_t to) {
    for (char32_t c = from; c <= to; ++c) {
      if (c == '\n') continue;
      std::string ch;
      if (c < 0x80) {
        ch = std::string(1, static_cast<char>(c));
      } else {
        ch += static_cast<char>(0xC0 | (c >> 6));
        ch += static_cast<char>(0x80 | (c & 0x3F));
      }
      in += ch;
      if (++on_line == 32) {
        in += '\n';
        on_line = 0;
      }
    }
  };
  add(0x01, 0x17F);
  add(0x400, 0x52F);
  in += "\nİstanbul ÄÖÜ ČŘŠŽ Ÿ ПРИВЕТ\n";
  std::string lowered;
  for (const auto& line : split_lines(in)) lowered += lowercase_utf8(line) + "\n";
  test::write_file(dir.file("lower.in"), in);
  test::write_file(dir.file("lower.out"), lowered);

  auto ref = run_reference(hyps, refs, true, dir);
  auto ours = corpus_bleu(hyps, refs, true);
  auto cased = corpus_bleu(hyps, refs, false);
  auto chrf = corpus_chrf(hyps, refs, true);
  double diff = std::abs(ours.score - ref.bleu);
  WARN("lowercased: " << ours.format() << "; NLTK " << ref.bleu << ", |diff| " << diff << "; chrF2 "
                      << chrf.score << " vs " << ref.chrf);
  CHECK(ref.lower_mismatches == 0);
  CHECK(ref.tok_mismatches == 0);
  CHECK(ours.hyp_len == ref.hyp_len);
  CHECK(ours.ref_len == ref.ref_len);
  for (long long m : ours.matches) CHECK(m > 0);
  CHECK(ours.score > cased.score);  // the case perturbations are forgiven
  CHECK(ours.score > 20.0);
  CHECK(ours.score < 60.0);
  CHECK(diff <= 0.01);
  CHECK(chrf.score == Approx(ref.chrf).margin(1e-9));
}

TEST_CASE("BLEU and chrF equal sacreBLEU's to the hundredth on Multi30k",
          "[scoring][bleu][chrf][sacrebleu]") {
  if (!multi30k_present()) return;
  // sacreBLEU itself (pinned in scripts/setup.sh's .venv-tools), on real
  // references and their perturbations, cased and lowercased, in German,
  // French and Czech; also a whole other language as the hypothesis (few
  // matches, so the smoothing and the brevity penalty matter).
  const std::string python = std::string(AIAYN_SOURCE_DIR) + "/.venv-tools/bin/python";
  if (!fs::exists(python)) {
    WARN("skipped: " << python << " missing (scripts/setup.sh installs sacrebleu there)");
    return;
  }
  test::TempDir dir;
  struct Case {
    std::string name;
    std::vector<std::string> hyps, refs;
  };
  std::vector<Case> cases;
  for (const char* file : {"val.de", "test_2016_flickr.fr", "test_2016_flickr.cs"}) {
    Case c{file, {}, {}};
    corpus(file, c.hyps, c.refs);
    cases.push_back(c);
  }
  cases.push_back({"en as hypotheses of de", read_lines(multi30k("val.en")), read_lines(multi30k("val.de"))});
  // newline='': Python's universal newlines would split the tricky line's
  // '\r' into two lines and misalign the corpora.
  const std::string script =
      "import sacrebleu, sys, json\n"
      "hyps = open(sys.argv[1], encoding='utf-8', newline='').read().split('\\n')[:-1]\n"
      "refs = open(sys.argv[2], encoding='utf-8', newline='').read().split('\\n')[:-1]\n"
      "out = {}\n"
      "for lc in (False, True):\n"
      "    out['bleu_lc' if lc else 'bleu'] = sacrebleu.corpus_bleu(hyps, [refs], lowercase=lc).score\n"
      "    out['chrf_lc' if lc else 'chrf'] = sacrebleu.metrics.CHRF(lowercase=lc).corpus_score(hyps, [refs]).score\n"
      "print(json.dumps(out))\n";
  test::write_file(dir.file("score.py"), script);
  for (const auto& c : cases) {
    std::string hyp_text, ref_text;
    for (const auto& l : c.hyps) hyp_text += l + "\n";
    for (const auto& l : c.refs) ref_text += l + "\n";
    test::write_file(dir.file("hyp.txt"), hyp_text);
    test::write_file(dir.file("ref.txt"), ref_text);
    auto r = test::run(python + " " + dir.file("score.py") + " " + dir.file("hyp.txt") + " " +
                       dir.file("ref.txt"));
    INFO(c.name << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    for (bool lc : {false, true}) {
      const double bleu = corpus_bleu(c.hyps, c.refs, lc).score;
      const double chrf = corpus_chrf(c.hyps, c.refs, lc).score;
      const double ref_bleu = j[lc ? "bleu_lc" : "bleu"], ref_chrf = j[lc ? "chrf_lc" : "chrf"];
      INFO(c.name << (lc ? " lowercased" : " cased") << ": BLEU " << bleu << " vs sacreBLEU " << ref_bleu
                  << ", chrF " << chrf << " vs " << ref_chrf);
      CHECK(std::abs(bleu - ref_bleu) < 0.005);
      CHECK(std::abs(chrf - ref_chrf) < 0.005);
    }
  }
}
