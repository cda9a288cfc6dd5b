// SentencePiece and LibTorch in one process (third_party/sentencepiece).
//
// Linking Debian's libsentencepiece next to LibTorch crashes at start-up or
// aborts in protobuf's version check; if that ever comes back, this binary
// dies before or during these tests, and ctest reports it.
#include <catch2/catch.hpp>

#include "tests/test_util.h"
#include "third_party/sentencepiece/loader.h"

namespace {

bool mapped(const std::string& library) {
  return aiayn::test::read_file("/proc/self/maps").find(library) != std::string::npos;
}

}  // namespace

TEST_CASE("SentencePiece trains, encodes and decodes beside LibTorch", "[third_party][spm]") {
  // LibTorch (and its protobuf) is linked; SentencePiece must not be.
  REQUIRE(mapped("libtorch_cpu"));
  REQUIRE_FALSE(mapped("libsentencepiece.so"));

  const auto& spm = aiayn::spm::api();
  CHECK(mapped("libsentencepiece.so"));
  INFO("bridge " << aiayn::spm::bridge_path());

  aiayn::test::TempDir dir;
  std::string corpus;
  const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"};
  for (int i = 0; i < 400; ++i) {
    for (int j = 0; j < 6; ++j) corpus += std::string(j ? " " : "") + words[(i * 7 + j * 3) % 10];
    corpus += "\n";
  }
  aiayn::test::write_file(dir.file("corpus.txt"), corpus);
  std::string flags = "--input=" + dir.file("corpus.txt") + " --model_prefix=" + dir.file("spm") +
                      " --vocab_size=40 --model_type=bpe --pad_id=0 --unk_id=1 --bos_id=2"
                      " --eos_id=3 --minloglevel=2";
  REQUIRE(spm.train(flags.c_str()) == 0);

  auto* proc = spm.load(dir.file("spm.model").c_str());
  REQUIRE(proc != nullptr);
  CHECK(spm.vocab_size(proc) == 40);
  std::string text = "the dog sat on a mat";
  std::vector<int> ids(64);
  long n = spm.encode(proc, text.data(), text.size(), ids.data(), ids.size());
  REQUIRE(n > 0);
  ids.resize(static_cast<size_t>(n));
  std::string back(256, '\0');
  long len = spm.decode(proc, ids.data(), ids.size(), back.data(), back.size());
  back.resize(static_cast<size_t>(len));
  CHECK(back == text);

  // The ids go straight into a LibTorch tensor, in the same process.
  auto t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()));
  CHECK(t.numel() == n);
  CHECK(torch::embedding(torch::eye(40), t).sum().item<float>() == float(n));

  CHECK(spm.load(dir.file("missing.model").c_str()) == nullptr);
  CHECK(std::string(spm.last_error()).size() > 0);
  spm.free(proc);
}
