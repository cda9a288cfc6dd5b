// The demo's corpus, made here in code: calendar dates written the many ways
// people write them, in English, German, French and Spanish ("Sunday,
// 22 November 2026", "22.11.2026", "nov. 22nd 2026", "le 22 novembre 2026",
// "domingo, 22 de noviembre de 2026", ...), each paired with its ISO 8601
// form "2026-11-22". A small Transformer learns it in minutes, and its
// encoder-decoder attention is easy to read: the year digits attend to the
// year, the month digits to the month name, the day to the day.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aiayn {

struct Date {
  int year = 2000, month = 1, day = 1;  // proleptic Gregorian, month and day 1-based
  std::string iso() const;              // "2026-11-22"
  int weekday() const;                  // 0 = Monday ... 6 = Sunday
};

struct DatePair {
  std::string source;     // a human rendering
  std::string target;     // ISO 8601
  std::string alignment;  // gold links, source words to target characters (gold_alignment)
};

// Every rendering style, by name ("en-long", "de-numeric", ...), in a fixed order.
const std::vector<std::string>& date_styles();

// `date` in the style date_styles()[style].
std::string render_date(const Date& date, size_t style);

// The links the renderer knows between the words of render_date(date,
// style) and the characters of date.iso() ("2026-11-22": year 0-3, month
// 5-6, day 8-9), in Pharaoh form, 0-based: "i-j" sure for the word that
// holds the year, month or day and that field's characters (a numeric
// rendering is one word holding all three), "i?j" possible between each
// hyphen and the words of the fields beside it. Weekdays and function words
// ("the", "of", "le", "de") align to nothing.
std::string gold_alignment(size_t style);

struct DatesCorpusOptions {
  int64_t train = 40000, valid = 500, test = 1000;  // pairs per split
  int first_year = 1950, last_year = 2049;          // two-digit years map into this century-window
  uint64_t seed = 1;
};

struct DatesCorpus {
  std::vector<DatePair> train, valid, test;
};

// Random dates in random styles. Deterministic for the options; valid and
// test sources never occur in train (or in each other), so the held-out
// splits measure generalisation, not recall.
DatesCorpus make_dates_corpus(const DatesCorpusOptions& options);

// Writes DIR/{train,valid,test}.{src,tgt,align}, creating DIR. Throws InputError
// naming the file when one cannot be written.
void write_dates_corpus(const DatesCorpus& corpus, const std::string& dir);

}  // namespace aiayn
