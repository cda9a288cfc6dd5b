// aiayn-dates: writes the demo's synthetic corpus (tools/dates_corpus.h):
// human-written dates in four languages paired with their ISO 8601 form.
#include <iostream>

#include "src/common/app.h"
#include "src/common/cli.h"
#include "tools/dates_corpus.h"

int main(int argc, char** argv) {
  return aiayn::run_app("aiayn-dates", [&] {
    CLI::App app{
        "Write a synthetic parallel corpus of dates for the demo: sources such as\n"
        "'Sunday, 22 November 2026', '22.11.2026' or 'domingo, 22 de noviembre de 2026',\n"
        "targets in ISO 8601 ('2026-11-22'). Writes OUT/{train,valid,test}.{src,tgt};\n"
        "valid and test sources never occur in train.",
        "aiayn-dates"};
    aiayn::DatesCorpusOptions o;
    std::string out;
    app.add_option("-o,--out", out, "output directory (created)")->required();
    app.add_option("--train", o.train, "training pairs")
        ->check(CLI::Range(1, 100000000))
        ->capture_default_str();
    app.add_option("--valid", o.valid, "validation pairs")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    app.add_option("--test", o.test, "test pairs")->check(CLI::Range(1, 1000000))->capture_default_str();
    app.add_option("--first-year", o.first_year, "earliest year")->capture_default_str();
    app.add_option("--last-year", o.last_year,
                   "latest year (at most first + 99: 'dd/mm/yy' names years modulo 100)")
        ->capture_default_str();
    app.add_option("--seed", o.seed, "random seed")->capture_default_str();
    if (int code = aiayn::parse_command_line(app, argc, argv); code >= 0) return code;

    auto corpus = aiayn::make_dates_corpus(o);
    aiayn::write_dates_corpus(corpus, out);
    std::cerr << "aiayn-dates: wrote " << corpus.train.size() << " train, " << corpus.valid.size()
              << " valid and " << corpus.test.size() << " test pairs to " << out << "/\n";
    return 0;
  });
}
