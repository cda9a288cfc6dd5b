// The demo's corpus generator, and the demo itself end to end (README's
// main-job command, minus the build): it must reach the issue's >= 98% exact match on
// its held-out dates and its cross-attention must align the parts.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "src/common/error.h"
#include "src/decode/alignment.h"
#include "tests/test_util.h"
#include "tools/dates_corpus.h"

using namespace aiayn;

TEST_CASE("dates: weekdays and renderings are right", "[demo]") {
  CHECK(Date{2026, 11, 22}.weekday() == 6);  // a Sunday
  CHECK(Date{2000, 2, 29}.weekday() == 1);   // a Tuesday
  CHECK(Date{1969, 7, 20}.weekday() == 6);   // the Moon landing, a Sunday
  CHECK(Date{2026, 11, 22}.iso() == "2026-11-22");
  CHECK(Date{1950, 1, 5}.iso() == "1950-01-05");
  const Date d{2026, 11, 22};
  std::vector<std::string> got;
  for (size_t s = 0; s < date_styles().size(); ++s) got.push_back(render_date(d, s));
  CHECK(got == std::vector<std::string>{"Sunday, 22 November 2026", "November 22, 2026", "nov. 22nd 2026",
                                        "the 22nd of November 2026", "22 NOV 2026", "22/11/26",
                                        "Sonntag, 22. November 2026", "22.11.2026", "22. Nov. 2026",
                                        "dimanche 22 novembre 2026", "le 22 novembre 2026",
                                        "domingo, 22 de noviembre de 2026", "2026/11/22"});
  CHECK(render_date({2021, 3, 1}, 9) == "lundi 1er mars 2021");
  CHECK(render_date({2021, 3, 1}, 8) == "1. März 2021");
  CHECK(render_date({2021, 3, 13}, 2) == "mar. 13th 2021");
  CHECK(render_date({2021, 3, 23}, 3) == "the 23rd of March 2021");
  CHECK_THROWS(render_date(d, date_styles().size()));
}

TEST_CASE("dates: gold alignments link each field's word to its ISO characters", "[demo][alignment]") {
  const Date d{2026, 11, 7};
  for (size_t style = 0; style < date_styles().size(); ++style) {
    const auto source = render_date(d, style);
    std::vector<std::string> words;
    std::istringstream in(source);
    for (std::string w; in >> w;) words.push_back(w);
    const auto gold = parse_gold_alignment(gold_alignment(style), "style " + std::to_string(style));
    INFO(source << " | " << gold_alignment(style));
    std::map<int64_t, std::set<int64_t>> word_of_char;
    for (const auto& [i, j] : gold.sure) {
      REQUIRE(i < static_cast<int64_t>(words.size()));
      REQUIRE(j < 10);
      word_of_char[j].insert(i);
    }
    // Every digit of the ISO date has one sure word, which holds that field.
    for (int64_t j : {0, 1, 2, 3, 5, 6, 8, 9}) REQUIRE(word_of_char[j].size() == 1);
    const auto& year_word = words[static_cast<size_t>(*word_of_char[0].begin())];
    const auto& day_word = words[static_cast<size_t>(*word_of_char[8].begin())];
    CHECK(year_word.find("26") != std::string::npos);
    CHECK(day_word.find("7") != std::string::npos);
    for (const auto& [i, j] : gold.possible) CHECK(i < static_cast<int64_t>(words.size()));
  }
}

TEST_CASE("dates corpus: deterministic, valid dates, held-out splits unseen", "[demo]") {
  DatesCorpusOptions o;
  o.train = 3000;
  o.valid = 200;
  o.test = 300;
  auto a = make_dates_corpus(o), b = make_dates_corpus(o);
  REQUIRE(a.train.size() == 3000);
  REQUIRE(a.valid.size() == 200);
  REQUIRE(a.test.size() == 300);
  for (size_t i = 0; i < a.test.size(); ++i) CHECK(a.test[i].source == b.test[i].source);
  std::set<std::string> train_sources, styles_seen;
  const std::regex iso(R"((\d{4})-(\d{2})-(\d{2}))");
  for (const auto& p : a.train) {
    train_sources.insert(p.source);
    std::smatch m;
    REQUIRE(std::regex_match(p.target, m, iso));
    const int year = std::stoi(m[1]);
    CHECK(year >= o.first_year);
    CHECK(year <= o.last_year);
  }
  std::set<std::string> held_out;
  for (const auto* split : {&a.valid, &a.test}) {
    for (const auto& p : *split) {
      CHECK(train_sources.count(p.source) == 0);
      CHECK(held_out.insert(p.source).second);
    }
  }
  o.seed = 2;
  CHECK(make_dates_corpus(o).train[0].source != a.train[0].source);
  o.first_year = 1900;  // a 150-year window makes "dd/mm/yy" ambiguous
  o.last_year = 2049;
  CHECK_THROWS_AS(make_dates_corpus(o), InputError);
}

TEST_CASE("aiayn-dates writes the splits, and bad options exit 2", "[demo][bad-input]") {
  test::TempDir dir;
  const std::string bin = std::string(AIAYN_BIN_DIR) + "/aiayn-dates";
  auto r = test::run(bin + " --out " + dir.file("d") + " --train 50 --valid 5 --test 7");
  REQUIRE(r.exit_code == 0);
  CHECK(test::count_lines(test::read_file(dir.file("d/train.src"))) == 50);
  CHECK(test::count_lines(test::read_file(dir.file("d/test.tgt"))) == 7);
  CHECK(test::count_lines(test::read_file(dir.file("d/test.align"))) == 7);
  r = test::run(bin + " --out " + dir.file("d") + " --first-year 1800 --last-year 2000");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("window of at most 100 years"));
  test::write_file(dir.file("file"), "x");
  r = test::run(bin + " --out " + dir.file("file") + "/sub");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(dir.file("file") + "/sub"));
  CHECK(test::read_file(dir.file("file")) == "x");
}

namespace {

// The source pieces (positions) that spell the year, when the source holds
// it in full: the pieces whose digits, concatenated, read the year.
std::set<size_t> year_pieces(const std::vector<std::string>& pieces, const std::string& year) {
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::string text;
    for (size_t j = i; j < pieces.size(); ++j) {
      std::string p = pieces[j];
      if (p.rfind("\xe2\x96\x81", 0) == 0) p = p.substr(3);  // the "▁" word marker
      if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos) break;
      text += p;
      if (text == year) {
        std::set<size_t> span;
        for (size_t k = i; k <= j; ++k) span.insert(k);
        return span;
      }
    }
  }
  return {};
}

}  // namespace

TEST_CASE("demo end to end: >= 98% exact match, aligned cross-attention", "[demo][e2e]") {
  test::TempDir dir;
  const std::string out = dir.file("demo");
  auto r = test::run("DEMO_SKIP_BUILD=1 AIAYN_BIN=" + std::string(AIAYN_BIN_DIR) + " bash " +
                     std::string(AIAYN_SOURCE_DIR) + "/scripts/demo.sh " + out);
  INFO(r.out + r.err);
  REQUIRE(r.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex(R"(exact match = ([0-9.]+)% \((\d+) of 1000 lines\))")));
  // 100% here (docs/notes.md); 98% leaves room for another machine's arithmetic.
  CHECK(std::stod(m[1]) >= 98.0);
  CHECK(test::count_lines(test::read_file(out + "/test.hyp")) == 1000);
  CHECK(test::read_file(out + "/attention.html").find("<html") != std::string::npos);

  // Encoder-decoder attention: the decoder queries that emit the year's four
  // digits attend most to the source's year digits (mean over heads), for
  // at least three of the four, in at least one layer, for all but one example.
  std::istringstream dump(test::read_file(out + "/attention.jsonl"));
  std::string line;
  int examples = 0, aligned = 0;
  auto is_digit_piece = [](std::string p) {
    if (p.rfind("\xe2\x96\x81", 0) == 0) p = p.substr(3);
    return !p.empty() && p.find_first_not_of("0123456789") == std::string::npos;
  };
  while (std::getline(dump, line)) {
    auto e = nlohmann::json::parse(line);
    const auto target = e["target"].get<std::string>();
    const auto src = e["encoder_tokens"].get<std::vector<std::string>>();
    const auto dec = e["decoder_tokens"].get<std::vector<std::string>>();
    const auto span = year_pieces(src, target.substr(0, 4));
    if (span.empty()) continue;  // "dd/mm/yy": the year is not spelled out
    ++examples;
    std::vector<size_t> year_queries;  // query q emits decoder_tokens[q + 1]
    for (size_t q = 0; q + 1 < dec.size() && year_queries.size() < 4; ++q) {
      if (is_digit_piece(dec[q + 1])) year_queries.push_back(q);
    }
    int best_hits = 0;
    for (const auto& layer : e["cross_attention"]) {
      int hits = 0;
      for (size_t q : year_queries) {
        std::vector<double> mean(src.size(), 0.0);
        for (const auto& head : layer) {
          for (size_t k = 0; k < src.size(); ++k) mean[k] += head[q][k].get<double>();
        }
        const auto best = static_cast<size_t>(std::max_element(mean.begin(), mean.end()) - mean.begin());
        hits += static_cast<int>(span.count(best));
      }
      best_hits = std::max(best_hits, hits);
    }
    aligned += year_queries.size() == 4 && best_hits >= 3 ? 1 : 0;
  }
  CHECK(examples >= 4);
  CHECK(aligned >= examples - 1);

  // The demo model exported to CTranslate2 decodes the 1,000 test sentences
  // as we do (tools/export_ctranslate2.py, issue 38).
  const std::string python = std::string(AIAYN_SOURCE_DIR) + "/.venv-tools/bin/python";
  if (!std::filesystem::exists(python)) {
    WARN("CTranslate2 check skipped: " << python << " missing (scripts/setup.sh)");
    return;
  }
  const std::string tools = std::string(AIAYN_SOURCE_DIR) + "/tools/";
  auto e = test::run(python + " " + tools + "export_ctranslate2.py " + out + "/model/best " + out + "/ct2");
  INFO(e.out + e.err);
  REQUIRE(e.exit_code == 0);
  auto c =
      test::run(python + " " + tools + "compare_ctranslate2.py --checkpoint " + out + "/model/best --ct2 " +
                out + "/ct2 --input " + out + "/data/test.src --reference " + out + "/data/test.tgt " +
                "--aiayn-translate " + AIAYN_BIN_DIR + "/aiayn-translate --threads 2 " +
                "--require-greedy 100 --require-bleu-diff 0.1 --require-score-diff 1e-3");
  INFO(c.out + c.err);
  WARN(c.out);
  CHECK(c.exit_code == 0);
}
