// sacreBLEU-compatible corpus BLEU and chrF. Written from the published
// definitions: Papineni et al. (2002) for BLEU, Popović (2015) for chrF, and
// sacreBLEU 2.x (Post, 2018) for the defaults that make scores comparable
// (13a tokenization, "exp" smoothing, chrF averaging). See bleu.h.
#include "src/decode/bleu.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <stdexcept>
#include <unordered_map>

namespace aiayn {
namespace {

// Marks a byte that is not part of valid UTF-8: outside Unicode, so it is
// never whitespace, never case-mapped, and still one "character" for chrF.
constexpr char32_t kInvalidByte = 0x110000;

// Decodes the code point at s[i] and advances i past it.
char32_t next_code_point(const std::string& s, size_t& i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (len == 1) return s[i++] & 0x7F;
  if (len == 0 || i + len > s.size()) return kInvalidByte + b(i++);
  char32_t cp = c & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return kInvalidByte + b(i++);
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  static const char32_t min_of_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_of_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return kInvalidByte + b(i++);
  i += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp >= kInvalidByte) {
    out += static_cast<char>(cp - kInvalidByte);
  } else if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Python's str.isspace(), which str.split() and str.strip() use: sacreBLEU
// splits on these, so e.g. a no-break space U+00A0 separates tokens.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Python's str.split() with no argument: runs of whitespace separate, and
// leading/trailing whitespace yields no empty pieces.
std::vector<std::string> python_split(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    char32_t cp = next_code_point(s, i);
    if (is_python_space(cp)) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.append(s, start, i - start);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// Python's str.rstrip().
std::string python_rstrip(const std::string& s) {
  size_t end = 0;
  for (size_t i = 0; i < s.size();) {
    if (!is_python_space(next_code_point(s, i))) end = i;
  }
  return s.substr(0, end);
}

// Python's str.replace(): one left-to-right pass, non-overlapping.
std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
    out.append(s, pos, hit - pos).append(to);
  return out.append(s, pos, std::string::npos);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The class of sacreBLEU's first regex, [\{-\~\[-\` -\&\(-\+\:-\@\/]: ASCII
// symbols and space, but not ' , - . which the later rules treat by context.
bool is_13a_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

char32_t python_lower(char32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;  // Latin-1
  if (c == 0x178) return 0xFF;                             // Y with diaeresis
  // Latin Extended-A: upper/lower pairs, upper on even code points before
  // U+0138 and from U+014A, on odd ones in between and from U+0179.
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c | 1;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c + (c & 1);
  // Cyrillic.
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F)) return c | 1;
  if (c == 0x4C0) return 0x4CF;
  if (c >= 0x4C1 && c <= 0x4CE) return c + (c & 1);
  return c;
}

// Segment preprocessing of sacreBLEU's BLEU: optional lowercasing, rstrip,
// 13a tokenization; the tokens are what n-grams are counted over.
std::vector<std::string> bleu_tokens(const std::string& line, bool lowercase) {
  std::string s = python_rstrip(lowercase ? lowercase_utf8(line) : line);
  std::vector<std::string> tokens;
  std::string tok = tokenize_13a(s);
  for (size_t pos = 0; pos < tok.size();) {
    size_t end = tok.find(' ', pos);
    if (end == std::string::npos) end = tok.size();
    tokens.push_back(tok.substr(pos, end - pos));
    pos = end + 1;
  }
  return tokens;
}

// chrF's character sequence: optional lowercasing, then all Python
// whitespace removed (sacreBLEU's default, signature "space:no").
std::u32string chrf_chars(const std::string& line, bool lowercase) {
  std::string s = lowercase ? lowercase_utf8(line) : line;
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    char32_t cp = next_code_point(s, i);
    if (!is_python_space(cp)) out += cp;
  }
  return out;
}

void check_sizes(const char* what, size_t hyps, size_t refs) {
  if (hyps != refs)
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(hyps) + " hypotheses but " +
                                std::to_string(refs) + " references");
}

std::string printf_string(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string printf_string(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

}  // namespace

std::string lowercase_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t cp = next_code_point(text, i);
    if (cp == 0x130) {  // Python lowers dotted capital I to "i" + U+0307
      out += 'i';
      append_utf8(out, 0x307);
    } else {
      append_utf8(out, python_lower(cp));
    }
  }
  return out;
}

std::string tokenize_13a(const std::string& line) {
  // Language-independent part of mteval-v13a, in sacreBLEU's order.
  std::string s = replace_all(line, "<skipped>", "");
  s = replace_all(s, "-\n", "");
  s = replace_all(s, "\n", " ");
  if (s.find('&') != std::string::npos) {
    s = replace_all(s, "&quot;", "\"");
    s = replace_all(s, "&amp;", "&");
    s = replace_all(s, "&lt;", "<");
    s = replace_all(s, "&gt;", ">");
  }
  s = " " + s + " ";

  // The four regex substitutions, each emulating Python's re.sub: scan left
  // to right, and after a match resume behind it (matches do not overlap).
  // Working on UTF-8 bytes is exact: every pattern byte is ASCII, and a
  // non-ASCII character can only play [^0-9], for which its last byte (rule
  // 2) or its first byte (rule 3) stands in; its other bytes are copied.
  std::string t;
  t.reserve(s.size() * 2);
  for (char c : s) {  // (1) ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 "
    if (is_13a_symbol(c)) {
      t += ' ';
      t += c;
      t += ' ';
    } else {
      t += c;
    }
  }
  const auto substitute = [](const std::string& in, bool (*match)(char, char), bool space_before) {
    std::string out;
    out.reserve(in.size() * 2);
    size_t i = 0;
    for (; i + 1 < in.size(); ++i) {
      if (!match(in[i], in[i + 1])) {
        out += in[i];
        continue;
      }
      if (space_before) out += ' ';  // (3): " \1 \2"
      out += in[i];
      out += ' ';
      out += in[i + 1];
      if (!space_before) out += ' ';  // (2), (4): "\1 \2 "
      ++i;
    }
    if (i < in.size()) out += in[i];
    return out;
  };
  // (2) period and comma unless preceded by a digit: ([^0-9])([\.,]) -> "\1 \2 "
  t = substitute(
      t, [](char a, char b) { return !is_digit(a) && (b == '.' || b == ','); }, false);
  // (3) period and comma unless followed by a digit: ([\.,])([^0-9]) -> " \1 \2"
  t = substitute(
      t, [](char a, char b) { return (a == '.' || a == ',') && !is_digit(b); }, true);
  // (4) dash when preceded by a digit: ([0-9])(-) -> "\1 \2 "
  t = substitute(
      t, [](char a, char b) { return is_digit(a) && b == '-'; }, false);

  // ' '.join(line.split())
  std::string out;
  for (const std::string& tok : python_split(t)) {
    if (!out.empty()) out += ' ';
    out += tok;
  }
  return out;
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                      bool lowercase) {
  check_sizes("corpus_bleu", hyps.size(), refs.size());
  constexpr int N = 4;
  BleuScore r;
  r.lowercase = lowercase;

  // Sufficient statistics summed over the corpus (Papineni et al., 2002,
  // section 2.1: clipped counts are pooled before dividing, not averaged).
  for (size_t k = 0; k < hyps.size(); ++k) {
    std::vector<std::string> h = bleu_tokens(hyps[k], lowercase);
    std::vector<std::string> ref = bleu_tokens(refs[k], lowercase);
    r.hyp_len += static_cast<long long>(h.size());
    r.ref_len += static_cast<long long>(ref.size());
    for (int n = 1; n <= N; ++n) {
      std::unordered_map<std::string, long long> ref_counts;
      const auto ngram = [n](const std::vector<std::string>& toks, size_t i) {
        std::string g = toks[i];
        for (int j = 1; j < n; ++j) g.append(" ").append(toks[i + j]);
        return g;
      };
      for (size_t i = 0; i + n <= ref.size(); ++i) ++ref_counts[ngram(ref, i)];
      for (size_t i = 0; i + n <= h.size(); ++i) {
        ++r.totals[n - 1];
        auto it = ref_counts.find(ngram(h, i));
        if (it != ref_counts.end() && it->second > 0) {  // clipping: each ref n-gram once
          --it->second;
          ++r.matches[n - 1];
        }
      }
    }
  }

  // Brevity penalty, with sacreBLEU's conventions for empty output.
  if (r.hyp_len < r.ref_len)
    r.bp = r.hyp_len > 0 ? std::exp(1.0 - static_cast<double>(r.ref_len) / r.hyp_len) : 0.0;
  else
    r.bp = 1.0;
  r.ratio = r.ref_len > 0 ? static_cast<double>(r.hyp_len) / r.ref_len : 0.0;

  bool any_match = false;
  for (long long m : r.matches) any_match = any_match || m > 0;
  if (!any_match) return r;  // sacreBLEU stops early: score 0, precisions 0

  // sacreBLEU's default smoothing "exp" (mteval-v13a's NIST smoothing, Chen &
  // Cherry 2014 method 3): the k-th order with no match gets 1 / (2^k total).
  // An order with no hypothesis n-grams at all keeps precision 0.
  double smooth = 1.0;
  for (int n = 0; n < N; ++n) {
    if (r.totals[n] == 0) break;
    if (r.matches[n] == 0) {
      smooth *= 2;
      r.precisions[n] = 100.0 / (smooth * r.totals[n]);
    } else {
      r.precisions[n] = 100.0 * r.matches[n] / r.totals[n];
    }
  }
  // Geometric mean with uniform weights; sacreBLEU floors log(0) at
  // -9999999999, which makes the score 0 (e.g. every line under 4 tokens).
  double log_sum = 0.0;
  for (double p : r.precisions) log_sum += p == 0.0 ? -9999999999.0 : std::log(p);
  r.score = r.bp * std::exp(log_sum / N);
  return r;
}

ChrfScore corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                      bool lowercase) {
  check_sizes("corpus_chrf", hyps.size(), refs.size());
  constexpr int kOrder = 6;    // character n-gram order (Popović 2015/2016)
  constexpr double kBeta = 2;  // recall weighted twice as much as precision
  std::array<long long, kOrder> n_hyp{}, n_ref{}, n_match{};

  for (size_t k = 0; k < hyps.size(); ++k) {
    std::u32string h = chrf_chars(hyps[k], lowercase);
    std::u32string ref = chrf_chars(refs[k], lowercase);
    for (int n = 1; n <= kOrder; ++n) {
      std::unordered_map<std::u32string, long long> ref_counts;
      long long ref_total = 0, hyp_total = 0;
      for (size_t i = 0; i + n <= ref.size(); ++i, ++ref_total) ++ref_counts[ref.substr(i, n)];
      for (size_t i = 0; i + n <= h.size(); ++i, ++hyp_total) {
        auto it = ref_counts.find(h.substr(i, n));
        if (it != ref_counts.end() && it->second > 0) {
          --it->second;
          ++n_match[n - 1];
        }
      }
      // sacreBLEU counts a segment's hypothesis n-grams only when its
      // reference has n-grams of that order.
      n_hyp[n - 1] += ref_total > 0 ? hyp_total : 0;
      n_ref[n - 1] += ref_total;
    }
  }

  // sacreBLEU 2.x default (eff:yes, i.e. no eps smoothing): precision and
  // recall averaged over the orders where both sides have n-grams, then one
  // F-beta of the averages.
  double avg_p = 0.0, avg_r = 0.0;
  int effective = 0;
  for (int n = 0; n < kOrder; ++n) {
    if (n_hyp[n] > 0 && n_ref[n] > 0) {
      avg_p += static_cast<double>(n_match[n]) / n_hyp[n];
      avg_r += static_cast<double>(n_match[n]) / n_ref[n];
      ++effective;
    }
  }
  ChrfScore r;
  r.lowercase = lowercase;
  if (effective > 0) {
    avg_p /= effective;
    avg_r /= effective;
  }
  if (avg_p + avg_r > 0) {
    const double b2 = kBeta * kBeta;
    r.score = 100.0 * (1 + b2) * avg_p * avg_r / (b2 * avg_p + avg_r);
  }
  return r;
}

std::string BleuScore::signature() const {
  return std::string("nrefs:1|case:") + (lowercase ? "lc" : "mixed") +
         "|eff:no|tok:13a|smooth:exp|version:aiayn";
}

std::string BleuScore::format() const {
  return printf_string(
      "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld "
      "ref_len = %lld)",
      score, precisions[0], precisions[1], precisions[2], precisions[3], bp, ratio, hyp_len, ref_len);
}

std::string ChrfScore::signature() const {
  return std::string("nrefs:1|case:") + (lowercase ? "lc" : "mixed") +
         "|eff:yes|nc:6|nw:0|space:no|version:aiayn";
}

std::string ChrfScore::format() const { return printf_string("chrF2 = %.2f", score); }

}  // namespace aiayn
