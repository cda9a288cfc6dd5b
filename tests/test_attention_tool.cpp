// The attention tool: properties of the captured maps, the JSON dump, the
// viewer in headless Chromium, and bad input.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>

#include "models/transformer.h"
#include "src/attention/attention_export.h"
#include "src/decode/checkpoint_reader.h"
#include "src/decode/search.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"

using namespace aiayn;
using test::trained;
namespace fs = std::filesystem;

namespace {

const std::string kAttention = std::string(AIAYN_BIN_DIR) + "/aiayn-attention";

std::vector<nlohmann::json> read_dump(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

Transformer trained_model() { return load_model(resolve_checkpoint(trained().save), torch::kCPU); }

}  // namespace

TEST_CASE("captured weights times the values reproduce the head outputs", "[attention-tool]") {
  auto m = trained_model();
  torch::NoGradGuard no_grad;
  auto& attn = *m->encoder->layers[0]->as<EncoderLayer>()->self_attn;
  auto x = torch::randn({2, 5, m->config().d_model});
  torch::Tensor weights;
  auto y = attn.self_attention(x, {}, nullptr, &weights);  // [2, 5, d_model]
  // V per head from W^V, then softmax weights x V, concatenated, times W^O.
  const int64_t h = m->config().heads, dv = m->config().d_v, dk = m->config().d_k;
  auto wv = attn.in_proj_weight.narrow(0, 2 * h * dk, h * dv);
  auto bv = attn.in_proj_bias.narrow(0, 2 * h * dk, h * dv);
  auto v = (torch::matmul(x, wv.t()) + bv).view({2, 5, h, dv}).transpose(1, 2);  // [2, h, 5, d_v]
  auto heads = torch::matmul(weights, v).transpose(1, 2).reshape({2, 5, h * dv});
  CHECK(test::max_abs_diff(attn.out_proj(heads), y) < 1e-5);
}

TEST_CASE("padding keys get zero weight", "[attention-tool]") {
  auto m = trained_model();
  torch::NoGradGuard no_grad;
  auto src = torch::tensor(std::vector<int64_t>{5, 6, 7, kEosId, 5, kEosId, kPadId, kPadId}).view({2, 4});
  auto padding = padding_mask(src, kPadId);
  AttentionMaps maps;
  auto memory = m->encode(src, padding, &maps);
  m->decode(torch::tensor(std::vector<int64_t>{kBosId, 8, kBosId, 9}).view({2, 2}), memory, padding, {},
            nullptr, &maps);
  for (const auto* kind : {&maps.encoder, &maps.cross}) {
    for (const auto& w : *kind) {
      CHECK(w[1].narrow(-1, 2, 2).abs().max().item<float>() == 0.0f);
      CHECK(test::max_abs_diff(w.sum(-1), torch::ones_like(w.sum(-1))) < 1e-5);
    }
  }
}

TEST_CASE("forced decoding of the greedy output gives the maps of generation", "[attention-tool]") {
  auto m = trained_model();
  torch::NoGradGuard no_grad;
  std::vector<int64_t> source = {5, 9, 7, 11};
  auto src = torch::tensor(std::vector<int64_t>{5, 9, 7, 11, kEosId}, torch::kLong).unsqueeze(0);
  SearchOptions o;
  o.beam = 1;
  auto hyp = search(*m, src, o)[0][0];
  // Capture step by step during incremental generation of that output.
  auto padding = padding_mask(src, kPadId);
  auto memory = m->encode(src, padding);
  DecoderState state;
  std::vector<int64_t> inputs = {kBosId};
  inputs.insert(inputs.end(), hyp.tokens.begin(), hyp.tokens.end());
  const int64_t steps = static_cast<int64_t>(inputs.size());
  std::vector<std::vector<torch::Tensor>> self_rows(m->config().decoder_layers),
      cross_rows(m->config().decoder_layers);
  for (int64_t t = 0; t < steps; ++t) {
    AttentionMaps step;
    m->decode(torch::tensor({inputs[t]}, torch::kLong).unsqueeze(0), memory, padding, {}, &state, &step);
    for (size_t l = 0; l < self_rows.size(); ++l) {
      // Pad the growing key axis to the full length with zeros (masked keys).
      self_rows[l].push_back(torch::constant_pad_nd(step.decoder[l], {0, steps - t - 1}));
      cross_rows[l].push_back(step.cross[l]);
    }
  }
  auto forced = capture_attention(*m, source, hyp.tokens);
  for (size_t l = 0; l < self_rows.size(); ++l) {
    CHECK(test::max_abs_diff(torch::cat(self_rows[l], 2), forced.decoder[l]) < 1e-5);
    CHECK(test::max_abs_diff(torch::cat(cross_rows[l], 2), forced.cross[l]) < 1e-5);
  }
}

TEST_CASE("the JSON dump has bertviz's fields and valid maps", "[attention-tool]") {
  auto& t = trained();
  test::write_file(t.ws.file("src.txt"), "red cat sun\n\nblue dog moon tree\n");
  auto r = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("src.txt") + " --decimals 8");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto dump = read_dump(r.out);
  REQUIRE(dump.size() == 3);
  const auto config = read_checkpoint_model(resolve_checkpoint(t.save));
  CHECK(dump[1]["encoder_tokens"].empty());  // the empty line keeps its place
  CHECK(dump[1]["index"] == 1);
  for (size_t i : {size_t{0}, size_t{2}}) {
    const auto& e = dump[i];
    CHECK(e["version"] == kAttentionFormatVersion);
    const size_t s = e["encoder_tokens"].size(), tq = e["decoder_tokens"].size();
    CHECK(e["encoder_tokens"].back() == "</s>");
    CHECK(e["decoder_tokens"][0] == "<s>");
    for (const char* kind : {"encoder_attention", "decoder_attention", "cross_attention"}) {
      const auto& layers = e[kind];
      const bool encoder_kind = std::string(kind) == "encoder_attention";
      REQUIRE(layers.size() == size_t(encoder_kind ? config.encoder_layers : config.decoder_layers));
      CHECK(e["layers"][encoder_kind ? "encoder" : "decoder"].size() == layers.size());
      for (const auto& layer : layers) {
        REQUIRE(layer.size() == size_t(config.heads));
        for (const auto& head : layer) {
          const bool encoder = std::string(kind) == "encoder_attention";
          const bool self = std::string(kind) == "decoder_attention";
          REQUIRE(head.size() == (encoder ? s : tq));
          for (size_t q = 0; q < head.size(); ++q) {
            REQUIRE(head[q].size() == (self ? tq : s));
            double sum = 0;
            for (size_t k = 0; k < head[q].size(); ++k) {
              sum += head[q][k].get<double>();
              if (self && k > q) CHECK(head[q][k].get<double>() == 0.0);
            }
            CHECK(sum == Approx(1.0).margin(1e-4));
          }
        }
      }
    }
  }
  // Forced decoding of a given target; layer/head selection; head averaging.
  test::write_file(t.ws.file("tgt.txt"), "sun cat red\n\ntree moon dog blue\n");
  r = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("src.txt") + " -t " + t.ws.file("tgt.txt") +
                " --kinds cross --layers 1 --heads 0,2 --average-heads");
  REQUIRE(r.exit_code == 0);
  dump = read_dump(r.out);
  REQUIRE(dump.size() == 3);
  CHECK(dump[0]["target"] == "sun cat red");
  CHECK(dump[0]["heads"] == "mean");
  CHECK(dump[0]["layers"]["decoder"] == nlohmann::json::array({1}));
  CHECK_FALSE(dump[0].contains("encoder_attention"));
  CHECK(dump[0]["cross_attention"].size() == 1);
  CHECK(dump[0]["cross_attention"][0].size() == 1);
  auto pieces = load_checkpoint_tokenizer(resolve_checkpoint(t.save)).encode("sun cat red");
  CHECK(dump[0]["decoder_tokens"].size() == pieces.size() + 1);  // <s> + the target's pieces
}

TEST_CASE("the viewer renders a real dump in headless Chromium", "[attention-tool][browser]") {
  auto& t = trained();
  test::write_file(t.ws.file("src.txt"), "red cat sun hill\nblue dog\n");
  auto html = t.ws.file("viewer.html");
  auto r = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("src.txt") + " -o " +
                     t.ws.file("dump.jsonl") + " --html " + html);
  REQUIRE(r.exit_code == 0);
  REQUIRE(fs::exists(html));
  test::TempDir profile;
  const std::string chromium =
      "chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir=" +
      profile.path().string() + " --virtual-time-budget=5000 --window-size=1200,900 ";
  auto dom = test::run(chromium + "--dump-dom file://" + html);
  INFO(dom.err);
  REQUIRE(dom.exit_code == 0);
  // Two layers of four heads of the first sentence's encoder self-attention.
  CHECK_THAT(dom.out, Catch::Contains("rendered 8 maps of sentence 0 (2 in the dump)"));
  CHECK_THAT(dom.out, !Catch::Contains("<div id=\"status\">JS error"));
  auto png = t.ws.file("shot.png");
  auto shot = test::run(chromium + "--screenshot=" + png + " file://" + html);
  REQUIRE(fs::exists(png));
  // Not blank: the heatmaps bring many distinct colours.
  auto colours = test::run(
      "/usr/bin/python3 -c \"import sys, matplotlib.image as im; a = im.imread(sys.argv[1]);"
      " print(len({tuple(p) for row in (a[..., :3] * 255).astype(int) for p in row}))\" " +
      png);
  REQUIRE(colours.exit_code == 0);
  CHECK(std::stoi(colours.out) > 20);
}

TEST_CASE("attention bad input: clear errors and exit 2", "[attention-tool][bad-input]") {
  auto& t = trained();
  test::write_file(t.ws.file("src.txt"), "red cat\nblue dog\n");
  const std::string base = kAttention + " -c " + t.save + " -i " + t.ws.file("src.txt");
  auto r = test::run(base + " --layers 9");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--layers 9") && Catch::Contains("valid: 0-1"));
  r = test::run(base + " --heads 0,7");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("head 7") && Catch::Contains("valid: 0-3"));
  r = test::run(base + " --kinds cross,values");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown kind \"values\""));
  test::write_file(t.ws.file("tgt.txt"), "cat red\n");
  r = test::run(base + " -t " + t.ws.file("tgt.txt") + " -o " + t.ws.file("out.jsonl"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("differ in length"));
  CHECK_FALSE(fs::exists(t.ws.file("out.jsonl")));  // no partial dump
  std::string longline;
  for (int i = 0; i < 200; ++i) longline += (i ? " " : "") + std::string("sun");
  test::write_file(t.ws.file("long.txt"), longline + "\n");
  r = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("long.txt") + " --kinds encoder");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("truncated"));
  r = test::run(kAttention + " -c " + t.ws.file("none") + " -i " + t.ws.file("src.txt"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("checkpoint not found"));
}

TEST_CASE("attention: an output over an input is refused, and a signal leaves the old dump",
          "[attention-tool][bad-input][output]") {
  auto& t = trained();
  const auto src = t.ws.file("a.src"), tgt = t.ws.file("a.tgt");
  test::write_file(src, "red cat\n");
  test::write_file(tgt, "cat red\n");
  const std::string base = kAttention + " -c " + t.save + " -i " + src + " -t " + tgt;
  auto r = test::run(base + " -o " + src);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--output " + src + ": is the same file as --source"));
  r = test::run(base + " -o " + t.ws.file("d.jsonl") + " --html " + tgt);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--html " + tgt + ": is the same file as --target"));
  r = test::run(base + " -o " + t.ws.file("d.jsonl") + " --html " + t.ws.file("d.jsonl"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("same file as --output"));
  CHECK(test::read_file(src) == "red cat\n");
  CHECK(test::read_file(tgt) == "cat red\n");
  CHECK_FALSE(fs::exists(t.ws.file("d.jsonl")));

  const auto out = t.ws.file("old.jsonl");
  test::write_file(out, "{}\n");
  const int status =
      test::signal_while_writing({kAttention, "-c", t.save, "-o", out}, "red cat\n", out, SIGTERM);
  REQUIRE(status != -1);
  CHECK(WIFSIGNALED(status));
  CHECK(test::read_file(out) == "{}\n");
  for (const auto& e : fs::directory_iterator(t.ws.dir.path())) {
    CHECK(e.path().string().rfind(out + ".tmp-", 0) != 0);
  }
}

TEST_CASE("plot_attention.py draws every kind and selection of a real dump", "[attention-tool][tools]") {
  auto& t = trained();
  test::write_file(t.ws.file("plot.src"), "red cat blue\ngreen sun\n");
  const std::string dump = kAttention + " -c " + t.save + " -i " + t.ws.file("plot.src");
  const std::string plot = std::string("/usr/bin/python3 ") + AIAYN_SOURCE_DIR + "/tools/plot_attention.py ";
  struct Case {
    std::string dump_flags, plot_flags;
  };
  const std::vector<Case> cases = {
      {"", ""},
      {"", "--kind encoder_attention --layer 1"},
      {"", "--kind decoder_attention --heads 0,3 --index 1"},
      {"--kinds cross --layers 1 --heads 1,2", "--layer 1 --heads 2"},
      {"--average-heads", "--kind encoder_attention"},
      {"--average-heads --layers 0", "--kind cross_attention --layer 0"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("dump " << cases[i].dump_flags << " / plot " << cases[i].plot_flags);
    const auto jsonl = t.ws.file("plot" + std::to_string(i) + ".jsonl");
    const auto png = t.ws.file("plot" + std::to_string(i) + ".png");
    auto made = test::run(dump + " " + cases[i].dump_flags + " -o " + jsonl);
    REQUIRE(made.exit_code == 0);
    auto r = test::run(plot + jsonl + " " + png + " " + cases[i].plot_flags);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    const auto bytes = test::read_file(png);
    CHECK(bytes.size() > 1000);
    CHECK(bytes.substr(0, 8) == "\x89PNG\r\n\x1a\n");
  }
  // A selection the dump does not hold says which it has.
  auto r = test::run(plot + t.ws.file("plot3.jsonl") + " " + t.ws.file("x.png") + " --layer 0");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("--layer 0 is not in this dump (it has layer [1])"));
  r = test::run(plot + t.ws.file("plot3.jsonl") + " " + t.ws.file("x.png") + " --kind encoder_attention");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("has no encoder_attention"));
}

TEST_CASE("a masked head contributes zero, its weights are zero, and masking none changes nothing",
          "[attention-tool][ablation]") {
  auto m = trained_model();
  torch::NoGradGuard no_grad;
  auto src =
      torch::tensor(std::vector<int64_t>{5, 9, 7, 11, kEosId, 6, 8, kEosId, kPadId, kPadId}).view({2, 5});
  auto tgt = torch::tensor(std::vector<int64_t>{kBosId, 8, 9, kBosId, 5, 6}).view({2, 3});
  auto run = [&](AttentionMaps* maps) {
    auto padding = padding_mask(src, kPadId);
    return m->decode(tgt, m->encode(src, padding, maps), padding, {}, nullptr, maps);  // [2, 3, d_model]
  };
  const auto before = run(nullptr);
  m->mask_heads({});
  CHECK(torch::equal(run(nullptr), before));

  const int64_t dv = m->config().d_v;
  for (auto kind : {AttentionKind::encoder, AttentionKind::decoder, AttentionKind::cross}) {
    const HeadRef head{kind, 0, 1};
    m->mask_heads({head});
    AttentionMaps maps;
    const auto masked = run(&maps);
    const auto& w = kind == AttentionKind::encoder   ? maps.encoder
                    : kind == AttentionKind::decoder ? maps.decoder
                                                     : maps.cross;
    CHECK(w[0].select(1, 1).abs().max().item<float>() == 0.0f);  // the masked head's weights
    CHECK(w[0].select(1, 0).abs().max().item<float>() > 0.0f);   // the others' are kept
    m->mask_heads({});
    // The same as removing the head from W^O: its d_v columns set to zero.
    auto& attn = m->attention(kind, 0);
    auto saved = attn.out_proj->weight.clone();
    attn.out_proj->weight.narrow(1, dv, dv).zero_();
    const auto without = run(nullptr);
    attn.out_proj->weight.copy_(saved);
    CHECK(test::max_abs_diff(masked, without) < 1e-5);
    CHECK(test::max_abs_diff(masked, before) > 1e-4);  // and it did matter
  }
  CHECK(torch::equal(run(nullptr), before));
}

TEST_CASE("masking heads with --mask-heads: zero in the dump, nothing when empty, and errors naming the item",
          "[attention-tool][ablation][bad-input]") {
  auto& t = trained();
  test::write_file(t.ws.file("src.txt"), "red cat sun\n");
  const std::string base = kAttention + " -c " + t.save + " -i " + t.ws.file("src.txt");
  auto plain = test::run(base);
  REQUIRE(plain.exit_code == 0);
  auto masked = test::run(base + " --mask-heads enc:0:0,cross:1:1");
  INFO(masked.err);
  REQUIRE(masked.exit_code == 0);
  auto dump = read_dump(masked.out)[0];
  auto all_zero = [](const nlohmann::json& map) {
    for (const auto& row : map)
      for (const auto& w : row)
        if (w.get<double>() != 0.0) return false;
    return true;
  };
  CHECK(all_zero(dump["encoder_attention"][0][0]));
  CHECK_FALSE(all_zero(dump["encoder_attention"][0][1]));
  CHECK(all_zero(dump["cross_attention"][1][1]));
  CHECK_FALSE(all_zero(read_dump(plain.out)[0]["encoder_attention"][0][0]));

  const std::string translate = std::string(AIAYN_BIN_DIR) + "/aiayn-translate -c " + t.save + " -i " +
                                t.ws.file("src.txt") + " --scores";
  auto a = test::run(translate), b = test::run(translate + " --mask-heads ''");
  REQUIRE(b.exit_code == 0);
  CHECK(a.out == b.out);
  for (const auto& [spec, message] :
       std::vector<std::pair<std::string, std::string>>{{"enc:9:0", "\"enc:9:0\": the layer must be 0..1"},
                                                        {"enc:0:7", "\"enc:0:7\": the head must be 0..3"},
                                                        {"self:0:0", "the kind must be enc, dec or cross"},
                                                        {"enc:0", "expected KIND:LAYER:HEAD"}}) {
    for (const auto& tool : {base, translate}) {
      auto r = test::run(tool + " --mask-heads " + spec);
      INFO(tool << " --mask-heads " << spec << "\n" << r.err);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.err, Catch::Contains("--mask-heads " + spec) && Catch::Contains(message));
      CHECK(test::count_lines(r.err) == 1);
    }
  }
}

TEST_CASE("head_importance.sh measures every head masked alone and draws its statistics",
          "[attention-tool][ablation][tools]") {
  auto& t = trained();
  test::write_file(t.ws.file("hi.src"), "red cat sun\nblue dog moon\ngreen tree\nsea sky hill\n");
  test::write_file(t.ws.file("hi.ref"), "sun cat red\nmoon dog blue\ntree green\nhill sky sea\n");
  const auto out = t.ws.file("heads");
  auto r = test::run("AIAYN_BIN=" + std::string(AIAYN_BIN_DIR) + " bash " + std::string(AIAYN_SOURCE_DIR) +
                     "/scripts/head_importance.sh " + t.save + " " + t.ws.file("hi.src") + " " +
                     t.ws.file("hi.ref") + " " + out + " 3");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::istringstream table(test::read_file(out + "/heads.tsv"));
  std::string line;
  std::getline(table, line);
  CHECK(line == "kind\tlayer\thead\tbleu\tdelta\tconfidence\tentropy\tprev\tsame\tnext");
  int rows = 0;
  while (std::getline(table, line)) {
    ++rows;
    std::istringstream cells(line);
    std::string kind, layer, head;
    double bleu = 0, delta = 0, confidence = 0, entropy = 0;
    cells >> kind >> layer >> head >> bleu >> delta >> confidence >> entropy;
    INFO(line);
    CHECK(bleu >= 0);
    CHECK(bleu <= 100);
    CHECK(confidence > 0);
    CHECK(confidence <= 1.0001);
    CHECK(entropy >= 0);
    if (kind != "cross") {
      double prev = 0, same = 0, next = 0;
      cells >> prev >> same >> next;
      CHECK(prev + same + next <= 1.0001);
    }
  }
  CHECK(rows == 3 * 2 * 4);  // every head of the 2+2-layer, 4-head model, three kinds
  const auto png = test::read_file(out + "/heads.png");
  CHECK(png.substr(0, 8) == "\x89PNG\r\n\x1a\n");
  CHECK_THAT(test::read_file(out + "/heads.md"), Catch::Contains("Unmasked validation BLEU"));
}

TEST_CASE("alignments beside translations and in the dump, and the AER of every head",
          "[attention-tool][alignment]") {
  auto& t = trained();
  test::write_file(t.ws.file("al.src"), "red cat sun\nblue dog\n");
  // The reversal corpus's gold: source word i is target word n-1-i.
  test::write_file(t.ws.file("al.gold"), "0-2 1-1 2-0\n0-1 1-0\n");
  const std::string translate = std::string(AIAYN_BIN_DIR) + "/aiayn-translate -c " + t.save + " -i " +
                                t.ws.file("al.src") + " --greedy";
  auto plain = test::run(translate);
  auto aligned = test::run(translate + " --alignment");
  INFO(aligned.err);
  REQUIRE(aligned.exit_code == 0);
  std::istringstream a(aligned.out), p(plain.out);
  std::string line, text;
  while (std::getline(a, line) && std::getline(p, text)) {
    const auto cut = line.find(" ||| ");
    REQUIRE(cut != std::string::npos);
    CHECK(line.substr(0, cut) == text);  // the translation, then its links
    std::istringstream links(line.substr(cut + 5));
    for (std::string link; links >> link;) CHECK(std::regex_match(link, std::regex(R"(\d+-\d+)")));
  }
  test::write_file(t.ws.file("al.tgt"), "sun cat red\ndog blue\n");
  auto dumped = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("al.src") + " -t " +
                          t.ws.file("al.tgt") + " --gold-alignment " + t.ws.file("al.gold"));
  INFO(dumped.err);
  REQUIRE(dumped.exit_code == 0);
  for (const auto& entry : read_dump(dumped.out)) CHECK(entry["alignment"].is_string());
  CHECK_THAT(dumped.err, Catch::Contains("AER of encoder-decoder attention") && Catch::Contains("layer 0:") &&
                             Catch::Contains("layer 1:"));
  auto bad = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("al.src") + " --alignment-layer 5");
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--alignment-layer 5: the decoder has 2 layers"));
  // Gold links refer to a reference, so the reference must be given.
  bad = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("al.src") + " --gold-alignment " +
                  t.ws.file("al.gold") + " -o " + t.ws.file("never.jsonl"));
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("al.gold: needs --target"));
  // A link past the sentence's words would only raise the AER: refused, naming the line.
  test::write_file(t.ws.file("far.gold"), "0-2 1-1 2-0\n0-1 7-0\n");
  bad = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("al.src") + " -t " + t.ws.file("al.tgt") +
                  " --gold-alignment " + t.ws.file("far.gold") + " -o " + t.ws.file("never.jsonl"));
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("far.gold:2: link 7-0 lies outside the pair"));
  CHECK_FALSE(fs::exists(t.ws.file("never.jsonl")));
  test::write_file(t.ws.file("bad.gold"), "0-2 x\n0-1\n");
  bad = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("al.src") + " -t " + t.ws.file("al.tgt") +
                  " --gold-alignment " + t.ws.file("bad.gold") + " -o " + t.ws.file("never.jsonl"));
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("bad.gold:1") && Catch::Contains("\"x\" is not a link"));
  CHECK_FALSE(fs::exists(t.ws.file("never.jsonl")));
}

TEST_CASE("python/aiayn_torch.py loads a checkpoint into torch.nn with the same outputs and maps",
          "[attention-tool][python]") {
  auto& t = trained();
  test::write_file(t.ws.file("py.src"), "red cat sun\nblue dog moon tree\ngreen\n");
  auto greedy = test::run(std::string(AIAYN_BIN_DIR) + "/aiayn-translate -c " + t.save + " -i " +
                          t.ws.file("py.src") + " --greedy -o " + t.ws.file("py.out"));
  REQUIRE(greedy.exit_code == 0);
  auto dump = test::run(kAttention + " -c " + t.save + " -i " + t.ws.file("py.src") + " --decimals 7 -o " +
                        t.ws.file("py.jsonl"));
  REQUIRE(dump.exit_code == 0);
  auto r = test::run(std::string("/usr/bin/python3 ") + AIAYN_SOURCE_DIR +
                     "/tests/reference/aiayn_torch_check.py " + t.save + " " + t.ws.file("py.src") + " " +
                     t.ws.file("py.out") + " " + t.ws.file("py.jsonl"));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ok: 3 sentences"));
}
