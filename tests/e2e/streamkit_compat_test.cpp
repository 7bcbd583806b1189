// SPDX-License-Identifier: MPL-2.0
// StreamKit compatibility found by trying its files, on the real `skit serve`: an encoder
// connected straight to streamkit::http_output streams its raw frames; a dynamic session
// created from `nodes: {}` and built later; an unknown session is "not found" over HTTP (404),
// the WebSocket and gRPC (NOT_FOUND); audio::mixer's clocked mode keeps its cadence with one
// input missing.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cmath>

#include "session_clients.hpp"
#include "skit/v1/control.grpc.pb.h"

namespace skit::testing {
namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class StreamKitCompat : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<SkitServer>(session_config());
    ASSERT_TRUE(server_->up()) << "skit serve did not start:\n" << server_->log();
  }

  void TearDown() override {
    const pid_t pid = server_->pid();
    EXPECT_EQ(server_->stop(), 0) << "skit serve did not exit cleanly on SIGTERM";
    EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 5s));
    EXPECT_TRUE(shm_segments_of(pid).empty()) << "shared memory left behind";
    if (HasFailure()) {
      const std::string log = server_->log();
      std::printf("---- server log (last 8 KiB) ----\n%s\n",
                  log.substr(log.size() > 8192 ? log.size() - 8192 : 0).c_str());
    }
  }

  Response call(http::verb verb, const std::string& target, const json& body = nullptr) {
    return http_call(server_->http_port(), verb, target, kOperatorToken,
                     body.is_null() ? "" : body.dump());
  }

  std::unique_ptr<WsClient> ws() {
    WsClient::Options options;
    options.token = kOperatorToken;
    auto client = std::make_unique<WsClient>(server_->http_port(), options);
    EXPECT_TRUE(client->open()) << client->error();
    return client;
  }

  TempDir dir_;
  std::unique_ptr<SkitServer> server_;
};

TEST_F(StreamKitCompat, AnEncoderStraightIntoHttpOutputStreamsItsRawFrames) {
  auto run = [&](const std::string& name, const std::string& tail) {
    const std::string config = dir_.file(name);
    write_file(config,
               "mode: oneshot\n"
               "steps:\n"
               "  - kind: core::file_reader\n"
               "    params: {path: samples/audio/speech.ogg}\n"
               "  - kind: containers::ogg::demuxer\n"
               "  - kind: audio::opus::decoder\n"
               "  - kind: audio::opus::encoder\n"
               "    params: {bitrate: 64000}\n" + tail +
               "  - kind: streamkit::http_output\n");
    return curl(dir_, {"-H", "Authorization: Bearer " + kOperatorToken, "-F",
                       "config=@" + config, server_->url("/api/v1/process")});
  };
  const Response raw = run("raw.yml", "");
  ASSERT_EQ(raw.status, 200) << raw.describe();
  const Response ogg = run("ogg.yml", "  - kind: containers::ogg::muxer\n");
  ASSERT_EQ(ogg.status, 200) << ogg.describe();
  std::printf("encoder -> http_output: %zu bytes (%s); through an Ogg muxer: %zu bytes\n",
              raw.body.size(), raw.header("content-type").c_str(), ogg.body.size());
  // The encoder's frames without a container: no Ogg pages, no Opus header packets, and the
  // same payload as the Ogg file less its page and header overhead.
  EXPECT_NE(raw.body.substr(0, 4), "OggS");
  EXPECT_FALSE(contains(raw.body, "OpusHead"));
  EXPECT_EQ(ogg.body.substr(0, 4), "OggS");
  EXPECT_GT(raw.body.size(), 1000U);
  EXPECT_LT(raw.body.size(), ogg.body.size());
  EXPECT_GT(static_cast<double>(raw.body.size()), 0.9 * static_cast<double>(ogg.body.size()));
}

TEST_F(StreamKitCompat, ASessionFromAnEmptyNodesMapIsBuiltLater) {
  auto client = ws();
  const Response r = call(http::verb::post, "/api/v1/sessions",
                          {{"name", "empty"}, {"yaml", "name: empty\nmode: dynamic\nnodes: {}\n"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  const std::string sid = r.body_json().value("session_id", "");
  const json added = client->request({{"action", "addnode"},
                                      {"session_id", sid},
                                      {"node_id", "tone"},
                                      {"kind", "audio::tone"}});
  ASSERT_EQ(added.value("action", ""), "success") << added.dump();
  const Response p = call(http::verb::get, "/api/v1/sessions/empty/pipeline");
  ASSERT_EQ(p.status, 200) << p.describe();
  EXPECT_EQ(p.body_json()["nodes"]["tone"].value("kind", ""), "audio::tone") << p.body;

  // A oneshot pipeline still needs nodes.
  const Response oneshot = call(http::verb::post, "/api/v1/sessions",
                                {{"name", "empty-oneshot"}, {"yaml", "mode: oneshot\nnodes: {}\n"}});
  EXPECT_EQ(oneshot.status, 400) << oneshot.describe();
}

TEST_F(StreamKitCompat, AnUnknownSessionIsNotFoundEverywhere) {
  const Response r = call(http::verb::get, "/api/v1/sessions/nope/pipeline");
  EXPECT_EQ(r.status, 404) << r.describe();
  EXPECT_TRUE(contains(r.body, "not found")) << r.body;
  const Response d = call(http::verb::delete_, "/api/v1/sessions/nope");
  EXPECT_EQ(d.status, 404) << d.describe();
  EXPECT_TRUE(contains(d.body, "not found")) << d.body;

  auto client = ws();
  const json e = client->request({{"action", "getpipeline"}, {"session_id", "nope"}});
  EXPECT_EQ(e.value("action", ""), "error") << e.dump();
  EXPECT_TRUE(contains(e.value("message", ""), "not found")) << e.dump();

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Control::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + kOperatorToken);
  v1::GetSessionRequest req;
  req.set_session("nope");
  v1::GetSessionResponse resp;
  const grpc::Status s = stub->GetSession(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(contains(s.error_message(), "not found")) << s.error_message();
}

TEST_F(StreamKitCompat, AClockedMixerKeepsItsCadenceWithAnInputMissing) {
  auto client = ws();
  // in_0 plays a real-time tone, in_1 is declared and never connected: a timestamp-aligned
  // mixer would wait for it; a clocked one mixes silence for it at 50 frames a second.
  const std::string yaml =
      "mode: dynamic\n"
      "nodes:\n"
      "  tone: {kind: audio::tone, params: {frequency: 1000, amplitude: 0.25}}\n"
      "  mix:\n"
      "    kind: audio::mixer\n"
      "    params: {num_inputs: 2, clocked: {sample_rate: 48000, frame_samples_per_channel: 960}}\n"
      "    needs: tone\n"
      "  tap: {kind: core::telemetry_tap, params: {audio_sample_interval_ms: 500}, needs: mix}\n"
      "  sink: {kind: core::sink, needs: tap}\n";
  const Response r = call(http::verb::post, "/api/v1/sessions", {{"name", "clocked"}, {"yaml", yaml}});
  ASSERT_EQ(r.status, 200) << r.describe();
  auto sent = [&] {
    const json p = call(http::verb::get, "/api/v1/sessions/clocked/pipeline").body_json();
    return p["nodes"]["mix"]["stats"].value("sent", std::uint64_t{0});
  };
  ASSERT_TRUE(wait_until([&] { return sent() > 10; }, 10s)) << "the mixer emits nothing";
  const auto t1 = std::chrono::steady_clock::now();
  const auto s1 = sent();
  std::this_thread::sleep_for(3s);
  const auto s2 = sent();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const double rate = static_cast<double>(s2 - s1) / secs;
  std::printf("clocked mixer: %.1f frames/s over %.2f s (expected 50)\n", rate, secs);
  // Stats travel with heartbeats (every 250 ms): allow for that much skew at each end.
  EXPECT_NEAR(rate, 50.0, 50.0 * 0.5 / secs + 2.0);
  // What it mixes is the tone at its level (the missing input adds silence).
  const json level = client->wait_event(
      [](const json& e) {
        return e.value("event", "") == "nodetelemetry" && e.value("node_id", "") == "tap" &&
               e["data"].value("event_type", "") == "audio.level";
      },
      5s);
  ASSERT_FALSE(level.is_null()) << "no audio.level from the mix";
  EXPECT_NEAR(level["data"].value("peak_dbfs", 0.0), 20 * std::log10(0.25), 0.1) << level.dump();
}

}  // namespace
}  // namespace skit::testing
