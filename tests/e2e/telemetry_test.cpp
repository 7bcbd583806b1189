// SPDX-License-Identifier: MPL-2.0
// Session telemetry end to end on the real `skit serve`: core::telemetry_tap's audio levels
// reach WebSocket watchers as StreamKit's `nodetelemetry` events (levels that match the tone's
// amplitude, at the configured media interval) and gRPC WatchEvents watchers as the same
// payload; core::telemetry_out's per-type rate limit and its drop report, the runtime's
// per-node cap (drops counted in the node's stats) and event_type_filter, with Text packets
// from a real file through core::text_chunker.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cmath>

#include "session_clients.hpp"
#include "skit/v1/control.grpc.pb.h"

namespace skit::testing {
namespace {

bool telemetry_of(const json& e, const std::string& node, const std::string& type = "") {
  return e.value("event", "") == "nodetelemetry" && e.value("node_id", "") == node &&
         (type.empty() || (e["data"].is_object() && e["data"].value("event_type", "") == type));
}

std::vector<json> telemetry_events(WsClient& ws, const std::string& node,
                                   const std::string& type = "") {
  std::vector<json> out;
  for (const auto& e : ws.events()) {
    if (telemetry_of(e, node, type)) {
      out.push_back(e);
    }
  }
  return out;
}

std::string tone_tap_yaml(int interval_ms, const std::string& tap_extra = "") {
  return "mode: dynamic\n"
         "nodes:\n"
         "  tone: {kind: audio::tone, params: {frequency: 1000, amplitude: 0.25}}\n"
         "  tap:\n"
         "    kind: core::telemetry_tap\n"
         "    params: {audio_sample_interval_ms: " + std::to_string(interval_ms) + tap_extra + "}\n"
         "    needs: tone\n"
         "  sink: {kind: core::sink, needs: tap}\n";
}

class Telemetry : public ::testing::Test {
 protected:
  void start() {
    const std::string root = dir_.path().string();
    server_ = std::make_unique<SkitServer>(
        session_config("security:\n  allowed_file_paths: ['" + root + "/**']\n"));
    ASSERT_TRUE(server_->up()) << "skit serve did not start:\n" << server_->log();
  }

  void TearDown() override {
    if (!server_) {
      return;
    }
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

  std::string create(const std::string& name, const std::string& yaml) {
    const Response r = http_call(server_->http_port(), http::verb::post, "/api/v1/sessions",
                                 kOperatorToken, json{{"name", name}, {"yaml", yaml}}.dump());
    EXPECT_EQ(r.status, 200) << r.describe();
    return r.body_json().value("session_id", "");
  }

  json pipeline(const std::string& name) {
    const Response r = http_call(server_->http_port(), http::verb::get,
                                 "/api/v1/sessions/" + name + "/pipeline", kOperatorToken);
    EXPECT_EQ(r.status, 200) << r.describe();
    return r.body_json();
  }

  std::unique_ptr<WsClient> ws() {
    WsClient::Options options;
    options.token = kOperatorToken;
    auto client = std::make_unique<WsClient>(server_->http_port(), options);
    EXPECT_TRUE(client->open()) << client->error();
    return client;
  }

  /// A text file of `words` words, one Text packet per word through core::text_chunker.
  std::string words_file(int words) {
    std::string text;
    for (int i = 0; i < words; ++i) {
      text += "w" + std::to_string(i) + " ";
    }
    const std::string path = dir_.file("words.txt");
    write_file(path, text + "\n");
    return path;
  }

  static std::string text_yaml(const std::string& path, const std::string& out_params) {
    return "mode: dynamic\n"
           "nodes:\n"
           "  reader: {kind: core::file_reader, params: {path: '" + path + "'}}\n"
           "  chunker: {kind: core::text_chunker, params: {split_mode: words, chunk_words: 1},"
           " needs: reader}\n"
           "  out: {kind: core::telemetry_out, params: " + out_params + ", needs: chunker}\n";
  }

  /// Waits until node `node` of `session` reports Stopped.
  static bool stopped(WsClient& ws, const std::string& session, const std::string& node) {
    return !ws.wait_event(
                  [&](const json& p) {
                    return p.value("event", "") == "nodestatechanged" &&
                           p.value("session_id", "") == session &&
                           p.value("node_id", "") == node && p["state"].is_object() &&
                           p["state"].contains("Stopped");
                  },
                  20s)
                .is_null();
  }

  TempDir dir_;
  std::unique_ptr<SkitServer> server_;
};

TEST_F(Telemetry, TapAudioLevelsReachWebSocketWatchersWithTheTonesLevelAtTheInterval) {
  start();
  auto client = ws();
  const std::string sid = create("levels", tone_tap_yaml(200));
  ASSERT_FALSE(sid.empty());
  ASSERT_TRUE(wait_until([&] { return telemetry_events(*client, "tap", "audio.level").size() >= 8; },
                         15s))
      << "audio.level events: " << telemetry_events(*client, "tap").size();
  const auto events = telemetry_events(*client, "tap", "audio.level");
  // A 1 kHz sine of amplitude 0.25 over whole cycles: RMS 0.25/sqrt(2), -15.05 dBFS; peak
  // -12.04 dBFS.
  const double rms_db = 20 * std::log10(0.25 / std::sqrt(2.0));
  const double peak_db = 20 * std::log10(0.25);
  std::vector<std::int64_t> stamps;
  for (const auto& e : events) {
    EXPECT_EQ(e.value("session_id", ""), sid);
    EXPECT_EQ(e.value("type_id", ""), "core::telemetry/event@1") << e.dump();
    EXPECT_TRUE(is_rfc3339(e.value("timestamp", ""))) << e.dump();
    const json& d = e["data"];
    EXPECT_NEAR(d.value("rms_dbfs", 0.0), rms_db, 0.05) << d.dump();
    EXPECT_NEAR(d.value("peak_dbfs", 0.0), peak_db, 0.05) << d.dump();
    EXPECT_NEAR(d.value("window_ms", 0.0), 200.0, 0.01) << d.dump();
    ASSERT_TRUE(e.contains("timestamp_us")) << e.dump();
    stamps.push_back(e["timestamp_us"].get<std::int64_t>());
  }
  // Media windows of 200 ms from a real-time tone: events 200 ms apart in wall time too.
  for (std::size_t i = 1; i < events.size(); ++i) {
    EXPECT_EQ(events[i]["data"].value("pts_us", -1) - events[i - 1]["data"].value("pts_us", -1),
              200000);
  }
  const double span_ms = static_cast<double>(stamps.back() - stamps[1]) / 1000.0;
  const double mean_gap = span_ms / static_cast<double>(stamps.size() - 2);
  std::printf("audio.level: %zu events, mean gap %.1f ms, rms %.3f dBFS (expected %.3f)\n",
              events.size(), mean_gap, events[1]["data"].value("rms_dbfs", 0.0), rms_db);
  EXPECT_NEAR(mean_gap, 200.0, 30.0);

  // Tuned live: levels every 100 ms, and the new amplitude.
  const json t = client->request({{"action", "tunenode"},
                                  {"session_id", sid},
                                  {"node_id", "tone"},
                                  {"message", {{"UpdateParams", {{"amplitude", 0.5}}}}}});
  ASSERT_EQ(t.value("action", ""), "success") << t.dump();
  const json louder = client->wait_event(
      [&](const json& e) {
        return telemetry_of(e, "tap", "audio.level") &&
               std::abs(e["data"].value("peak_dbfs", 0.0) - 20 * std::log10(0.5)) < 0.05;
      },
      5s);
  EXPECT_FALSE(louder.is_null()) << "no audio.level at the tuned amplitude";
}

TEST_F(Telemetry, GrpcWatchEventsCarriesTheSameNodeTelemetryPayload) {
  start();
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Control::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + kOperatorToken);
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  v1::WatchEventsRequest req;
  auto reader = stub->WatchEvents(&ctx, req);
  reader->WaitForInitialMetadata();
  const std::string sid = create("grpc-levels", tone_tap_yaml(100));
  ASSERT_FALSE(sid.empty());
  v1::SessionEvent e;
  int seen = 0;
  std::optional<json> payload;
  while (reader->Read(&e)) {
    if (e.event() != "nodetelemetry") {
      continue;
    }
    payload = json::parse(e.payload_json());
    EXPECT_EQ(e.session_id(), sid);
    EXPECT_TRUE(is_rfc3339(e.timestamp())) << e.timestamp();
    // The typed Struct is the same document.
    EXPECT_EQ(e.payload().fields().at("type_id").string_value(), "core::telemetry/event@1");
    EXPECT_EQ(e.payload().fields().at("data").struct_value().fields().at("event_type").string_value(),
              "audio.level");
    if (++seen == 3) {
      break;
    }
  }
  ctx.TryCancel();
  ASSERT_EQ(seen, 3) << "too few nodetelemetry events over WatchEvents";
  ASSERT_TRUE(payload);
  EXPECT_EQ(payload->value("node_id", ""), "tap");
  EXPECT_EQ((*payload)["data"].value("event_type", ""), "audio.level");
  EXPECT_NEAR((*payload)["data"].value("rms_dbfs", 0.0), 20 * std::log10(0.25 / std::sqrt(2.0)),
              0.05);
  EXPECT_NEAR((*payload)["data"].value("window_ms", 0.0), 100.0, 0.01);
}

TEST_F(Telemetry, TelemetryOutCapsABurstPerEventTypeAndReportsTheDrops) {
  start();
  auto client = ws();
  const std::string sid =
      create("burst", text_yaml(words_file(300), "{packet_types: [Text], max_events_per_sec: 10}"));
  ASSERT_TRUE(stopped(*client, sid, "out")) << "telemetry_out did not finish";
  const json p = pipeline("burst");
  const auto received = p["nodes"]["out"]["stats"].value("received", std::uint64_t{0});
  ASSERT_EQ(received, 300U) << p["nodes"]["out"].dump();
  std::uint64_t dropped = 0;
  std::uint64_t dropped_total = 0;
  ASSERT_TRUE(wait_until([&] { return !telemetry_events(*client, "out", "telemetry.dropped").empty(); }, 5s));
  // The last report comes with the node's end; give it a moment to arrive.
  std::this_thread::sleep_for(300ms);
  for (const auto& e : telemetry_events(*client, "out", "telemetry.dropped")) {
    dropped += e["data"].value("dropped_since_last", std::uint64_t{0});
    dropped_total = std::max(dropped_total, e["data"].value("dropped_total", std::uint64_t{0}));
  }
  const auto texts = telemetry_events(*client, "out", "text");
  std::printf("burst of %llu Text packets at max_events_per_sec 10: %zu events, %llu dropped\n",
              static_cast<unsigned long long>(received), texts.size(),
              static_cast<unsigned long long>(dropped));
  EXPECT_GE(texts.size(), 10U);
  EXPECT_LE(texts.size(), 15U) << "a burst of 300 in well under a second";
  EXPECT_EQ(texts.size() + dropped, received) << "every packet is delivered or counted";
  EXPECT_EQ(dropped_total, dropped);
  EXPECT_EQ(texts.front()["data"].value("text", ""), "w0");
}

TEST_F(Telemetry, TheRuntimeCapsANodesTelemetryAndCountsTheDropsInItsStats) {
  start();
  auto client = ws();
  // No limit of the node's own: the runtime's per-node cap (bursts of 400) is what holds.
  const std::string sid =
      create("flood", text_yaml(words_file(2000), "{packet_types: [Text], max_events_per_sec: 0}"));
  ASSERT_TRUE(stopped(*client, sid, "out"));
  std::this_thread::sleep_for(300ms);
  const json p = pipeline("flood");
  const json stats = p["nodes"]["out"]["stats"];
  const auto received = stats.value("received", std::uint64_t{0});
  const auto telemetry_dropped = stats.value("telemetry_dropped", std::uint64_t{0});
  const auto texts = telemetry_events(*client, "out", "text");
  std::printf("flood of %llu Text packets without a node limit: %zu events, %llu dropped by "
              "the runtime\n",
              static_cast<unsigned long long>(received), texts.size(),
              static_cast<unsigned long long>(telemetry_dropped));
  ASSERT_EQ(received, 2000U);
  EXPECT_GT(telemetry_dropped, 0U);
  EXPECT_GE(texts.size(), 400U);
  EXPECT_LT(texts.size(), 1000U);
  EXPECT_EQ(texts.size() + telemetry_dropped, received);
}

TEST_F(Telemetry, EventTypeFilterLetsThroughOnlyMatchingTypes) {
  start();
  auto client = ws();
  const std::string path = words_file(20);
  const std::string yaml =
      "mode: dynamic\n"
      "nodes:\n"
      "  tone: {kind: audio::tone, params: {amplitude: 0.25}}\n"
      "  audio_tap: {kind: core::telemetry_tap, params: {audio_sample_interval_ms: 100,"
      " event_type_filter: ['audio.*']}, needs: tone}\n"
      "  vad_tap: {kind: core::telemetry_tap, params: {audio_sample_interval_ms: 100,"
      " event_type_filter: ['vad.*']}, needs: audio_tap}\n"
      "  sink: {kind: core::sink, needs: vad_tap}\n"
      "  reader: {kind: core::file_reader, params: {path: '" + path + "'}}\n"
      "  chunker: {kind: core::text_chunker, params: {split_mode: words, chunk_words: 1},"
      " needs: reader}\n"
      "  texts: {kind: core::telemetry_out, params: {packet_types: [Text],"
      " event_type_filter: [text]}, needs: chunker}\n"
      "  chunker2: {kind: core::text_chunker, params: {split_mode: words, chunk_words: 1},"
      " needs: reader}\n"
      "  none: {kind: core::telemetry_out, params: {packet_types: [Text],"
      " event_type_filter: ['transcription', 'te']}, needs: chunker2}\n";
  const std::string sid = create("filters", yaml);
  ASSERT_TRUE(stopped(*client, sid, "none"));
  ASSERT_TRUE(stopped(*client, sid, "texts"));
  ASSERT_TRUE(wait_until([&] { return telemetry_events(*client, "audio_tap").size() >= 5; }, 5s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(telemetry_events(*client, "texts", "text").size(), 20U);
  EXPECT_TRUE(telemetry_events(*client, "none").empty()) << "'te' is no prefix pattern";
  EXPECT_TRUE(telemetry_events(*client, "vad_tap").empty());
  for (const auto& e : telemetry_events(*client, "audio_tap")) {
    EXPECT_EQ(e["data"].value("event_type", ""), "audio.level");
  }
}

}  // namespace
}  // namespace skit::testing
