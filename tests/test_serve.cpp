// aiayn-translate --serve through loopback: every endpoint, every error
// with its field or limit named, outputs equal to the file translator's
// under concurrent clients, and a SIGTERM that loses no request in flight.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/serve_process.h"
#include "tests/test_util.h"
#include "tests/train_fixture.h"

using namespace aiayn;
using test::trained;
using Server = test::ServerProcess;

namespace {

const std::string kTranslate = std::string(AIAYN_BIN_DIR) + "/aiayn-translate";

nlohmann::json post(httplib::Client& client, const nlohmann::json& body, int* status) {
  return test::post_json(client, "/v1/translate", body, status);
}

std::pair<int, std::string> refused(httplib::Client& client, const std::string& body) {
  return test::refused(client, "/v1/translate", body);
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

using test::lines_of;

}  // namespace

TEST_CASE("the translation server answers every endpoint and names the field or limit of every error",
          "[serve]") {
  test::TempDir dir;
  Server server(kTranslate, trained().save,
                "--serve-max-sentences 4 --serve-max-tokens 30 --serve-max-body 2000 --serve-queue 3", dir);
  auto client = server.client();

  auto health = client.Get("/v1/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto h = nlohmann::json::parse(health->body);
  CHECK(h["status"] == "ok");
  CHECK(h.contains("libtorch"));
  CHECK(h.contains("blas"));
  CHECK(h["queue_sentences"] == 0);

  int status = 0;
  auto ok = post(client, {{"text", {"red cat sun", ""}}, {"beam", 1}, {"scores", true}}, &status);
  CHECK(status == 200);
  REQUIRE(ok["translations"].size() == 2);
  CHECK(!ok["translations"][0]["text"].get<std::string>().empty());
  CHECK(ok["translations"][0].contains("score"));
  CHECK(ok["translations"][1]["text"] == "");
  auto nbest = post(client, {{"text", {"red cat"}}, {"beam", 4}, {"nbest", 2}, {"alignment", true}}, &status);
  CHECK(status == 200);
  CHECK(nbest["translations"][0]["nbest"].size() == 2);
  CHECK(nbest["translations"][0].contains("alignment"));
  auto prefixed = post(client, {{"text", {"red cat"}}, {"prefix", {"cat"}}, {"beam", 1}}, &status);
  CHECK(status == 200);
  CHECK(prefixed["translations"][0]["text"].get<std::string>().rfind("cat", 0) == 0);

  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"{not json", 400, "not JSON"},
      {"[1, 2]", 400, "JSON object"},
      {"{}", 400, "missing field \"text\""},
      {R"({"text": "red cat"})", 400, "field \"text\": expected a list"},
      {R"({"text": ["red", 3]})", 400, "field \"text\"[1]"},
      {R"({"text": ["red"], "beams": 4})", 400, "unknown field \"beams\""},
      {R"({"text": ["red"], "beam": 0})", 400, "field \"beam\""},
      {R"({"text": ["red"], "beam": 2, "nbest": 3})", 400, "field \"nbest\""},
      {R"({"text": ["red"], "alpha": "high"})", 400, "field \"alpha\""},
      {R"({"text": ["red"], "scores": 1})", 400, "field \"scores\""},
      {R"({"text": ["red", "cat"], "prefix": ["x"]})", 400, "field \"prefix\""},
      {R"({"text": ["red cat"], "prefix": [")" + repeat("cat ", 100) + R"("]})", 400,
       "longer than an output of this sentence may be"},
      {R"({"text": ["a", "b", "c", "d", "e"]})", 413, "--serve-max-sentences"},
      {R"({"text": [")" + repeat("red ", 100) + R"("]})", 400, "--serve-max-tokens"},
      {R"({"text": [")" + std::string(3000, ' ') + R"("]})", 413, "--serve-max-body"},
      {R"({"text": ["red", "cat", "sun", "sky"]})", 503, "--serve-queue"},
  };
  for (const auto& [body, code, named] : cases) {
    INFO(body.substr(0, 80));
    auto [got, message] = refused(client, body);
    CHECK(got == code);
    CHECK_THAT(message, Catch::Contains(named));
  }
  auto full = client.Post("/v1/translate", R"({"text": ["red", "cat", "sun", "sky"]})", "application/json");
  REQUIRE(full);
  CHECK(full->get_header_value("Retry-After") == "1");
  auto missing = client.Get("/v1/nothing");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK_THAT(missing->body, Catch::Contains("no such endpoint"));
  CHECK(server.terminate() == 0);
}

TEST_CASE("served translations equal aiayn-translate's for the same lines under concurrent clients",
          "[serve]") {
  auto& t = trained();
  const auto all = lines_of(test::read_file(t.ws.file("train.src")));
  const std::vector<std::string> input(all.begin(), all.begin() + std::min<std::ptrdiff_t>(48, all.size()));
  test::TempDir dir;
  std::string text;
  for (const auto& l : input) text += l + "\n";
  test::write_file(dir.file("in.txt"), text);
  for (const int beam : {1, 4}) {
    INFO("beam " << beam);
    auto expected = test::run(kTranslate + " -c " + t.save + " --threads 1 --beam " + std::to_string(beam) +
                              " -i " + dir.file("in.txt"));
    REQUIRE(expected.exit_code == 0);
    const auto want = lines_of(expected.out);
    REQUIRE(want.size() == input.size());
    // A long wait makes the concurrent requests share decoding calls.
    Server server(kTranslate, trained().save, "--serve-batch-wait 100000", dir);
    std::vector<std::string> got(input.size());
    std::atomic<size_t> next{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&] {
        auto client = server.client();
        for (size_t i = next++; i < input.size(); i = next++) {
          int status = 0;
          try {
            auto answer = post(client, {{"text", {input[i]}}, {"beam", beam}}, &status);
            if (status != 200 || answer["translations"].size() != 1) ++failures;
            got[i] = answer["translations"][0]["text"];
          } catch (const std::exception&) {
            ++failures;
          }
        }
      });
    }
    for (auto& c : clients) c.join();
    CHECK(failures == 0);
    for (size_t i = 0; i < input.size(); ++i) {
      INFO("line " << i + 1 << ": " << input[i]);
      CHECK(got[i] == want[i]);
    }
    auto health_client = server.client();
    auto health_answer = health_client.Get("/v1/health");
    REQUIRE(health_answer);
    auto health = nlohmann::json::parse(health_answer->body);
    INFO(health.dump());
    CHECK(health["sentences"] == static_cast<int64_t>(input.size()));
    CHECK(health["decoding_calls"].get<int64_t>() < static_cast<int64_t>(input.size()));
    // Past the model's positions (128) but within --serve-max-tokens (256):
    // refused, not truncated.
    auto [code, message] = refused(health_client, R"({"text": [")" + repeat("red ", 200) + R"("]})");
    CHECK(code == 400);
    CHECK_THAT(message, Catch::Contains("over the limit of 127 per sentence (the model's positions)"));
    CHECK(server.terminate() == 0);
  }
}

TEST_CASE("SIGTERM stops the server after answering every request in flight", "[serve]") {
  test::TempDir dir;
  // Requests wait half a second for company: the signal comes while they wait.
  Server server(kTranslate, trained().save, "--serve-batch-wait 500000", dir);
  std::vector<int> statuses(6, 0);
  std::vector<std::string> texts(6);
  std::vector<std::thread> clients;
  for (size_t c = 0; c < statuses.size(); ++c) {
    clients.emplace_back([&, c] {
      auto client = server.client();
      try {
        auto answer = post(client, {{"text", {"red cat sun"}}, {"beam", 1}}, &statuses[c]);
        texts[c] = answer["translations"][0]["text"];
      } catch (const std::exception& e) {
        texts[c] = e.what();
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int code = server.terminate();
  for (auto& c : clients) c.join();
  INFO(server.log());
  CHECK(code == 0);
  for (size_t c = 0; c < statuses.size(); ++c) {
    INFO("client " << c << ": " << texts[c]);
    CHECK(statuses[c] == 200);
    CHECK(!texts[c].empty());
    CHECK(texts[c] == texts[0]);
  }
  CHECK_THAT(server.log(), Catch::Contains("after finishing the requests in flight"));
}

TEST_CASE("aiayn-translate --serve refuses what it cannot serve with exit code 2", "[serve]") {
  auto& t = trained();
  const std::string base = kTranslate + " -c " + t.save + " --threads 1 ";
  for (const auto& [options, named] : std::vector<std::pair<std::string, std::string>>{
           {"--serve 127.0.0.1:99999", "--serve \"127.0.0.1:99999\""},
           {"--serve localhost:http", "--serve \"localhost:http\""},
           {"--serve 127.0.0.1:0 -i " + t.ws.file("train.src"), "--input: not with --serve"},
           {"--serve-batch-wait 10 -i " + t.ws.file("train.src"), "--serve-batch-wait: only with --serve"},
           {"--serve 192.0.2.1:8080", "cannot listen there"}}) {
    INFO(options);
    auto r = test::run(base + options);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(named));
  }
}
