// SPDX-License-Identifier: MPL-2.0
// core::script on the real server: the text-rewriting sample over POST /api/v1/process and
// `skit run`; fetch() to a loopback test HTTP server allowed by script.global_fetch_allowlist,
// and refused off the list; a secret-backed header that reaches the test server while its
// value appears in no log; a memory hog killed while the server keeps answering /healthz.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "http_client.hpp"
#include "loopback_http_server.hpp"
#include "skit_server.hpp"

namespace skit::testing {
namespace {

const std::string kSecretValue = "sk-test-7f3a9c1e55d04b2b";

/// Answers "echo:<body>|auth=<present>" to every request.
LoopbackHttpServer::Response echo(const LoopbackHttpServer::Request& req) {
  return LoopbackHttpServer::ok(
      req, "echo:" + req.body() + "|auth=" +
               (req[boost::beast::http::field::authorization].empty() ? "none" : "present"),
      "text/plain");
}

std::string config_for(int fetch_port) {
  const std::string port = std::to_string(fetch_port);
  return "server:\n  grpc_listen: \"\"\n"
         "script:\n"
         "  global_fetch_allowlist:\n"
         "    - url: \"http://127.0.0.1:" + port + "/allowed/*\"\n"
         "      methods: [GET, POST]\n"
         "  secrets:\n"
         "    test_api:\n"
         "      env: SKIT_TEST_API_TOKEN\n"
         "      type: token\n"
         "      allowed_fetch_urls: [\"http://127.0.0.1:" + port + "/allowed/*\"]\n";
}

std::string yaml_block(const std::string& script) {
  std::string out;
  std::istringstream lines(script);
  std::string line;
  while (std::getline(lines, line)) {
    out += "        " + line + "\n";
  }
  return out;
}

/// http_input -> text_chunker (sentences) -> core::script -> NDJSON.
std::string text_pipeline(const std::string& script, const std::string& extra_params = "") {
  return "mode: oneshot\nsteps:\n"
         "  - kind: streamkit::http_input\n"
         "  - kind: core::text_chunker\n    params: {split_mode: sentences, min_length: 1}\n"
         "  - kind: core::script\n    params:\n" + extra_params +
         "      script: |\n" + yaml_block(script) +
         "  - kind: core::json_serialize\n    params: {newline_delimited: true}\n"
         "  - kind: streamkit::http_output\n";
}

std::vector<std::string> ndjson_strings(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty()) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      out.push_back(j.is_string() ? j.get<std::string>() : line);
    }
  }
  return out;
}

class ScriptE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<SkitServer>(
        config_for(fetch_.port()),
        ServerOptions{.env = {"SKIT_TEST_API_TOKEN=" + kSecretValue}});
    ASSERT_TRUE(server_->up()) << server_->log();
  }

  Response process(const std::string& pipeline, const std::string& text) {
    const std::string cfg = dir_.file("pipeline-" + std::to_string(n_) + ".yml");
    const std::string media = dir_.file("media-" + std::to_string(n_++) + ".txt");
    write_file(cfg, pipeline);
    write_file(media, text);
    return curl(dir_, {"-F", "config=@" + cfg, "-F", "media=@" + media,
                       server_->url("/api/v1/process")});
  }

  TempDir dir_;
  LoopbackHttpServer fetch_{echo};
  std::unique_ptr<SkitServer> server_;
  int n_ = 0;
};

TEST_F(ScriptE2e, TheHeadlineSampleRewritesTextOverHttpAndSkitRun) {
  const std::string sample = (kRepo / "samples/pipelines/oneshot/script_headline.yml").string();
  const std::string input = "first things first. then the second! and a third?";
  const std::vector<std::string> expected = {"1. FIRST THINGS FIRST.", "2. THEN THE SECOND!",
                                             "3. AND A THIRD?"};
  const std::string media = dir_.file("notes.txt");
  write_file(media, input);
  const Response r = curl(dir_, {"-F", "config=@" + sample, "-F", "media=@" + media,
                                 server_->url("/api/v1/process")});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(ndjson_strings(r.body), expected) << r.body;

  const std::string out = dir_.file("out.ndjson");
  const RunResult run = run_skit({"run", sample, "--input", media, "--output", out});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(ndjson_strings(read_file(out)), expected);
}

TEST_F(ScriptE2e, AsyncFetchToAnAllowedServerCarriesTheSecretHeaderThatNoLogShows) {
  const std::string port = std::to_string(fetch_.port());
  const std::string script =
      "async function process(packet) {\n"
      "  const body = await fetch(\"http://127.0.0.1:" + port + "/allowed/echo\",\n"
      "      { method: \"POST\", headers: { \"Content-Type\": \"text/plain\" }, body: packet.data });\n"
      "  console.warn(\"fetched\", body);\n"
      "  return { type: \"Text\", data: body };\n"
      "}\n";
  const Response r = process(
      text_pipeline(script, "      timeout_ms: 5000\n"
                            "      headers:\n"
                            "        - {secret: test_api, header: Authorization, template: \"Bearer {}\"}\n"),
      "hello. world.");
  ASSERT_EQ(r.status, 200) << r.describe() << server_->log();
  EXPECT_EQ(ndjson_strings(r.body),
            (std::vector<std::string>{"echo:hello.|auth=present", "echo:world.|auth=present"}));
  const auto requests = fetch_.requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/allowed/echo");
  EXPECT_EQ(requests[0].authorization, "Bearer " + kSecretValue);
  EXPECT_EQ(requests[0].body, "hello.");
  const std::string log = server_->log();
  EXPECT_NE(log.find("fetched echo:hello."), std::string::npos) << "console.warn reaches the log:\n" << log;
  EXPECT_EQ(log.find(kSecretValue), std::string::npos) << "the secret value is in the log";
  EXPECT_EQ(r.body.find(kSecretValue), std::string::npos);
}

TEST_F(ScriptE2e, FetchOffTheListIsRefusedAndTheServerIsNeverCalled) {
  const std::string port = std::to_string(fetch_.port());
  const std::string script =
      "function process(packet) {\n"
      "  if (packet.data.startsWith(\"catch\")) {\n"
      "    try { fetch(\"http://127.0.0.1:" + port + "/denied/x\"); }\n"
      "    catch (e) { return { type: \"Text\", data: \"refused: \" + e.message }; }\n"
      "  }\n"
      "  if (packet.data.startsWith(\"delete\")) fetch(\"http://127.0.0.1:" + port + "/allowed/x\", { method: \"DELETE\" });\n"
      "  fetch(\"http://127.0.0.1:" + port + "/denied/y\");\n"
      "  return { type: \"Text\", data: \"unreachable\" };\n"
      "}\n";
  const Response r = process(text_pipeline(script, "      timeout_ms: 5000\n"),
                             "catch it. delete it. plain.");
  ASSERT_EQ(r.status, 200) << r.describe();
  const auto out = ndjson_strings(r.body);
  ASSERT_EQ(out.size(), 3U) << r.body;
  EXPECT_NE(out[0].find("refused: fetch refused: http://127.0.0.1:" + port +
                        "/denied/x is not on script.global_fetch_allowlist"),
            std::string::npos) << out[0];
  EXPECT_EQ(out[1], "delete it.") << "an uncaught refusal passes the packet on unchanged";
  EXPECT_EQ(out[2], "plain.");
  EXPECT_TRUE(fetch_.requests().empty());
  const std::string log = server_->log();
  EXPECT_NE(log.find("method DELETE is not allowed"), std::string::npos) << log;
}

TEST_F(ScriptE2e, TimeoutsAndAMemoryHogPassPacketsOnWhileTheServerAnswers) {
  const std::string script =
      "const keep = [];\n"
      "function process(packet) {\n"
      "  if (packet.data.startsWith(\"slow\")) { for (;;) {} }\n"
      "  if (packet.data.startsWith(\"hog\")) { for (;;) keep.push(new Uint8Array(8 << 20).fill(1)); }\n"
      "  return { type: \"Text\", data: \"ok \" + packet.data };\n"
      "}\n";
  std::atomic<bool> done{false};
  int healthz_ok = 0, healthz_bad = 0;
  std::thread probe([&] {
    while (!done) {
      const Response h = http_call(server_->port(), http::verb::get, "/healthz", "");
      (h.status == 200 ? healthz_ok : healthz_bad)++;
      std::this_thread::sleep_for(20ms);
    }
  });
  const Response r = process(text_pipeline(script, "      timeout_ms: 1500\n      memory_limit_mb: 16\n"),
                             "a. slow one. b. hog time. c.");
  done = true;
  probe.join();
  ASSERT_EQ(r.status, 200) << r.describe() << server_->log();
  EXPECT_EQ(ndjson_strings(r.body),
            (std::vector<std::string>{"ok a.", "slow one.", "ok b.", "hog time.", "c."}));
  EXPECT_GT(healthz_ok, 0);
  EXPECT_EQ(healthz_bad, 0);
  const std::string log = server_->log();
  EXPECT_NE(log.find("script timeout"), std::string::npos) << log;
  EXPECT_NE(log.find("resident memory reached"), std::string::npos) << log;
  EXPECT_EQ(http_call(server_->port(), http::verb::get, "/healthz", "").status, 200);
}

TEST_F(ScriptE2e, ABadScriptIsRefusedNamingTheNode) {
  Response r = process(text_pipeline("function process(p) { return p; "), "x.");
  EXPECT_GE(r.status, 400) << r.describe();
  EXPECT_NE(r.body.find("syntax error"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("step_2"), std::string::npos) << r.body;  // the script step
  r = process(text_pipeline("   "), "x.");
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_NE(r.body.find("script"), std::string::npos) << r.body;
  EXPECT_EQ(http_call(server_->port(), http::verb::get, "/healthz", "").status, 200);
}

}  // namespace
}  // namespace skit::testing
