// aiayn-attention --serve through loopback: /v1/attention answers with the
// entry aiayn-attention writes for the same line and options, errors name
// the field or limit, and the explorer works in a real browser (headless
// Chromium driven by Selenium: tests/browser/explorer_check.py).
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "tests/serve_process.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"

using namespace aiayn;
using test::trained;

namespace {

const std::string kAttention = std::string(AIAYN_BIN_DIR) + "/aiayn-attention";

// The first entry aiayn-attention writes for `source` with these options.
nlohmann::json dumped(const std::string& source, const std::string& options, const test::TempDir& dir) {
  test::write_file(dir.file("line.txt"), source + "\n");
  auto r = test::run(kAttention + " -c " + trained().save + " --threads 1 -i " + dir.file("line.txt") + " " +
                     options);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(test::lines_of(r.out).at(0));
}

}  // namespace

TEST_CASE("the attention server answers with aiayn-attention's dump entry for the same options",
          "[serve][attention-tool]") {
  test::TempDir dir;
  test::ServerProcess server(kAttention, trained().save, "", dir);
  auto client = server.client();
  auto health = client.Get("/v1/health");
  REQUIRE(health);
  auto h = nlohmann::json::parse(health->body);
  CHECK(h["status"] == "ok");
  CHECK(h["encoder_layers"] == 2);
  CHECK(h["heads"] == 4);
  auto page = client.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK_THAT(page->get_header_value("Content-Type"), Catch::Contains("text/html"));
  CHECK_THAT(page->body, Catch::Contains("const LIVE = true;"));
  // Self-contained: nothing loaded from elsewhere.
  CHECK_THAT(page->body, !Catch::Contains("src=\"http") && !Catch::Contains("href=\"http"));

  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"text", "red cat sun hill"}}, ""},
      {{{"text", "red cat sun hill"}, {"beam", 4}}, "--beam 4"},
      {{{"text", "red cat sun hill"}, {"mask_heads", "enc:0:1,cross:1:3"}}, "--mask-heads enc:0:1,cross:1:3"},
      {{{"text", "blue dog"},
        {"kinds", {"cross"}},
        {"layers", {1}},
        {"heads", {0, 2}},
        {"average_heads", true},
        {"decimals", 2}},
       "--kinds cross --layers 1 --heads 0,2 --average-heads --decimals 2"},
      {{{"text", "blue dog"}, {"alignment_layer", 0}, {"alignment_head", 3}},
       "--alignment-layer 0 --alignment-head 3"},
  };
  for (const auto& [body, options] : cases) {
    INFO(body.dump() << " vs aiayn-attention " << options);
    int status = 0;
    auto served = test::post_json(client, "/v1/attention", body, &status);
    CHECK(status == 200);
    CHECK(served == dumped(body["text"], options, dir));
  }
  // A forced target, as --target.
  test::write_file(dir.file("target.txt"), "sun cat red\n");
  int status = 0;
  auto forced =
      test::post_json(client, "/v1/attention", {{"text", "red cat sun"}, {"target", "sun cat red"}}, &status);
  CHECK(status == 200);
  CHECK(forced == dumped("red cat sun", "-t " + dir.file("target.txt"), dir));
  // A masked head's weights are zero, and the next request without a mask has them again.
  auto masked =
      test::post_json(client, "/v1/attention", {{"text", "red cat"}, {"mask_heads", "enc:1:2"}}, &status);
  for (const auto& row : masked["encoder_attention"][1][2]) {
    for (const auto& w : row) CHECK(w.get<double>() == 0.0);
  }
  auto unmasked = test::post_json(client, "/v1/attention", {{"text", "red cat"}}, &status);
  CHECK(unmasked["encoder_attention"][1][2] != masked["encoder_attention"][1][2]);
  CHECK(server.terminate() == 0);
}

TEST_CASE("the attention server names the field or limit of every error", "[serve][attention-tool]") {
  test::TempDir dir;
  test::ServerProcess server(kAttention, trained().save,
                             "--serve-max-tokens 12 --serve-max-body 1000 --serve-queue 4", dir);
  auto client = server.client();
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"{not json", 400, "not JSON"},
      {"[]", 400, "JSON object"},
      {"{}", 400, "missing field \"text\""},
      {R"({"text": ["red"]})", 400, "field \"text\": expected a string"},
      {R"({"text": "red", "colour": 1})", 400, "unknown field \"colour\""},
      {R"({"text": "red", "beam": 0})", 400, "field \"beam\""},
      {R"({"text": "red", "layers": [2]})", 400, "field \"layers\"[0]: expected an integer in [0, 1]"},
      {R"({"text": "red", "heads": [0, 4]})", 400, "field \"heads\"[1]"},
      {R"({"text": "red", "kinds": ["values"]})", 400, "field \"kinds\": unknown kind \"values\""},
      {R"({"text": "red", "kinds": []})", 400, "field \"kinds\": choose at least one"},
      {R"({"text": "red", "mask_heads": "enc:5:0"})", 400, "field \"mask_heads\""},
      {R"({"text": "red", "alignment_layer": 2})", 400, "field \"alignment_layer\""},
      {R"({"text": "red", "alignment_head": -2})", 400, "field \"alignment_head\""},
      {R"({"text": "red", "decimals": 9})", 400, "field \"decimals\""},
      {R"({"text": "red cat sun hill red cat sun hill red cat sun hill red"})", 400, "--serve-max-tokens"},
      {R"({"text": "red", "target": "sun cat red sun cat red sun cat red sun cat red sun"})", 400,
       "field \"target\""},
      {R"({"text": ")" + std::string(1200, ' ') + R"("})", 413, "--serve-max-body"},
  };
  for (const auto& [body, code, named] : cases) {
    INFO(body.substr(0, 80));
    auto [got, message] = test::refused(client, "/v1/attention", body);
    CHECK(got == code);
    CHECK_THAT(message, Catch::Contains(named));
  }
  auto missing = client.Get("/v1/translate");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(server.terminate() == 0);
}

TEST_CASE("SIGTERM stops the explorer after answering every request waiting for the model",
          "[serve][attention-tool]") {
  test::TempDir dir;
  test::ServerProcess server(kAttention, trained().save, "", dir);
  // Long sentences at beam 64 keep the model busy while the others wait for it.
  std::string sentence;
  for (int i = 0; i < 20; ++i) sentence += std::string(i ? " " : "") + (i % 2 ? "red cat" : "sun hill");
  const nlohmann::json body = {{"text", sentence}, {"beam", 64}};
  std::vector<int> statuses(6, 0);
  std::vector<nlohmann::json> answers(6);
  std::vector<std::thread> clients;
  for (size_t c = 0; c < statuses.size(); ++c) {
    clients.emplace_back([&, c] {
      auto client = server.client();
      try {
        answers[c] = test::post_json(client, "/v1/attention", body, &statuses[c]);
      } catch (const std::exception& e) {
        answers[c] = e.what();
      }
    });
  }
  // The signal comes once every request has been received: one with the
  // model, five waiting for it (a request not yet received when the server
  // stops accepting is not in flight; it would be refused).
  auto watcher = server.client();
  int64_t waiting = 0;
  for (int i = 0; i < 2000 && waiting < 5; ++i) {
    auto h = watcher.Get("/v1/health");
    if (h) waiting = nlohmann::json::parse(h->body)["queue_requests"].get<int64_t>();
    if (waiting < 5) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const int code = server.terminate();
  for (auto& c : clients) c.join();
  INFO(server.log());
  if (waiting < 5) WARN("only " << waiting << " requests were seen waiting before the signal");
  CHECK(code == 0);
  for (size_t c = 0; c < statuses.size(); ++c) {
    INFO("client " << c);
    CHECK(statuses[c] == 200);
    CHECK(answers[c] == answers[0]);
  }
  CHECK(answers[0]["cross_attention"].size() == 2);
  CHECK_THAT(server.log(), Catch::Contains("after finishing the requests in flight"));
}

TEST_CASE("aiayn-attention --serve refuses what it cannot serve with exit code 2",
          "[serve][attention-tool]") {
  auto& t = trained();
  const std::string base = kAttention + " -c " + t.save + " --threads 1 ";
  for (const auto& [options, named] : std::vector<std::pair<std::string, std::string>>{
           {"--serve 127.0.0.1:70000", "--serve \"127.0.0.1:70000\""},
           {"--serve 127.0.0.1:0 --html x.html", "--html: not with --serve"},
           {"--serve 127.0.0.1:0 -t " + t.ws.file("train.tgt"), "--target: not with --serve"},
           {"--serve 127.0.0.1:0 --layers 5", "--layers 5"},
           {"--serve-queue 3 -i " + t.ws.file("train.src"), "--serve-queue: only with --serve"}}) {
    INFO(options);
    auto r = test::run(base + options);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(named));
  }
}

TEST_CASE("the explorer shows a typed sentence's translation heatmaps and head view in Chromium",
          "[serve][attention-tool][browser]") {
  if (system("command -v chromedriver > /dev/null 2>&1") != 0) {
    WARN("skipped: no chromedriver (Debian: chromium-driver)");
    return;
  }
  test::TempDir dir;
  test::ServerProcess server(kAttention, trained().save, "", dir);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  auto r =
      test::run("/usr/bin/python3 " + std::string(AIAYN_SOURCE_DIR) +
                "/tests/browser/explorer_check.py --url " + url + " --screenshot " + dir.file("shot.png"));
  INFO(r.out << r.err << server.log());
  if (r.exit_code == 3) {
    WARN(r.out);
    return;
  }
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ok   the head view draws lines"));
  CHECK_THAT(r.out, Catch::Contains("ok   masking enc:0:0 removes head 0's lines"));
  CHECK(std::filesystem::exists(dir.file("shot.png")));
  CHECK(server.terminate() == 0);
}
