// The process around the model: which BLAS kernel runs, output files that
// never cost the user data, the build's layering check, and checkpoint
// metadata a reader must refuse rather than misread.
#include <ATen/Version.h>
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "src/common/blas_kernel.h"
#include "src/common/build_info.h"
#include "src/common/error.h"
#include "src/common/output_file.h"
#include "src/decode/checkpoint_reader.h"
#include "src/train/training_state.h"
#include "tests/test_util.h"

using namespace aiayn;
namespace fs = std::filesystem;

namespace {

CpuFeatures cpu_with(const std::string& level) {
  CpuFeatures f;
  f.vendor = "GenuineIntel";
  if (level == "sse") return f;
  f.avx = true;
  if (level == "avx") return f;
  f.avx2 = f.fma = true;
  if (level == "avx2") return f;
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512cd = true;
  if (level == "avx512") return f;
  f.avx512_vnni = f.avx512_bf16 = true;
  return f;  // "bf16"
}

}  // namespace

TEST_CASE("the OpenBLAS kernel follows the CPU's features, never its model", "[runtime][blas]") {
  struct Case {
    const char* cpu;
    const char* openblas;
    const char* user;
    const char* set;       // "" = keep
    const char* why_part;  // a piece of the log line's reason
  };
  const Case cases[] = {
      // The machine of issue 20: Debian's 0.3.21 does not know its model.
      {"bf16", "Prescott", "", "Cooperlake",
       "OpenBLAS chose Prescott: CPU model unknown to it; AVX-512 BF16 present"},
      {"avx512", "Prescott", "", "SkylakeX", "AVX-512 F/BW/VL/DQ/CD present"},
      {"avx2", "Prescott", "", "Haswell", "AVX2 and FMA present"},
      {"avx", "Core2", "", "Sandybridge", "AVX present"},
      {"bf16", "Haswell", "", "Cooperlake", "OpenBLAS chose Haswell"},
      {"bf16", "SkylakeX", "", "Cooperlake", "OpenBLAS chose SkylakeX"},
      // OpenBLAS knew the CPU: its choice stands.
      {"avx512", "SkylakeX", "", "", "OpenBLAS's choice"},
      {"bf16", "Cooperlake", "", "", "OpenBLAS's choice"},
      {"avx2", "Haswell", "", "", "OpenBLAS's choice"},
      {"sse", "Prescott", "", "", "OpenBLAS's choice"},
      // Case does not matter in OpenBLAS's names.
      {"avx512", "SKYLAKEX", "", "", "OpenBLAS's choice"},
      // A vendor's own kernel and names newer than this table are not fallbacks.
      {"bf16", "Zen", "", "", "OpenBLAS's choice"},
      {"bf16", "SapphireRapids", "", "", "OpenBLAS's choice"},
      {"bf16", "Diamondrapids", "", "", "OpenBLAS's choice"},
      // A user's setting is kept, even a slower one.
      {"bf16", "Prescott", "Haswell", "",
       "OPENBLAS_CORETYPE=Haswell, the user's setting; this CPU's best is Cooperlake"},
      {"avx512", "SkylakeX", "Prescott", "", "the user's setting"},
      {"avx512", "SkylakeX", "SkylakeX", "", "OPENBLAS_CORETYPE=SkylakeX, the user's setting"},
  };
  for (const auto& c : cases) {
    INFO(c.cpu << " / OpenBLAS " << c.openblas << " / user '" << c.user << "'");
    const auto d = choose_openblas_kernel(cpu_with(c.cpu), c.openblas, c.user);
    CHECK(d.set == c.set);
    CHECK_THAT(d.why, Catch::Contains(c.why_part));
  }
  CHECK(best_openblas_kernel(cpu_with("sse")).empty());
  // AVX-512 without all of BW/VL/DQ/CD (Knights Landing) is not SkylakeX's.
  auto knl = cpu_with("avx512");
  knl.avx512bw = false;
  CHECK(best_openblas_kernel(knl) == "Haswell");
}

TEST_CASE("this CPU's features as cpuid and the OS report them", "[runtime][blas]") {
  const auto f = detect_cpu_features();
#if defined(__x86_64__)
  __builtin_cpu_init();
  CHECK(f.avx2 == static_cast<bool>(__builtin_cpu_supports("avx2")));
  CHECK(f.fma == static_cast<bool>(__builtin_cpu_supports("fma")));
  CHECK(f.avx512f == static_cast<bool>(__builtin_cpu_supports("avx512f")));
  CHECK(f.avx512bw == static_cast<bool>(__builtin_cpu_supports("avx512bw")));
  CHECK_FALSE(f.vendor.empty());
#endif
  INFO(f.describe());
  CHECK_FALSE(f.describe().empty());
}

TEST_CASE("the kernel in use multiplies correctly, and the description names it", "[runtime][blas]") {
  CHECK(blas_check_error() < 1e-5);
  const auto kernel = openblas_kernel();
  const auto line = describe_blas();
  INFO(line);
  if (kernel.empty()) {
    CHECK(line == non_openblas_description(at::show_config()));
  } else {
    CHECK_THAT(line, Catch::StartsWith("OpenBLAS 0.") && Catch::Contains("kernel " + kernel + " ("));
  }
}

TEST_CASE("an output may not name one of the inputs, by any path", "[runtime][output][bad-input]") {
  test::TempDir dir;
  const auto input = dir.file("x.en");
  test::write_file(input, "a sentence\n");
  const NamedPaths inputs = {{"--input", input}, {"--reference", ""}};
  auto refused = [&](const std::string& output) {
    try {
      refuse_output_over_input("--output", output, inputs);
    } catch (const InputError& e) {
      CHECK_THAT(e.what(), Catch::Contains("--output " + output) && Catch::Contains("--input " + input));
      return true;
    }
    return false;
  };
  CHECK(refused(input));
  CHECK(refused(dir.file("./x.en")));
  CHECK(refused(dir.file("sub/../x.en")));
  fs::create_symlink(input, dir.file("link.en"));
  CHECK(refused(dir.file("link.en")));
  fs::create_hard_link(input, dir.file("hard.en"));
  CHECK(refused(dir.file("hard.en")));
  const auto cwd = fs::current_path();
  fs::current_path(dir.path());
  CHECK(refused("x.en"));
  fs::current_path(cwd);
  CHECK_FALSE(refused(dir.file("x.de")));
  CHECK_FALSE(refused("-"));
  CHECK(test::read_file(input) == "a sentence\n");
}

TEST_CASE("an output file appears whole on commit, and never otherwise", "[runtime][output]") {
  test::TempDir dir;
  const auto path = dir.file("out.txt");
  test::write_file(path, "old\n");
  auto temporaries = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) n += e.path().filename() != "out.txt";
    return n;
  };
  {
    OutputFile out(path);
    out.stream() << "new\n";
    out.check();
    CHECK(temporaries() == 1);
    CHECK(test::read_file(path) == "old\n");  // untouched until commit
  }                                           // not committed: an error or an early return
  CHECK(test::read_file(path) == "old\n");
  CHECK(temporaries() == 0);
  {
    OutputFile out(path);
    out.stream() << "new\n";
    out.commit();
  }
  CHECK(test::read_file(path) == "new\n");
  CHECK(temporaries() == 0);
  // A directory that does not exist is the user's path (bad input); a full
  // disk is the system's (IOError: the tmpfs cases in test_translate.cpp).
  CHECK_THROWS_AS(OutputFile(dir.file("no/such/dir/out.txt")), InputError);
}

TEST_CASE("an output that is a device or a pipe is written in place, never replaced", "[runtime][output]") {
  // As root, renaming a temporary over /dev/null made it a regular file for
  // the whole machine (head_importance.sh's --output /dev/null did).
  struct stat before {};
  REQUIRE(::stat("/dev/null", &before) == 0);
  REQUIRE(S_ISCHR(before.st_mode));
  {
    OutputFile out("/dev/null");
    out.stream() << "discarded\n";
    out.commit();
  }
  { OutputFile abandoned("/dev/null"); }  // not committed: nothing may be removed
  struct stat after {};
  REQUIRE(::stat("/dev/null", &after) == 0);
  CHECK(S_ISCHR(after.st_mode));
  CHECK(after.st_rdev == before.st_rdev);
  // A pipe: the reader gets every line, and the pipe stays a pipe.
  test::TempDir dir;
  const auto fifo = dir.file("pipe");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string got;
  std::thread reader([&] { got = test::read_file(fifo); });
  {
    OutputFile out(fifo);
    out.stream() << "one\ntwo\n";
    out.commit();
  }
  reader.join();
  CHECK(got == "one\ntwo\n");
  struct stat pipe_stat {};
  REQUIRE(::stat(fifo.c_str(), &pipe_stat) == 0);
  CHECK(S_ISFIFO(pipe_stat.st_mode));
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("the build refuses an include against the layering", "[layering]") {
  const std::string check =
      std::string(AIAYN_CMAKE) + " -DROOT=%s -P " + AIAYN_SOURCE_DIR + "/cmake/check_layering.cmake";
  auto command = [&](const std::string& root) {
    std::string c = check;
    return c.replace(c.find("%s"), 2, root);
  };
  // The tree as it is keeps the order.
  auto ours = test::run(command(AIAYN_SOURCE_DIR));
  INFO(ours.out << ours.err);
  CHECK(ours.exit_code == 0);

  test::TempDir dir;
  for (const char* folder : {"models", "src/data", "src/decode/kernels", "src/attention", "src/newer", "apps",
                             "tools", "tests", "bench", "third_party/sentencepiece"}) {
    fs::create_directories(dir.path() / folder);
  }
  test::write_file(dir.file("models/a.h"), "#include \"src/train/trainer.h\"\n");
  test::write_file(
      dir.file("src/decode/b.cpp"),
      "#include <vector>\n\n#include \"src/train/optimizer.h\"\n#include \"src/data/batching.h\"\n");
  test::write_file(dir.file("src/attention/c.cpp"),
                   "#include \"src/attention/x.h\"\n#include \"src/decode/search.h\"\n");
  test::write_file(dir.file("src/data/d.cpp"),
                   "  #  include \"src/decode/search.h\"  // upward\n#include \"src/loose.h\"\n");
  // A subfolder belongs to its layer, whichever side of the include it is on.
  test::write_file(dir.file("src/decode/kernels/k.cpp"),
                   "int a; int b;\n#include \"src/train/loss.h\"\n#include \"src/decode/search.h\"\n");
  test::write_file(dir.file("src/data/e.cpp"), "#include \"src/decode/kernels/k.h\"\n");
  test::write_file(dir.file("src/attention/f.cpp"), "#include \"src/decode/kernels/k.h\"\n");
  // A folder that cmake/layers.txt does not name is no layer.
  test::write_file(dir.file("src/newer/n.cpp"), "#include \"src/common/error.h\"\n");
  // Executables and tests use the library; only their own folder uses them.
  test::write_file(
      dir.file("apps/g.cpp"),
      "#include \"src/train/trainer.h\"\n#include \"tests/test_util.h\"\n#include \"tools/dates_corpus.h\"\n");
  test::write_file(dir.file("tools/h.cpp"),
                   "#include \"src/attention/attention_job.h\"\n#include \"apps/g.h\"\n");
  test::write_file(dir.file("tests/i.cpp"),
                   "#include \"tests/test_util.h\"\n#include \"tools/dates_corpus.h\"\n"
                   "#include \"src/train/trainer.h\"\n#include \"bench/j.h\"\n");
  test::write_file(dir.file("bench/j.cpp"),
                   "#include \"models/packed_linear.h\"\n#include \"tests/test_util.h\"\n");
  test::write_file(dir.file("third_party/sentencepiece/l.cpp"),
                   "#include \"bridge_api.h\"\n#include \"src/common/error.h\"\n");
  auto bad = test::run(command(dir.path().string()));
  INFO(bad.out << bad.err);
  CHECK(bad.exit_code != 0);
  CHECK_THAT(bad.err,
             Catch::Contains("models/a.h:1: includes src/train/trainer.h, but models may use no other "
                             "folder of ours (cmake/layers.txt)"));
  CHECK_THAT(bad.err,
             Catch::Contains("src/decode/b.cpp:3: includes src/train/optimizer.h, but src/decode may use "
                             "only models, src/common, src/data"));
  CHECK_THAT(bad.err, Catch::Contains("src/data/d.cpp:1: includes src/decode/search.h"));
  // A header left in src/ itself belongs to no layer: none may include it.
  CHECK_THAT(bad.err, Catch::Contains("src/data/d.cpp:2: includes src/loose.h"));
  CHECK_THAT(bad.err, !Catch::Contains("src/attention/c.cpp"));  // its own folder and one below
  CHECK_THAT(bad.err, !Catch::Contains("batching.h"));
  CHECK_THAT(bad.err,
             Catch::Contains("src/decode/kernels/k.cpp:2: includes src/train/loss.h, but src/decode may use "
                             "only models, src/common, src/data"));
  CHECK_THAT(bad.err, !Catch::Contains("k.cpp:3"));
  CHECK_THAT(bad.err,
             Catch::Contains("src/data/e.cpp:1: includes src/decode/kernels/k.h, but src/data may use"));
  CHECK_THAT(bad.err, !Catch::Contains("src/attention/f.cpp"));
  CHECK_THAT(bad.err, Catch::Contains("src/newer/n.cpp:1: is in no folder of cmake/layers.txt"));
  CHECK_THAT(
      bad.err,
      Catch::Contains("apps/g.cpp:2: includes tests/test_util.h, but apps may use only models, "
                      "src/common, src/data, src/decode, src/train, src/attention, src/serve, third_party"));
  CHECK_THAT(bad.err, Catch::Contains("apps/g.cpp:3: includes tools/dates_corpus.h"));
  CHECK_THAT(bad.err, !Catch::Contains("apps/g.cpp:1"));
  CHECK_THAT(bad.err, Catch::Contains("tools/h.cpp:2: includes apps/g.h"));
  CHECK_THAT(bad.err, !Catch::Contains("tools/h.cpp:1"));
  CHECK_THAT(bad.err, Catch::Contains("tests/i.cpp:4: includes bench/j.h, but tests may use"));
  CHECK_THAT(bad.err, !Catch::Contains("tests/i.cpp:1") && !Catch::Contains("tests/i.cpp:2") &&
                          !Catch::Contains("tests/i.cpp:3"));
  CHECK_THAT(bad.err, Catch::Contains("bench/j.cpp:2: includes tests/test_util.h"));
  CHECK_THAT(bad.err, !Catch::Contains("bench/j.cpp:1"));
  CHECK_THAT(bad.err, Catch::Contains("third_party/sentencepiece/l.cpp:2: includes src/common/error.h"));
  CHECK_THAT(bad.err, !Catch::Contains("l.cpp:1"));
  CHECK_THAT(bad.err, Catch::Contains("layering: 13 offence(s) against cmake/layers.txt"));

  // The rule itself reads bottom-up: a folder may name only folders above it.
  fs::create_directories(dir.path() / "cmake");
  test::write_file(dir.file("cmake/layers.txt"),
                   "# planted\nmodels\nsrc/data  models src/decode\nsrc/decode models\n");
  auto cycle = test::run(command(dir.path().string()));
  CHECK(cycle.exit_code != 0);
  CHECK_THAT(
      cycle.err,
      Catch::Contains("cmake/layers.txt:3: src/data may include src/decode, which is not on a line above"));
}

TEST_CASE("the build reads its settings from LibTorch itself", "[runtime][build]") {
  const std::string official =
      "  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, CUDA_VERSION=13.0, CUDNN_VERSION=9.20.0, "
      "CXX_FLAGS= -DNDEBUG -O2, TORCH_VERSION=2.13.0, USE_CUDA=1, USE_NCCL=ON, \n";
  CHECK(build_setting(official, "CUDA_VERSION") == "13.0");
  CHECK(build_setting(official, "CUDNN_VERSION") == "9.20.0");
  CHECK(build_setting(official, "USE_CUDA") == "1");
  CHECK(build_setting(official, "BLAS_INFO") == "mkl");
  CHECK(build_setting(official, "USE_MPI").empty());
  // A key is matched whole: CUDA_VERSION is not read out of NVCC_CUDA_VERSION.
  CHECK(build_setting("Build settings: NVCC_CUDA_VERSION=12.1, ", "CUDA_VERSION").empty());

  const std::string mkl =
      "  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64\n";
  CHECK(non_openblas_description(mkl) == "MKL 2024.2 (linked into LibTorch; no kernel to choose)");
  CHECK(non_openblas_description(official) == "LibTorch's own BLAS (BLAS_INFO=mkl)");

  // This process: what LibTorch reports of itself, consistently.
  const auto info = build_info();
  INFO(describe_build(info));
  CHECK(info.libtorch == TORCH_VERSION);
  CHECK(info.cuda == !info.cuda_version.empty());
  CHECK_THAT(describe_build(info), Catch::StartsWith(std::string("LibTorch ") + TORCH_VERSION + " (C++"));
  CHECK(build_json(info)["blas"] == info.blas);
  if (!info.cuda) CHECK_THAT(describe_build(info), Catch::EndsWith("CPU only, no CUDA compiled in"));
  // A CUDA LibTorch loads its NCCL; a build with c10d's NCCL backend was
  // compiled against the same version (or the executables refuse to start).
  if (!info.nccl_header.empty()) CHECK(info.nccl_header == info.nccl_loaded);
  CHECK_NOTHROW(check_nccl_matches());
}

TEST_CASE("an NCCL header of another NCCL than the loaded one is refused, naming the fix",
          "[runtime][build][bad-input]") {
  CHECK(nccl_mismatch("2.29.7", "2.29.7").empty());
  CHECK(nccl_mismatch("", "2.29.7").empty());  // no NCCL backend built
  CHECK(nccl_mismatch("2.29.7", "").empty());  // no NCCL loaded (a CPU LibTorch)
  const auto why = nccl_mismatch("2.28.9", "2.29.7");
  CHECK_THAT(why, Catch::StartsWith("NCCL header mismatch: built against nccl.h of NCCL 2.28.9 but this "
                                    "process loaded NCCL 2.29.7") &&
                      Catch::Contains("-DNCCL_INCLUDE_DIR=<include of NCCL 2.29.7>"));
  CHECK(why.find('\n') == std::string::npos);
}

TEST_CASE("meta.json with a float where an integer belongs is refused naming the key",
          "[runtime][bad-input][fuzz]") {
  // fuzz/fuzz_meta.cpp: nlohmann's get<int> cast 1.5e300 to int, which is
  // undefined behaviour (UBSan); a float in range was silently truncated.
  test::TempDir dir;
  const auto meta = dir.file("meta.json");
  test::write_file(meta, R"({"format": 1.5e300})");
  CHECK_THROWS_WITH(read_checkpoint_meta(dir.path().string()),
                    Catch::StartsWith(meta) && Catch::Contains("\"format\" must be an integer"));
  test::write_file(meta, R"({"format": 1, "step": 2.5, "epoch": 0, "batch_index": 0, "skipped_updates": 0,
    "best_valid": null, "stale_validations": 0, "train_seconds": 1.0, "tokenizer_hash": "ab", "vocab_size": 9})");
  CHECK_THROWS_WITH(
      read_checkpoint_meta(dir.path().string()),
      Catch::StartsWith(meta) && Catch::Contains("\"step\" must be an integer (int64), got 2.5"));
  test::write_file(meta, R"({"format": 1, "step": 2, "epoch": 0, "batch_index": 0, "skipped_updates": 0,
    "best_valid": null, "stale_validations": 0, "train_seconds": 1.0, "tokenizer_hash": "ab", "vocab_size": 9,
    "loss_scale": {"scale": 8.0, "good_updates": -1e300}})");
  CHECK_THROWS_WITH(read_checkpoint_meta(dir.path().string()),
                    Catch::Contains("\"good_updates\" must be an integer"));
  test::write_file(meta, R"({"format": 1, "step": 18446744073709551615, "epoch": 0, "batch_index": 0,
    "skipped_updates": 0, "best_valid": null, "stale_validations": 0, "train_seconds": 1.0,
    "tokenizer_hash": "ab", "vocab_size": 9})");  // past INT64_MAX: nlohmann keeps it unsigned
  CHECK_THROWS_WITH(read_checkpoint_meta(dir.path().string()),
                    Catch::Contains("\"step\" must be an integer"));
  test::write_file(meta, R"({"format": 1.5e340})");  // past double's range: nlohmann's out_of_range
  CHECK_THROWS_WITH(read_checkpoint_meta(dir.path().string()),
                    Catch::StartsWith(meta) && Catch::Contains("number overflow"));
}
