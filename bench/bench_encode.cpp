// Benchmark for the corpus encoder (issue: data pipeline).
//
//   bench_encode make-corpus MULTI30K_DIR OUT_DIR PAIRS   synthetic corpus + tokenizer
//   bench_encode encode OUT_DIR THREADS                   build the token cache, report
//
// The synthetic corpus repeats Multi30k's English-German training pairs with
// perturbations (word order rotated, a number appended), so that no two
// lines of a repetition are identical but the vocabulary stays natural.
#include <sys/resource.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "src/common/text_reader.h"
#include "src/data/token_cache.h"
#include "src/data/tokenizer.h"

using namespace aiayn;

namespace {

std::string perturb(const std::string& line, int64_t rep, std::mt19937_64& rng) {
  if (rep == 0) return line;
  std::vector<std::string> words;
  size_t at = 0;
  while (at < line.size()) {
    size_t sp = line.find(' ', at);
    if (sp == std::string::npos) sp = line.size();
    words.push_back(line.substr(at, sp - at));
    at = sp + 1;
  }
  std::rotate(words.begin(), words.begin() + static_cast<long>(rep % words.size()), words.end());
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out + " " + std::to_string(rng() % 1000);
}

int make_corpus(const std::string& m30k, const std::string& out, int64_t pairs) {
  std::filesystem::create_directories(out);
  auto en = read_lines(m30k + "/train.en"), de = read_lines(m30k + "/train.de");
  std::ofstream src(out + "/train.en"), tgt(out + "/train.de");
  std::mt19937_64 rng(1);
  for (int64_t i = 0; i < pairs; ++i) {
    size_t k = static_cast<size_t>(i) % en.size();
    int64_t rep = i / static_cast<int64_t>(en.size());
    src << perturb(en[k], rep, rng) << "\n";
    tgt << perturb(de[k], rep, rng) << "\n";
  }
  TokenizerTrainOptions o;
  o.vocab_size = 8000;
  o.input_sentence_size = 100000;
  Tokenizer::train({m30k + "/train.en", m30k + "/train.de"}, out + "/joint", o);
  std::cout << "wrote " << pairs << " pairs and joint.model to " << out << "\n";
  return 0;
}

int encode(const std::string& dir, int threads) {
  auto tok = Tokenizer::load(dir + "/joint.model");
  CorpusSpec spec;
  spec.src_path = dir + "/train.en";
  spec.tgt_path = dir + "/train.de";
  spec.cache_dir = dir + "/cache-" + std::to_string(threads);
  spec.threads = threads;
  std::filesystem::remove_all(spec.cache_dir);
  auto start = std::chrono::steady_clock::now();
  auto cache = TokenCache::open_or_build(spec, tok, tok);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double tokens = static_cast<double>(cache.src_tokens() + cache.tgt_tokens());
  std::cout << "threads " << threads << ": " << cache.size() << " pairs, " << tokens << " tokens in "
            << seconds << " s; peak RSS " << ru.ru_maxrss / 1024 << " MiB; cache " << cache.file_bytes()
            << " bytes = " << cache.file_bytes() / tokens << " bytes/token\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "make-corpus" && argc == 5) return make_corpus(argv[2], argv[3], std::stoll(argv[4]));
  if (cmd == "encode" && argc == 4) return encode(argv[2], std::stoi(argv[3]));
  std::cerr << "usage: bench_encode make-corpus MULTI30K_DIR OUT_DIR PAIRS | encode OUT_DIR THREADS\n";
  return 2;
}
