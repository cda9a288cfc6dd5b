// aiayn-translate end to end: a checkpoint trained here on the reversal
// corpus, translation of files and of stdin as it arrives, n-best, scoring,
// and every bad-input case.
#include <catch2/catch.hpp>

#include <sstream>

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "models/int8_linear.h"
#include "models/packed_linear.h"
#include "src/decode/checkpoint_reader.h"
#include "src/decode/decoding_choice.h"
#include "src/train/checkpoint_list.h"
#include "src/train/training_state.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"

using namespace aiayn;
using test::trained;
namespace fs = std::filesystem;

namespace {

const std::string kTranslate = std::string(AIAYN_BIN_DIR) + "/aiayn-translate";

using test::lines_of;

}  // namespace

TEST_CASE("translations line up with the input, empty lines included", "[translate]") {
  auto& t = trained();
  test::write_file(t.ws.file("in.txt"), "red cat sun\n\nblue dog\nsea sky hill moon\n");
  auto r =
      test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt") + " -o " + t.ws.file("out.txt"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto out = lines_of(test::read_file(t.ws.file("out.txt")));
  REQUIRE(out.size() == 4);
  CHECK(out[1].empty());
  // Real translations (the small fixture model is not trained to perfection,
  // so their exact words are not asserted here; test_overfit covers learning).
  CHECK_FALSE(out[0].empty());
  CHECK_FALSE(out[2].empty());
  CHECK_FALSE(out[3].empty());
  CHECK_THAT(r.err, Catch::Contains("translated 4 sentences"));
}

TEST_CASE("stdin is translated line by line as it arrives", "[translate][stream]") {
  auto& t = trained();
  int to_child[2], from_child[2];
  REQUIRE(pipe(to_child) == 0);
  REQUIRE(pipe(from_child) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[1]);
    close(from_child[0]);
    execl(kTranslate.c_str(), kTranslate.c_str(), "-c", t.save.c_str(), "--greedy", nullptr);
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  auto read_line = [&](int timeout_ms) {
    std::string line;
    char c;
    pollfd p{from_child[0], POLLIN, 0};
    while (poll(&p, 1, timeout_ms) > 0 && read(from_child[0], &c, 1) == 1) {
      if (c == '\n') return line + "\n";
      line += c;
    }
    return line;
  };
  const std::string first = "green tree car\n";
  REQUIRE(write(to_child[1], first.data(), first.size()) == static_cast<ssize_t>(first.size()));
  // The answer comes while stdin is still open.
  auto answer = read_line(60000);
  CHECK(answer.size() > 1);
  CHECK(answer.back() == '\n');
  const std::string second = "moon sun\n";
  REQUIRE(write(to_child[1], second.data(), second.size()) == static_cast<ssize_t>(second.size()));
  auto again = read_line(60000);
  CHECK(again.size() > 1);
  CHECK(again.back() == '\n');
  close(to_child[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  close(from_child[0]);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("n-best lists carry scores, and ids output", "[translate][nbest]") {
  auto& t = trained();
  test::write_file(t.ws.file("in.txt"), "red cat sun\nblue dog\n");
  auto r = test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt") + " --nbest 3 --beam 4");
  REQUIRE(r.exit_code == 0);
  auto out = lines_of(r.out);
  REQUIRE(out.size() == 6);
  CHECK(out[0].rfind("0 ||| ", 0) == 0);
  CHECK(out[2].rfind("0 ||| ", 0) == 0);
  CHECK(out[3].rfind("1 ||| ", 0) == 0);
  auto pieces =
      test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt") + " --output-format ids");
  REQUIRE(pieces.exit_code == 0);
  for (const auto& line : lines_of(pieces.out))
    CHECK(line.find_first_not_of("0123456789 ") == std::string::npos);
}

TEST_CASE("a reference gives BLEU and chrF with signatures", "[translate][bleu]") {
  auto& t = trained();
  test::write_file(t.ws.file("in.txt"), "red cat sun hill\nblue dog moon\n");
  // The model's own output as the reference must score 100.
  auto own =
      test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt") + " -o " + t.ws.file("ref.txt"));
  REQUIRE(own.exit_code == 0);
  auto r =
      test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt") + " -r " + t.ws.file("ref.txt"));
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("BLEU = 100.00") && Catch::Contains("tok:13a") &&
                        Catch::Contains("chrF2 = 100.00"));
  test::write_file(t.ws.file("short.txt"), "hill sun cat red\n");
  r = test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt") + " -r " +
                t.ws.file("short.txt"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("short.txt: 1 lines, but the input has 2"));
}

TEST_CASE("invalid UTF-8 and over-long lines warn and never shift lines", "[translate][bad-input]") {
  auto& t = trained();
  std::string longline;
  for (int i = 0; i < 300; ++i) longline += (i ? " " : "") + std::string(i % 2 ? "sun" : "sea");
  test::write_file(t.ws.file("in.txt"), "red cat\nbad \xC3\x28 byte\n" + longline + "\nblue dog\n");
  auto r = test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt") + " --greedy");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto out = lines_of(r.out);
  REQUIRE(out.size() == 4);
  CHECK_FALSE(out[0].empty());
  CHECK(out[1].empty());
  CHECK_FALSE(out[3].empty());
  CHECK_THAT(r.err, Catch::Contains("line 2: invalid UTF-8") && Catch::Contains("line 3:") &&
                        Catch::Contains("truncated"));
}

TEST_CASE("translate bad input: clear errors and exit 2", "[translate][bad-input]") {
  auto& t = trained();
  test::write_file(t.ws.file("in.txt"), "red cat\n");
  const std::string base = " -i " + t.ws.file("in.txt");
  SECTION("missing checkpoint") {
    auto r = test::run(kTranslate + " -c " + t.ws.file("nowhere") + base);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("nowhere: checkpoint not found"));
  }
  SECTION("corrupt checkpoint") {
    auto copy = t.ws.file("corrupt");
    fs::copy(resolve_checkpoint(t.save), copy);
    auto bytes = test::read_file(copy + "/model.pt");
    test::write_file(copy + "/model.pt", bytes.substr(0, bytes.size() / 3));
    auto r = test::run(kTranslate + " -c " + copy + base);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("model.pt"));
    CHECK(test::count_lines(r.err) == 1);
  }
  SECTION("a tokenizer that does not match the checkpoint") {
    auto copy = t.ws.file("swapped");
    fs::copy(resolve_checkpoint(t.save), copy);
    auto other =
        test::run(t.ws.command(t.ws.file("other"), "--set train.max_steps=1 --set data.vocab_size=48"));
    REQUIRE(other.exit_code == 0);
    fs::copy_file(t.ws.file("other/spm.model"), copy + "/spm.model", fs::copy_options::overwrite_existing);
    auto r = test::run(kTranslate + " -c " + copy + base);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("spm.model: does not match the checkpoint"));
  }
  SECTION("averaging checkpoints of different architectures") {
    auto other = test::run(t.ws.command(
        t.ws.file("wide"),
        "--set train.max_steps=1 --set model.d_ff=96 --set data.spm_model=" + t.save + "/spm.model"));
    REQUIRE(other.exit_code == 0);
    auto r =
        test::run(kTranslate + " -c " + t.save + " -c " + t.ws.file("wide") + base + " --average-weights");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("different architecture"));
    // An ensemble takes them: only the vocabulary must be one.
    auto ensemble =
        test::run(kTranslate + " -c " + t.save + " -c " + t.ws.file("wide") + base + " --ensemble");
    INFO(ensemble.err);
    CHECK(ensemble.exit_code == 0);
    CHECK_THAT(ensemble.err, Catch::Contains("ensemble of 2 models"));
  }
  SECTION("several checkpoints, but neither --ensemble nor --average-weights") {
    auto r = test::run(kTranslate + " -c " + t.save + " -c " + t.save + base);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--checkpoint given 2 times: add --ensemble") &&
                          Catch::Contains("--average-weights"));
    CHECK(test::count_lines(r.err) == 1);
  }
  SECTION("an ensemble of models with different vocabularies") {
    auto other =
        test::run(t.ws.command(t.ws.file("other-vocab"), "--set train.max_steps=1 --set data.vocab_size=48"));
    REQUIRE(other.exit_code == 0);
    auto r =
        test::run(kTranslate + " -c " + t.save + " -c " + t.ws.file("other-vocab") + base + " --ensemble");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("an ensemble needs one vocabulary"));
    CHECK(test::count_lines(r.err) == 1);
  }
  SECTION("sampling options without --sampling, and search options with it") {
    auto r = test::run(kTranslate + " -c " + t.save + base + " --sampling-topk 5");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--sampling-topk") && Catch::Contains("--sampling"));
    r = test::run(kTranslate + " -c " + t.save + base + " --sampling --beam 4");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--beam: not with --sampling"));
    r = test::run(kTranslate + " -c " + t.save + base + " --sampling --sampling-topp 0");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--sampling-topp 0: must be in (0, 1]"));
  }
  SECTION("prefixes or targets that do not line up with the input") {
    test::write_file(t.ws.file("two.txt"), "red\nblue\n");
    for (const char* option : {"--prefix", "--score-targets"}) {
      auto r = test::run(kTranslate + " -c " + t.save + base + " " + option + " " + t.ws.file("two.txt"));
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.err, Catch::Contains("two.txt: 2 lines, but the input has 1 (" + std::string(option)));
      CHECK(test::count_lines(r.err) == 1);
    }
    auto r = test::run(kTranslate + " -c " + t.save + base + " --score-targets " + t.ws.file("two.txt") +
                       " --prefix " + t.ws.file("two.txt"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--prefix: not with --score-targets"));
  }
  SECTION("averaging works for one model") {
    auto dirs = last_checkpoints(t.save, 3);
    REQUIRE(dirs.size() == 3);
    auto r = test::run(kTranslate + " -c " + dirs[0] + " -c " + dirs[1] + " -c " + dirs[2] + base +
                       " --average-weights");
    CHECK(r.exit_code == 0);
    CHECK(lines_of(r.out).size() == 1);
  }
  SECTION("nbest above beam") {
    auto r = test::run(kTranslate + " -c " + t.save + base + " --nbest 5 --beam 2");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--nbest 5: exceeds --beam 2"));
  }
}

// Whether two n-best outputs ("i ||| text ||| score ||| log-prob" lines) hold
// the same texts in the same order, with scores within `tolerance`.
namespace {
void check_same_nbest(const std::string& a, const std::string& b, double tolerance) {
  const auto x = lines_of(a), y = lines_of(b);
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    INFO(x[i] << "\n" << y[i]);
    const auto cut_x = x[i].find(" ||| ", x[i].find(" ||| ") + 5),
               cut_y = y[i].find(" ||| ", y[i].find(" ||| ") + 5);
    REQUIRE(cut_x != std::string::npos);
    CHECK(x[i].substr(0, cut_x) == y[i].substr(0, cut_y));  // index and text
    double score_x = 0, logp_x = 0, score_y = 0, logp_y = 0;
    REQUIRE(std::sscanf(x[i].c_str() + cut_x, " ||| %lf ||| %lf", &score_x, &logp_x) == 2);
    REQUIRE(std::sscanf(y[i].c_str() + cut_y, " ||| %lf ||| %lf", &score_y, &logp_y) == 2);
    CHECK(std::abs(score_x - score_y) <= tolerance);
    CHECK(std::abs(logp_x - logp_y) <= tolerance);
  }
}
}  // namespace

// Identical texts; scores equal up to float rounding. Bit-equal scores would
// hold only where the BLAS kernel sums a product in the same order on one
// thread as on two: OpenBLAS's Prescott and Haswell kernels do not (scores
// then differ in the sixth decimal), SkylakeX does.
TEST_CASE("parallel workers translate as one worker, in input order", "[translate][workers]") {
  auto& t = trained();
  std::string text;
  const char* words[] = {"red", "cat", "sun", "blue", "dog", "sea", "sky", "hill", "moon"};
  for (int i = 0; i < 40; ++i) {
    for (int w = 0; w <= i % 7; ++w) text += std::string(w ? " " : "") + words[(i + 3 * w) % 9];
    text += "\n";
  }
  test::write_file(t.ws.file("many.txt"), text);
  // Batches of 3 sentences, so that the workers share out many batches.
  auto with = [&](const std::string& workers) {
    auto r = test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("many.txt") +
                       " --beam 4 --nbest 2 --batch-size 3 --threads 2 --workers " + workers);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return r.out;
  };
  const auto one = with("1"), two = with("2");
  CHECK(lines_of(one).size() == 80);
  check_same_nbest(one, two, 1e-4);
}

TEST_CASE("packed weights translate as the BLAS path, say so, and --no-pack turns them off",
          "[translate][packed]") {
  auto& t = trained();
  std::string text;
  const char* words[] = {"red", "cat", "sun", "blue", "dog", "sea", "sky", "hill", "moon"};
  for (int i = 0; i < 24; ++i) {
    for (int w = 0; w <= i % 5; ++w) text += std::string(w ? " " : "") + words[(i + 2 * w) % 9];
    text += "\n";
  }
  test::write_file(t.ws.file("packed.txt"), text);
  auto with = [&](const std::string& workers, const std::string& extra) {
    auto r = test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("packed.txt") +
                       " --beam 4 --nbest 2 --batch-size 5 --threads 2 --workers " + workers + " " + extra);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return r;
  };
  const auto packed = with("2", ""), blas = with("2", "--no-pack");
  CHECK(lines_of(packed.out).size() == 48);
  check_same_nbest(packed.out, blas.out, 1e-4);
  CHECK_THAT(blas.err, !Catch::Contains("weights packed"));
  if (PackedLinear::available()) {
    CHECK_THAT(packed.err, Catch::Contains("linear layers: weights packed for " + packed_kernel_name()));
  }
  // One worker on both threads keeps the BLAS (its pool splits each product).
  CHECK_THAT(with("1", "").err, !Catch::Contains("weights packed"));
  // int8 replaces packing: asking for both is refused, naming the options.
  auto r = test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("packed.txt") + " --int8 --no-pack");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--no-pack: not with --int8"));
  CHECK(test::count_lines(r.err) == 1);
}

TEST_CASE("int8 where LibTorch lacks the quantized ops exits 2 naming them, and works where it has them",
          "[translate][int8][bad-input]") {
  // Which case this build is decides configure (cmake/libtorch.cmake) and the
  // dispatcher; both flavours built here have the ops, a 2.x without them
  // takes the first branch.
  CHECK(aiayn::int8_missing_ops({"quantized::no_such_op", "aten::relu"}) == "quantized::no_such_op");
  auto& t = trained();
  test::write_file(t.ws.file("int8-one.txt"), "red cat\n");
  auto r = test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("int8-one.txt") + " --int8");
  INFO(r.err);
  const auto why = aiayn::int8_unavailable_reason();
  if (why.empty()) {
    CHECK(r.exit_code == 0);
    CHECK(aiayn::int8_missing_ops({"quantized::linear_prepack", "quantized::linear_dynamic"}).empty());
  } else {
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--int8: " + why));
    CHECK(test::count_lines(r.err) == 1);
  }
}

TEST_CASE("translate with int8 weights: every line, the same with any number of workers",
          "[translate][int8]") {
  auto& t = trained();
  std::string text;
  const char* words[] = {"red", "cat", "sun", "blue", "dog", "sea", "sky", "hill", "moon"};
  for (int i = 0; i < 30; ++i) {
    for (int w = 0; w <= i % 6; ++w) text += std::string(w ? " " : "") + words[(2 * i + w) % 9];
    text += "\n";
  }
  test::write_file(t.ws.file("int8.txt"), text);
  auto run = [&](const std::string& extra) {
    auto r = test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("int8.txt") +
                       " --beam 4 --batch-size 4 --threads 2 " + extra);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return r;
  };
  const auto fp32 = run("--workers 1"), one = run("--int8 --workers 1"), two = run("--int8 --workers 2");
  CHECK_THAT(one.err, Catch::Contains("int8: linear layers quantized"));
  const auto a = lines_of(fp32.out), b = lines_of(one.out);
  REQUIRE(b.size() == 30);
  CHECK(one.out == two.out);
  // Quantization may flip a near tie, but the model's translations survive.
  int same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  CHECK(same >= 24);
}

TEST_CASE("an output that names an input is refused before anything is written",
          "[translate][bad-input][output]") {
  auto& t = trained();
  const auto src = t.ws.file("same.en");
  test::write_file(src, "red cat\nblue dog\n");
  fs::create_symlink(src, t.ws.file("same-link.en"));
  for (const auto& output : {src, t.ws.file("same-link.en"), t.ws.file("./same.en")}) {
    auto r = test::run(kTranslate + " -c " + t.save + " -i " + src + " -o " + output);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--output " + output + ": is the same file as --input " + src));
    CHECK(test::count_lines(r.err) == 1);
  }
  test::write_file(t.ws.file("ref.de"), "cat red\ndog blue\n");
  auto r = test::run(kTranslate + " -c " + t.save + " -i " + src + " -r " + t.ws.file("ref.de") + " -o " +
                     t.ws.file("ref.de"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("same file as --reference"));
  CHECK(test::read_file(src) == "red cat\nblue dog\n");
  CHECK(test::read_file(t.ws.file("ref.de")) == "cat red\ndog blue\n");
}

TEST_CASE("SIGINT or SIGTERM mid-translation leaves no temporary and the old output",
          "[translate][signal][output]") {
  auto& t = trained();
  for (int sig : {SIGINT, SIGTERM}) {
    INFO("signal " << sig);
    const auto out = t.ws.file("signalled-" + std::to_string(sig) + ".txt");
    test::write_file(out, "an earlier translation\n");
    const int status =
        test::signal_while_writing({kTranslate, "-c", t.save, "--greedy", "-o", out}, "red cat\n", out, sig);
    REQUIRE(status != -1);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == sig);
    CHECK(test::read_file(out) == "an earlier translation\n");
    int left = 0;
    for (const auto& e : fs::directory_iterator(t.ws.dir.path()))
      left += e.path().string().rfind(out + ".tmp-", 0) == 0;
    CHECK(left == 0);
  }
}

TEST_CASE("a full disk is an I/O error (exit 1, path and OS error), not bad input", "[translate][output]") {
  auto& t = trained();
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "red cat blue dog sun\n";
  test::write_file(t.ws.file("long.en"), text);
  const auto disk = t.ws.file("disk");
  fs::create_directories(disk);
  test::RunResult r;
  const bool ran =
      test::run_on_small_tmpfs(disk, 16,
                               "printf 'old\\n' > " + disk + "/out.txt\n" + kTranslate + " -c " + t.save +
                                   " --greedy -i " + t.ws.file("long.en") + " -o " + disk +
                                   "/out.txt\necho \"exit=$?\"\ncat " + disk + "/out.txt\nls -a " + disk,
                               &r);
  if (!ran) {
    WARN("no tmpfs can be mounted here (neither root nor user namespaces): full-disk case not run");
    return;
  }
  INFO(r.out << r.err);
  CHECK_THAT(r.out, Catch::Contains("exit=1\nold\n"));
  CHECK_THAT(r.err, Catch::Contains("aiayn-translate: error: " + disk +
                                    "/out.txt: cannot write: No space left on device"));
  CHECK_THAT(r.out, !Catch::Contains(".tmp-"));  // the temporary went too
}

TEST_CASE("translate --tune picks beam and alpha on validation data, and translate then uses them",
          "[translate][tune]") {
  auto& t = trained();
  const auto ck = t.ws.file("tuned");
  fs::copy(resolve_checkpoint(t.save), ck);  // --tune writes into the checkpoint: not the shared one
  const std::string valid = " -i " + t.ws.file("valid.src") + " -r " + t.ws.file("valid.tgt");
  auto r = test::run(kTranslate + " -c " + ck +
                     " --tune --tune-beams 1,3 --tune-alphas 0,1.5 --tune-alpha-limit 1.5" + valid);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.empty());  // a table on stderr, no translations
  auto choice = nlohmann::json::parse(test::read_file(ck + "/decoding.json"));
  // beam 1 once (alpha changes nothing there), beam 3 with each alpha.
  REQUIRE(choice["grid"].size() == 3);
  double best = -1;
  for (const auto& g : choice["grid"]) best = std::max(best, g["bleu"].get<double>());
  CHECK(choice["bleu"].get<double>() == Approx(best));
  CHECK_THAT(choice["chosen_on"].get<std::string>(), Catch::Contains("valid.src"));
  const auto beam = std::to_string(choice["beam"].get<int64_t>());
  std::ostringstream alpha;
  alpha << choice["alpha"].get<double>();
  CHECK_THAT(r.err, Catch::Contains("chose beam " + beam));
  // A choice at the grid's largest alpha is flagged; any other is not.
  const bool on_edge = choice["beam"].get<int64_t>() > 1 && choice["alpha"].get<double>() == 1.5;
  CHECK(on_edge ==
        (r.err.find("note: alpha 1.5 is the largest tried (--tune-alpha-limit 1.5) and still the best") !=
         std::string::npos));

  // Without --beam/--alpha the recorded ones are used: the same output as giving them.
  test::write_file(t.ws.file("in.txt"), "red cat sun\nblue dog\nsea sky hill moon\n");
  auto by_default = test::run(kTranslate + " -c " + ck + " -i " + t.ws.file("in.txt"));
  REQUIRE(by_default.exit_code == 0);
  CHECK_THAT(by_default.err, Catch::Contains("decoding: beam " + beam + ", alpha " + alpha.str()) &&
                                 Catch::Contains("decoding.json"));
  auto given = test::run(kTranslate + " -c " + ck + " -i " + t.ws.file("in.txt") + " --beam " + beam +
                         " --alpha " + alpha.str());
  REQUIRE(given.exit_code == 0);
  CHECK(given.out == by_default.out);
  CHECK_THAT(given.err, !Catch::Contains("decoding: beam"));
  auto greedy = test::run(kTranslate + " -c " + ck + " -i " + t.ws.file("in.txt") + " --greedy");
  CHECK_THAT(greedy.err, !Catch::Contains("decoding: beam"));
}

TEST_CASE("the tuning grid grows its alphas while the largest wins and stops at the limit",
          "[translate][tune]") {
  std::ostringstream log;
  // A validation BLEU that peaks at alpha 2.6 for beam 4 and is flat for beam 1.
  auto peaked = [](int64_t beam, double alpha) {
    return beam == 1 ? 30.0 : 40.0 - (alpha - 2.6) * (alpha - 2.6);
  };
  auto s = search_decoding_grid({1, 4}, {0.0, 1.0, 1.5, 2.0}, 4.0, peaked, log);
  // 2.0 wins on the edge: 2.5 is tried (the last step, 0.5), wins, 3.0 is tried and loses.
  CHECK(s.added == std::vector<double>{2.5, 3.0});
  CHECK(s.best.beam == 4);
  CHECK(s.best.alpha == 2.5);
  CHECK_FALSE(s.edge_at_limit);
  CHECK(s.grid.size() == 1 + 4 + 2);
  CHECK_THAT(log.str(), Catch::Contains("alpha 2, the grid's largest, scores best: trying 2.5") &&
                            Catch::Contains("alpha 2.5, the grid's largest, scores best: trying 3") &&
                            !Catch::Contains("note:"));

  // Rising without end: the grid stops at the limit (3.2, not 3.5) and says so.
  std::ostringstream log2;
  auto rising = [](int64_t, double alpha) { return alpha; };
  s = search_decoding_grid({1, 3, 5}, {0.0, 1.0, 2.0}, 3.2, rising, log2);
  CHECK(s.added == std::vector<double>{3.0, 3.2});
  CHECK(s.best.alpha == 3.2);
  CHECK(s.best.beam == 3);  // ties go to the point tried first
  CHECK(s.edge_at_limit);
  CHECK(s.grid.size() == 1 + 2 * 3 + 2 * 2);
  CHECK_THAT(log2.str(), Catch::Contains("note: alpha 3.2 is the largest tried (--tune-alpha-limit 3.2)"));

  // A limit at the grid's edge adds nothing; greedy alone has no alpha to grow.
  std::ostringstream log3;
  s = search_decoding_grid({1, 4}, {0.0, 2.0}, 2.0, rising, log3);
  CHECK(s.added.empty());
  CHECK(s.edge_at_limit);
  s = search_decoding_grid({1}, {0.0, 2.0}, 4.0, rising, log3);
  CHECK(s.added.empty());
  CHECK(s.grid.size() == 1);
}

TEST_CASE("translate --tune and decoding.json bad input: one-line errors, exit 2",
          "[translate][tune][bad-input]") {
  auto& t = trained();
  const auto ck = t.ws.file("tuned-bad");
  fs::remove_all(ck);  // each section runs the case again from here
  fs::copy(resolve_checkpoint(t.save), ck);
  const auto src = t.ws.file("valid.src");
  SECTION("no reference") {
    auto r = test::run(kTranslate + " -c " + ck + " --tune -i " + src);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--reference"));
  }
  SECTION("a reference of another length") {
    test::write_file(t.ws.file("short.tgt"), "red\n");
    auto r = test::run(kTranslate + " -c " + ck + " --tune -i " + src + " -r " + t.ws.file("short.tgt"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("short.tgt: 1 lines"));
    CHECK_FALSE(fs::exists(ck + "/decoding.json"));
  }
  SECTION("several checkpoints") {
    auto r = test::run(kTranslate + " -c " + ck + " -c " + ck + " --tune -i " + src + " -r " + src);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("one checkpoint"));
  }
  SECTION("a damaged decoding.json") {
    test::write_file(ck + "/decoding.json", "{\"beam\": 0, \"alpha\": 0.6}");
    auto r = test::run(kTranslate + " -c " + ck + " -i " + src);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("decoding.json") && Catch::Contains("beam"));
    CHECK(test::count_lines(r.err) == 1);
    test::write_file(ck + "/decoding.json", "{\"alpha\": 0.6}");
    r = test::run(kTranslate + " -c " + ck + " -i " + src);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("decoding.json: needs \"beam\""));
  }
  SECTION("options of the other mode") {
    auto r = test::run(kTranslate + " -c " + ck + " -i " + src + " --tune-beams 1,2");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--tune-beams: only with --tune"));
    r = test::run(kTranslate + " -c " + ck + " --tune -i " + src + " -r " + src + " -o " +
                  t.ws.file("tuned.out"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--output: not with --tune"));
    CHECK_FALSE(fs::exists(t.ws.file("tuned.out")));
    r = test::run(kTranslate + " -c " + ck + " --tune -i " + src + " -r " + src + " --beam 3");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--beam: not with --tune"));
    CHECK_FALSE(fs::exists(ck + "/decoding.json"));
  }
  SECTION("--nbest beyond the recorded beam") {
    test::write_file(ck + "/decoding.json", "{\"beam\": 2, \"alpha\": 0.6}");
    auto r = test::run(kTranslate + " -c " + ck + " -i " + src + " --nbest 3");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--nbest 3: exceeds the beam 2 recorded in") &&
                          Catch::Contains("give --beam as well"));
  }
  SECTION("--raw-weights of a run without EMA") {
    auto r = test::run(kTranslate + " -c " + ck + " -i " + src + " --raw-weights");
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("raw_model.pt") && Catch::Contains("drop --raw-weights"));
  }
}

TEST_CASE("an ensemble of one model, or of two copies, is that model", "[translate][ensemble]") {
  auto& t = trained();
  test::write_file(t.ws.file("in.txt"), "red cat sun\nblue dog\nsea sky hill moon tree\n");
  const std::string in = " -i " + t.ws.file("in.txt") + " --nbest 2 --beam 4";
  auto alone = test::run(kTranslate + " -c " + t.save + in);
  REQUIRE(alone.exit_code == 0);
  auto one = test::run(kTranslate + " -c " + t.save + in + " --ensemble");
  auto two = test::run(kTranslate + " -c " + t.save + " -c " + t.save + in + " --ensemble");
  auto averaged = test::run(kTranslate + " -c " + t.save + " -c " + t.save + in + " --average-weights");
  INFO(two.err);
  REQUIRE(two.exit_code == 0);
  CHECK(one.out == alone.out);  // texts, scores and log-probs, to the printed digit
  CHECK(averaged.out == alone.out);
  // Two members average log-probabilities, so they are ranked through
  // log-softmax, and one model from raw logits (beam_candidates.h): the same
  // texts, the scores equal up to the exp's rounding.
  const auto fields = [](const std::string& out) {
    std::vector<std::vector<std::string>> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> f;
      for (size_t at = 0, next; at != std::string::npos; at = next == std::string::npos ? next : next + 5) {
        next = line.find(" ||| ", at);
        f.push_back(line.substr(at, next == std::string::npos ? next : next - at));
      }
      lines.push_back(f);
    }
    return lines;
  };
  const auto a = fields(alone.out), b = fields(two.out);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == 4);
    REQUIRE(b[i].size() == 4);
    CHECK(a[i][0] == b[i][0]);
    CHECK(a[i][1] == b[i][1]);
    CHECK(std::stod(a[i][2]) == Approx(std::stod(b[i][2])).margin(1e-5));
    CHECK(std::stod(a[i][3]) == Approx(std::stod(b[i][3])).margin(1e-5));
  }
}

TEST_CASE("a checkpoint from a newer trainer still translates and training refuses its unknown keys",
          "[translate][checkpoint]") {
  auto& t = trained();
  const auto original = resolve_checkpoint(t.save);
  const auto copy = t.ws.file("newer");
  fs::remove_all(copy);
  fs::copy(original, copy, fs::copy_options::recursive);
  // What a later version might add: a train key, a section, a meta.json field.
  auto config = nlohmann::json::parse(test::read_file(copy + "/config.json"));
  config["train"]["warp_drive"] = true;
  config["serving"] = {{"port", 8080}};
  test::write_file(copy + "/config.json", config.dump(2));
  auto meta = nlohmann::json::parse(test::read_file(copy + "/meta.json"));
  meta["shards_done"] = 3;
  test::write_file(copy + "/meta.json", meta.dump(2));
  test::write_file(t.ws.file("newer.in"), "red cat sun\nblue dog\n");
  const std::string in = " -i " + t.ws.file("newer.in") + " --beam 4 --nbest 2";
  auto before = test::run(kTranslate + " -c " + original + in);
  auto after = test::run(kTranslate + " -c " + copy + in);
  INFO(after.err);
  REQUIRE(after.exit_code == 0);
  CHECK(after.out == before.out);
  // Resuming or fine-tuning would train under settings it cannot honour.
  CHECK_THROWS_WITH(read_checkpoint_config(copy), Catch::Contains("warp_drive"));
}

TEST_CASE("meta.json reads back through its schema to the same JSON", "[translate][checkpoint]") {
  auto& t = trained();
  const auto dir = resolve_checkpoint(t.save);
  const auto file = nlohmann::json::parse(test::read_file(dir + "/meta.json"));
  CHECK(to_json(read_checkpoint_meta(dir)) == file);
}

TEST_CASE("sampling: seeded, the same for any worker count, greedy at temperature 0",
          "[translate][sampling]") {
  auto& t = trained();
  std::string text;
  for (int i = 0; i < 12; ++i) text += std::string(i % 2 ? "red cat sun" : "blue dog moon tree") + "\n";
  test::write_file(t.ws.file("in.txt"), text);
  const std::string in = kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt");
  const std::string sample = in + " --sampling --nbest 3 --seed 7";
  auto a = test::run(sample + " --batch-size 4 --workers 1 --threads 1");
  auto b = test::run(sample + " --batch-size 4 --workers 2 --threads 2");
  auto c = test::run(sample + " --batch-size 5 --workers 1 --threads 2");
  INFO(a.err << b.err << c.err);
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  REQUIRE(c.exit_code == 0);
  CHECK(lines_of(a.out).size() == 36);  // three samples per line
  // The same samples; scores as equal as the BLAS kernel's sums (the
  // Translation section of docs/translation.md).
  check_same_nbest(b.out, a.out, 1e-4);
  check_same_nbest(c.out, a.out, 1e-4);  // batching does not change a line's draws
  auto other_seed = test::run(in + " --sampling --nbest 3 --seed 8 --batch-size 4");
  CHECK(other_seed.out != a.out);
  auto greedy = test::run(in + " --greedy");
  auto cold = test::run(in + " --sampling --temperature 0");
  REQUIRE(cold.exit_code == 0);
  CHECK(cold.out == greedy.out);
}

TEST_CASE("target prefixes: forced, then search goes on, and an empty one changes nothing",
          "[translate][prefix]") {
  auto& t = trained();
  test::write_file(t.ws.file("in.txt"), "red cat sun\nblue dog\n");
  const std::string in = kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt") + " --beam 4";
  auto plain = test::run(in);
  REQUIRE(plain.exit_code == 0);
  test::write_file(t.ws.file("empty.txt"), "\n\n");
  auto empty = test::run(in + " --prefix " + t.ws.file("empty.txt"));
  INFO(empty.err);
  REQUIRE(empty.exit_code == 0);
  CHECK(empty.out == plain.out);
  test::write_file(t.ws.file("prefix.txt"), "hill\n\n");
  auto forced = test::run(in + " --prefix " + t.ws.file("prefix.txt"));
  REQUIRE(forced.exit_code == 0);
  auto out = lines_of(forced.out), before = lines_of(plain.out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].rfind("hill", 0) == 0);
  CHECK(out[1] == before[1]);  // its line had no prefix
}

TEST_CASE("forced scoring of given targets agrees with the scores of search", "[translate][score]") {
  auto& t = trained();
  test::write_file(t.ws.file("in.txt"), "red cat sun\nblue dog\nsea sky\n");
  const std::string in = kTranslate + " -c " + t.save + " -i " + t.ws.file("in.txt");
  auto greedy = test::run(in + " --greedy --scores");
  auto texts = test::run(in + " --greedy -o " + t.ws.file("targets.txt"));
  REQUIRE(texts.exit_code == 0);
  auto scored = test::run(in + " --score-targets " + t.ws.file("targets.txt"));
  INFO(scored.err);
  REQUIRE(scored.exit_code == 0);
  check_same_nbest(scored.out, greedy.out, 1e-4);
  auto two = test::run(in + " --score-targets " + t.ws.file("targets.txt") + " -c " + t.save + " --ensemble");
  REQUIRE(two.exit_code == 0);
  CHECK(two.out == scored.out);
}

TEST_CASE("translate --precision bf16: every line and close to fp32 and what cannot run is refused",
          "[translate][precision][bad-input]") {
  auto& t = trained();
  std::string text;
  const char* words[] = {"red", "cat", "sun", "blue", "dog", "sea", "sky", "hill", "moon"};
  for (int i = 0; i < 24; ++i) {
    for (int w = 0; w <= i % 5; ++w) text += std::string(w ? " " : "") + words[(i + 3 * w) % 9];
    text += "\n";
  }
  test::write_file(t.ws.file("precision.txt"), text);
  auto translate = [&](const std::string& extra) {
    return test::run(kTranslate + " -c " + t.save + " -i " + t.ws.file("precision.txt") +
                     " --beam 4 --batch-size 5 --threads 2 --workers 2 " + extra);
  };
  const auto fp32 = translate(""), bf16 = translate("--precision bf16");
  INFO(bf16.err);
  REQUIRE(bf16.exit_code == 0);
  CHECK_THAT(bf16.err, Catch::Contains("precision: bf16 matrix products under autocast"));
  CHECK_THAT(bf16.err, !Catch::Contains("weights packed"));  // packing is the fp32 path
  const auto a = lines_of(fp32.out), b = lines_of(bf16.out);
  REQUIRE(b.size() == 24);
  REQUIRE(a.size() == 24);
  // bf16 keeps 8 bits of mantissa: a near tie may go the other way, most lines do not.
  int same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i] ? 1 : 0;
  CHECK(same >= 20);

  const auto fp16 = translate("--precision fp16");
  if (TORCH_VERSION_MAJOR < 2) {
    CHECK(fp16.exit_code == 2);
    CHECK_THAT(fp16.err,
               Catch::StartsWith("aiayn-translate: error: --precision: fp16 on the CPU needs LibTorch 2.x"));
    CHECK(test::count_lines(fp16.err) == 1);
  } else {
    INFO(fp16.err);
    CHECK(fp16.exit_code == 0);
    CHECK(lines_of(fp16.out).size() == 24);
  }
  const auto unknown = translate("--precision fp8");
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.err, Catch::Contains("--precision: unknown precision \"fp8\" (use fp32, bf16 or fp16)"));
  CHECK(test::count_lines(unknown.err) == 1);
  const auto with_int8 = translate("--int8 --precision bf16");
  CHECK(with_int8.exit_code == 2);
  CHECK_THAT(with_int8.err, Catch::Contains("--precision: not with --int8"));
}
