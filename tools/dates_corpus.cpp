#include "tools/dates_corpus.h"

#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <random>
#include <unordered_set>

#include "src/common/error.h"
#include "src/common/output_file.h"

namespace aiayn {

namespace {

using Names = std::array<const char*, 12>;
using Days = std::array<const char*, 7>;

const Names kEnMonths = {"January", "February", "March",     "April",   "May",      "June",
                         "July",    "August",   "September", "October", "November", "December"};
const Names kEnAbbrev = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
const Names kDeMonths = {"Januar", "Februar", "März",      "April",   "Mai",      "Juni",
                         "Juli",   "August",  "September", "Oktober", "November", "Dezember"};
// German abbreviations as Duden writes them: short months stay whole.
const Names kDeAbbrev = {"Jan.", "Feb.", "März",  "Apr.", "Mai",  "Juni",
                         "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."};
const Names kFrMonths = {"janvier", "février", "mars",      "avril",   "mai",      "juin",
                         "juillet", "août",    "septembre", "octobre", "novembre", "décembre"};
const Names kEsMonths = {"enero", "febrero", "marzo",      "abril",   "mayo",      "junio",
                         "julio", "agosto",  "septiembre", "octubre", "noviembre", "diciembre"};
const Days kEnDays = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
const Days kDeDays = {"Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"};
const Days kFrDays = {"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"};
const Days kEsDays = {"lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"};

std::string two_digits(int n) {
  return std::string(1, static_cast<char>('0' + n / 10)) + static_cast<char>('0' + n % 10);
}

std::string ordinal(int day) {  // 1st 2nd 3rd 4th ... 11th 12th 13th ... 21st
  const char* suffix = "th";
  if (day / 10 != 1) {
    if (day % 10 == 1) suffix = "st";
    if (day % 10 == 2) suffix = "nd";
    if (day % 10 == 3) suffix = "rd";
  }
  return std::to_string(day) + suffix;
}

std::string ascii_case(std::string s, bool upper) {
  for (auto& c : s) c = static_cast<char>(upper ? std::toupper(c) : std::tolower(c));
  return s;
}

bool leap(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int days_in_month(int year, int month) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && leap(year) ? 29 : kDays[month - 1];
}

}  // namespace

std::string Date::iso() const {
  return std::to_string(year) + "-" + two_digits(month) + "-" + two_digits(day);
}

int Date::weekday() const {
  // Sakamoto's method: 0 = Sunday; shifted to 0 = Monday (ISO order).
  static const int kOffset[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
  const int y = year - (month < 3 ? 1 : 0);
  const int sunday_first = (y + y / 4 - y / 100 + y / 400 + kOffset[month - 1] + day) % 7;
  return (sunday_first + 6) % 7;
}

const std::vector<std::string>& date_styles() {
  static const std::vector<std::string> kStyles = {
      "en-long",   "en-us",     "en-abbrev", "en-ordinal", "en-upper", "dd/mm/yy",  "de-long",
      "de-dotted", "de-abbrev", "fr-long",   "fr-le",      "es-long",  "yyyy/mm/dd"};
  return kStyles;
}

std::string render_date(const Date& date, size_t style) {
  const int m = date.month - 1, w = date.weekday();
  const std::string d = std::to_string(date.day), y = std::to_string(date.year);
  switch (style) {
    case 0:
      return std::string(kEnDays[w]) + ", " + d + " " + kEnMonths[m] + " " + y;
    case 1:
      return std::string(kEnMonths[m]) + " " + d + ", " + y;
    case 2:
      return ascii_case(kEnAbbrev[m], false) + ". " + ordinal(date.day) + " " + y;
    case 3:
      return "the " + ordinal(date.day) + " of " + kEnMonths[m] + " " + y;
    case 4:
      return d + " " + ascii_case(kEnAbbrev[m], true) + " " + y;
    case 5:
      return two_digits(date.day) + "/" + two_digits(date.month) + "/" + two_digits(date.year % 100);
    case 6:
      return std::string(kDeDays[w]) + ", " + d + ". " + kDeMonths[m] + " " + y;
    case 7:
      return two_digits(date.day) + "." + two_digits(date.month) + "." + y;
    case 8:
      return d + ". " + kDeAbbrev[m] + " " + y;
    case 9:
      return std::string(kFrDays[w]) + " " + (date.day == 1 ? "1er" : d) + " " + kFrMonths[m] + " " + y;
    case 10:
      return "le " + (date.day == 1 ? std::string("1er") : d) + " " + kFrMonths[m] + " " + y;
    case 11:
      return std::string(kEsDays[w]) + ", " + d + " de " + kEsMonths[m] + " de " + y;
    case 12:
      return y + "/" + two_digits(date.month) + "/" + two_digits(date.day);
    default:
      throw std::out_of_range("render_date: no style " + std::to_string(style));
  }
}

std::string gold_alignment(size_t style) {
  // The role of each source word: w weekday, d day, m month, y year, x a
  // function word, a all three (numeric renderings).
  static const char* kRoles[] = {"wdmy", "mdy", "mdy",  "xdxmy", "dmy",    "a", "wdmy",
                                 "a",    "dmy", "wdmy", "xdmy",  "wdxmxy", "a"};
  if (style >= sizeof kRoles / sizeof kRoles[0]) throw std::out_of_range("gold_alignment: no style");
  const std::string roles = kRoles[style];
  std::string out;
  auto link = [&](size_t word, int character, bool sure) {
    out += (out.empty() ? "" : " ") + std::to_string(word) + (sure ? "-" : "?") + std::to_string(character);
  };
  auto word_of = [&](char role) -> int64_t {
    for (size_t i = 0; i < roles.size(); ++i)
      if (roles[i] == role || roles[i] == 'a') return static_cast<int64_t>(i);
    return -1;
  };
  for (size_t i = 0; i < roles.size(); ++i) {
    const char r = roles[i];
    if (r == 'y' || r == 'a')
      for (int c = 0; c < 4; ++c) link(i, c, true);
    if (r == 'm' || r == 'a')
      for (int c = 5; c < 7; ++c) link(i, c, true);
    if (r == 'd' || r == 'a')
      for (int c = 8; c < 10; ++c) link(i, c, true);
  }
  if (roles == "a") {
    link(0, 4, true);
    link(0, 7, true);
  } else {
    for (char r : {'y', 'm'}) link(static_cast<size_t>(word_of(r)), 4, false);
    for (char r : {'m', 'd'}) link(static_cast<size_t>(word_of(r)), 7, false);
  }
  return out;
}

DatesCorpus make_dates_corpus(const DatesCorpusOptions& o) {
  // "dd/mm/yy" names a year only modulo 100: the window must not be longer.
  if (o.first_year < 1 || o.last_year < o.first_year || o.last_year - o.first_year > 99) {
    throw InputError("dates corpus: years " + std::to_string(o.first_year) + "-" +
                     std::to_string(o.last_year) + " must be a window of at most 100 years");
  }
  std::mt19937_64 rng(o.seed);
  auto draw = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  auto random_pair = [&] {
    Date date;
    date.year = o.first_year + draw(o.last_year - o.first_year + 1);
    date.month = 1 + draw(12);
    date.day = 1 + draw(days_in_month(date.year, date.month));
    const auto style = static_cast<size_t>(draw(static_cast<int>(date_styles().size())));
    return DatePair{render_date(date, style), date.iso(), gold_alignment(style)};
  };
  DatesCorpus corpus;
  std::unordered_set<std::string> seen;
  for (int64_t i = 0; i < o.train; ++i) {
    corpus.train.push_back(random_pair());
    seen.insert(corpus.train.back().source);
  }
  for (auto* split : {&corpus.valid, &corpus.test}) {
    const int64_t wanted = split == &corpus.valid ? o.valid : o.test;
    // Held-out pairs are drawn until enough unseen sources are found; the
    // space (36,525 days x 13 styles) is far larger than any split here.
    for (int64_t tries = 0; static_cast<int64_t>(split->size()) < wanted; ++tries) {
      if (tries > 100 * (wanted + 1)) throw InputError("dates corpus: too few distinct dates for the splits");
      auto pair = random_pair();
      if (seen.insert(pair.source).second) split->push_back(std::move(pair));
    }
  }
  return corpus;
}

void write_dates_corpus(const DatesCorpus& corpus, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw_path_error(dir, "cannot create the directory", ec.value());
  const std::pair<const char*, const std::vector<DatePair>*> splits[] = {
      {"train", &corpus.train}, {"valid", &corpus.valid}, {"test", &corpus.test}};
  for (const auto& [name, pairs] : splits) {
    for (const char* ext : {".src", ".tgt", ".align"}) {
      const std::string path = dir + "/" + name + ext;
      OutputFile out(path);
      for (const auto& p : *pairs) {
        out.stream() << (ext[1] == 's' ? p.source : ext[1] == 't' ? p.target : p.alignment) << '\n';
      }
      out.commit();
    }
  }
}

}  // namespace aiayn
