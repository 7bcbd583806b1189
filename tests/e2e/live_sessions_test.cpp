// SPDX-License-Identifier: MPL-2.0
// Issue 6's acceptance with media, against the real `skit serve`: a live Opus session edited
// over the WebSocket control plane (gain tuned mid-stream, a node spliced in and out with
// applybatch, an invalid batch), a worker killed under gRPC watch while another session
// plays, a node that always crashes, and 200 create/mutate/destroy cycles counted for leaks.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "audio_measure.hpp"
#include "session_clients.hpp"
#include "skit/v1/control.grpc.pb.h"

namespace skit::testing {
namespace {

using Clock = std::chrono::steady_clock;

/// The pipeline: read, demux, pace, decode, gain, encode, mux, write.
std::string live_yaml(const std::string& in, const std::string& out, bool dedicated_gain = false) {
  return "mode: dynamic\n"
         "nodes:\n"
         "  reader: {kind: core::file_reader, params: {path: '" + in + "'}}\n"
         "  demux: {kind: containers::ogg::demuxer, needs: reader}\n"
         "  pacer: {kind: core::pacer, needs: demux}\n"
         "  dec: {kind: audio::opus::decoder, needs: pacer}\n"
         "  gain:\n"
         "    kind: audio::gain\n"
         "    params: {gain: 1.0}\n"
         "    needs: dec\n" +
         std::string(dedicated_gain ? "    isolation: dedicated\n" : "") +
         "  enc: {kind: audio::opus::encoder, needs: gain}\n"
         "  mux: {kind: containers::ogg::muxer, params: {codec: opus}, needs: enc}\n"
         "  writer: {kind: core::file_writer, params: {path: '" + out + "'}, needs: mux}\n";
}

json op_connect(const std::string& from, const std::string& to) {
  return {{"action", "connect"}, {"from_node", from}, {"from_pin", "out"},
          {"to_node", to},       {"to_pin", "in"}};
}
json op_disconnect(const std::string& from, const std::string& to) {
  return {{"action", "disconnect"}, {"from_node", from}, {"from_pin", "out"},
          {"to_node", to},          {"to_pin", "in"}};
}

class LiveSessions : public ::testing::Test {
 protected:
  void SetUp() override {
    input_ = dir_.file("tone.ogg");
    ASSERT_TRUE(make_sine(input_, 440, 0.5, 6.0, 48000, 1, {"-c:a", "libopus", "-b:a", "96k"}));
  }

  std::string config(const std::string& sessions = "") const {
    const std::string root = dir_.path().string();
    return session_config("security:\n"
                          "  allowed_file_paths: ['" + root + "/**', 'samples/**']\n"
                          "  allowed_write_paths: ['" + root + "/**']\n" + sessions);
  }

  /// Waits for the writer of `session` to stop (the stream ended and the file is complete).
  static bool writer_done(WsClient& ws, const std::string& session_id,
                          std::chrono::milliseconds timeout = 20s) {
    return !wait_node_stopped(ws, session_id, "writer", timeout).is_null();
  }

  TempDir dir_;
  std::string input_;
};

TEST_F(LiveSessions, TuningGainOverTheWebSocketStepsTheWrittenFileByMinus12dB) {
  SkitServer server(config());
  WsClient ws(server.http_port());
  ASSERT_TRUE(ws.open()) << ws.error();
  const std::string out = dir_.file("out.ogg");
  const json created = ws.request({{"action", "createsession"}, {"name", "live"},
                                   {"yaml", live_yaml(input_, out)}});
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump();
  const std::string id = created["session_id"];
  const auto t0 = Clock::now();
  std::this_thread::sleep_until(t0 + 2500ms);
  const double tuned_at = std::chrono::duration<double>(Clock::now() - t0).count();
  const json tuned = ws.request({{"action", "tunenode"}, {"session_id", id}, {"node_id", "gain"},
                                 {"message", {{"UpdateParams", {{"gain", 0.25}}}}}});
  ASSERT_EQ(tuned.value("action", ""), "success") << tuned.dump();
  EXPECT_FALSE(ws.wait_event([&](const json& p) {
                   return p.value("event", "") == "nodeparamschanged" &&
                          p.value("node_id", "") == "gain" && p["params"]["gain"] == 0.25;
                 }).is_null());
  ASSERT_TRUE(writer_done(ws, id));

  const Decoded d = decode_f32(out);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_NEAR(d.seconds(), 6.0, 0.021);
  const auto levels = window_levels(d);
  const double before = mean_level(levels, 0.3, tuned_at - 0.5);
  const double after = mean_level(levels, tuned_at + 0.6, 5.7);
  EXPECT_NEAR(after - before, -12.04, 0.5) << before << " dB -> " << after << " dB";
  std::size_t step = 0;
  for (std::size_t i = 15; i < levels.size() && step == 0; ++i) {
    step = levels[i] < (before + after) / 2 ? i : 0;
  }
  EXPECT_NEAR(static_cast<double>(step) * 0.02, tuned_at, 0.4)
      << "the step is at " << static_cast<double>(step) * 0.02 << " s, the tune at " << tuned_at;
}

TEST_F(LiveSessions, ApplyBatchSplicesAGainInAndOutWithoutAGap) {
  SkitServer server(config());
  WsClient ws(server.http_port());
  ASSERT_TRUE(ws.open()) << ws.error();
  const std::string out = dir_.file("out.ogg");
  const json created = ws.request({{"action", "createsession"}, {"name", "splice"},
                                   {"yaml", live_yaml(input_, out)}});
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump();
  const std::string id = created["session_id"];
  const auto t0 = Clock::now();
  std::this_thread::sleep_until(t0 + 1500ms);
  const json in = ws.request(
      {{"action", "applybatch"},
       {"session_id", id},
       {"operations",
        {{{"action", "addnode"}, {"node_id", "gain2"}, {"kind", "audio::gain"},
          {"params", {{"gain", 0.5}}}},
         op_disconnect("gain", "enc"), op_connect("gain", "gain2"), op_connect("gain2", "enc")}}});
  ASSERT_EQ(in.value("action", ""), "batchapplied") << in.dump();
  ASSERT_TRUE(in.value("success", false)) << in.dump();
  const double inserted_at = std::chrono::duration<double>(Clock::now() - t0).count();
  std::this_thread::sleep_until(t0 + 3500ms);
  const json outb = ws.request(
      {{"action", "applybatch"},
       {"session_id", id},
       {"operations",
        {op_disconnect("gain", "gain2"), op_disconnect("gain2", "enc"), op_connect("gain", "enc"),
         {{"action", "removenode"}, {"node_id", "gain2"}}}}});
  ASSERT_TRUE(outb.value("success", false)) << outb.dump();
  const double removed_at = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(writer_done(ws, id));

  const Decoded d = decode_f32(out);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_NEAR(d.seconds(), 6.0, 0.021) << "a frame lost or doubled";
  const auto levels = window_levels(d);
  const double full = mean_level(levels, 0.3, inserted_at - 0.5);
  EXPECT_NEAR(mean_level(levels, inserted_at + 0.6, removed_at - 0.5) - full, -6.02, 0.5);
  EXPECT_NEAR(mean_level(levels, removed_at + 0.6, 5.7) - full, 0.0, 0.5);
  // No gap longer than one frame: no 20 ms window falls silent.
  for (std::size_t i = 5; i + 5 < levels.size(); ++i) {
    EXPECT_GT(levels[i], full - 12.0) << "a hole at " << static_cast<double>(i) * 0.02 << " s";
  }
  const json events_seen = ws.wait_event([](const json& p) {
    return p.value("event", "") == "noderemoved" && p.value("node_id", "") == "gain2";
  });
  EXPECT_FALSE(events_seen.is_null());
}

// One graph rule, one message: a type mismatch through a Passthrough, refused in the YAML of a
// new session and in a live applybatch (on a running source) that links the passthrough before
// its upstream.
TEST_F(LiveSessions, YamlAndALiveBatchReportAGraphRuleWithTheSameMessage) {
  SkitServer server(config());
  WsClient ws(server.http_port());
  ASSERT_TRUE(ws.open()) << ws.error();
  // Raw audio from an endless tone, through a passthrough, into an Opus decoder.
  const json refused = ws.request(
      {{"action", "createsession"},
       {"name", "from-yaml"},
       {"yaml", "mode: dynamic\nnodes:\n  tone: {kind: audio::tone}\n"
                "  relay: {kind: core::passthrough, needs: tone}\n"
                "  dec: {kind: audio::opus::decoder, needs: relay}\n"}});
  ASSERT_EQ(refused.value("action", ""), "error") << refused.dump();
  const std::string from_yaml = refused.value("message", "");
  const auto at = from_yaml.find("node 'dec': ");
  ASSERT_NE(at, std::string::npos) << from_yaml;
  const std::string rule = from_yaml.substr(at);
  EXPECT_NE(rule.find("pin type mismatch"), std::string::npos) << rule;
  EXPECT_NE(from_yaml.find("line 5"), std::string::npos) << "placed at its YAML line: " << from_yaml;

  const json created = ws.request({{"action", "createsession"}, {"name", "live"},
                                   {"yaml", "mode: dynamic\nnodes:\n  tone: {kind: audio::tone}\n"}});
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump();
  const json ops = {{{"action", "addnode"}, {"node_id", "relay"}, {"kind", "core::passthrough"}},
                    {{"action", "addnode"}, {"node_id", "dec"}, {"kind", "audio::opus::decoder"}},
                    op_connect("relay", "dec"),
                    op_connect("tone", "relay")};
  const json applied = ws.request({{"action", "applybatch"}, {"session_id", "live"}, {"operations", ops}});
  EXPECT_FALSE(applied.value("success", true)) << applied.dump();
  ASSERT_EQ(applied["errors"].size(), 1U) << applied.dump();
  EXPECT_EQ(applied["errors"][0].get<std::string>(), "operation 2: " + rule)
      << "placed at the link into the decoder, with the compiler's words";
  const json p = ws.request({{"action", "getpipeline"}, {"session_id", "live"}})["pipeline"];
  EXPECT_EQ(p["nodes"].size(), 1U) << "nothing applied";
}

TEST_F(LiveSessions, AnInvalidBatchChangesNothing) {
  SkitServer server(config());
  WsClient ws(server.http_port());
  ASSERT_TRUE(ws.open()) << ws.error();
  const std::string out = dir_.file("out.ogg");
  const json created = ws.request({{"action", "createsession"}, {"name", "atomic"},
                                   {"yaml", live_yaml(input_, out)}});
  const std::string id = created["session_id"];
  const json before = ws.request({{"action", "getpipeline"}, {"session_id", id}})["pipeline"];
  const json ops = {{{"action", "addnode"}, {"node_id", "extra"}, {"kind", "audio::gain"}},
                    op_disconnect("enc", "mux"),
                    op_connect("gain", "extra"),
                    op_connect("extra", "mux")};  // RawAudio into an EncodedAudio pin
  const json checked = ws.request({{"action", "validatebatch"}, {"session_id", id},
                                   {"operations", ops}});
  ASSERT_EQ(checked.value("action", ""), "validationresult") << checked.dump();
  ASSERT_EQ(checked["errors"].size(), 1U) << checked.dump();
  EXPECT_NE(checked["errors"][0]["message"].get<std::string>().find("pin type mismatch"),
            std::string::npos) << checked.dump();
  const json applied = ws.request({{"action", "applybatch"}, {"session_id", id}, {"operations", ops}});
  EXPECT_FALSE(applied.value("success", true)) << applied.dump();
  const json after = ws.request({{"action", "getpipeline"}, {"session_id", id}})["pipeline"];
  EXPECT_EQ(after["connections"], before["connections"]);
  EXPECT_FALSE(after["nodes"].contains("extra"));
  // The stream was never touched: complete and at its level.
  ASSERT_TRUE(writer_done(ws, id));
  EXPECT_NEAR(decode_f32(out).seconds(), 6.0, 0.021);
}

std::unique_ptr<grpc::ClientContext> grpc_context(std::chrono::seconds timeout = 60s) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  ctx->AddMetadata("authorization", "Bearer " + kOperatorToken);
  return ctx;
}

TEST_F(LiveSessions, AKilledWorkerRestartsWhileAnotherSessionPlaysOn) {
  SkitServer server(config("sessions:\n  backoff_initial_ms: 50\n"));
  const pid_t skit = server.pid();
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Control::NewStub(channel);
  {  // A warm-up session, so that the connection and process-wide resources exist.
    v1::CreateSessionRequest req;
    req.set_name("warm");
    v1::CreateSessionResponse res;
    auto ctx = grpc_context();
    ASSERT_TRUE(stub->CreateSession(ctx.get(), req, &res).ok());
    v1::DeleteSessionRequest del;
    del.set_session("warm");
    v1::DeleteSessionResponse deleted;
    auto ctx2 = grpc_context();
    ASSERT_TRUE(stub->DeleteSession(ctx2.get(), del, &deleted).ok());
  }
  std::this_thread::sleep_for(300ms);
  const std::size_t fds_before = fd_count(skit);
  // Session a's gain has a worker of its own; session b is one grouped worker.
  const std::string out_a = dir_.file("a.ogg");
  const std::string out_b = dir_.file("b.ogg");
  for (const auto& [name, yaml] : {std::pair{"a", live_yaml(input_, out_a, true)},
                                   std::pair{"b", live_yaml(input_, out_b)}}) {
    v1::CreateSessionRequest req;
    req.set_name(name);
    req.set_pipeline_yaml(yaml);
    v1::CreateSessionResponse res;
    auto ctx = grpc_context();
    ASSERT_TRUE(stub->CreateSession(ctx.get(), req, &res).ok());
  }
  // Watch session a's events.
  auto watch_ctx = grpc_context(120s);
  v1::WatchEventsRequest watch_req;
  watch_req.set_session("a");
  auto reader = stub->WatchEvents(watch_ctx.get(), watch_req);
  reader->WaitForInitialMetadata();

  std::this_thread::sleep_for(2s);
  auto pipeline_of = [&](const std::string& session) {
    v1::GetSessionRequest req;
    req.set_session(session);
    v1::GetSessionResponse res;
    auto ctx = grpc_context();
    EXPECT_TRUE(stub->GetSession(ctx.get(), req, &res).ok());
    return json::parse(res.pipeline_json());
  };
  const int victim = pipeline_of("a")["nodes"]["gain"]["worker_pid"];
  ASSERT_NE(victim, pipeline_of("a")["nodes"]["dec"]["worker_pid"].get<int>());
  ASSERT_EQ(::kill(victim, SIGKILL), 0);

  bool recovering = false;
  bool running_again = false;
  v1::SessionEvent e;
  while (!running_again && reader->Read(&e)) {
    if (e.event() != "nodestatechanged") {
      continue;
    }
    const json p = json::parse(e.payload_json());
    if (p["node_id"] != "gain") {
      continue;
    }
    if (p["state"].is_object() && p["state"].contains("Recovering")) {
      recovering = true;
      EXPECT_NE(p["state"]["Recovering"]["reason"].get<std::string>().find("signal 9"),
                std::string::npos);
    } else if (recovering && p["state"] == "Running") {
      running_again = true;
    }
  }
  EXPECT_TRUE(recovering);
  EXPECT_TRUE(running_again);
  watch_ctx->TryCancel();
  while (reader->Read(&e)) {
  }
  (void)reader->Finish();

  ASSERT_TRUE(wait_until([&] { return pipeline_of("a")["nodes"]["writer"]["state"].contains("Stopped"); }, 20s));
  ASSERT_TRUE(wait_until([&] { return pipeline_of("b")["nodes"]["writer"]["state"].contains("Stopped"); }, 20s));
  EXPECT_EQ(pipeline_of("a")["nodes"]["gain"]["restarts"], 1);
  // a went on after the restart; b never noticed: whole, and no 20 ms window silent.
  const Decoded a = decode_f32(out_a);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_GT(a.seconds(), 5.8);
  const Decoded b = decode_f32(out_b);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NEAR(b.seconds(), 6.0, 0.021);
  const auto levels = window_levels(b);
  for (std::size_t i = 5; i + 5 < levels.size(); ++i) {
    EXPECT_GT(levels[i], -20.0) << "a hole in b at " << static_cast<double>(i) * 0.02 << " s";
  }
  for (const char* name : {"a", "b"}) {
    v1::DeleteSessionRequest req;
    req.set_session(name);
    v1::DeleteSessionResponse res;
    auto ctx = grpc_context();
    EXPECT_TRUE(stub->DeleteSession(ctx.get(), req, &res).ok());
  }
  EXPECT_TRUE(wait_until([&] { return skit_workers(skit).empty(); }, 5s));
  EXPECT_TRUE(shm_segments_of(skit).empty());
  EXPECT_TRUE(wait_until([&] { return fd_count(skit) <= fds_before; }, 5s))
      << fd_count(skit) << " fds, " << fds_before << " before";
}

TEST_F(LiveSessions, ANodeThatAlwaysCrashesEndsFailedAndTheServerStaysHealthy) {
  SkitServer server(config("sessions:\n  max_restarts: 2\n  backoff_initial_ms: 50\n"));
  WsClient ws(server.http_port());
  ASSERT_TRUE(ws.open()) << ws.error();
  const std::string out = dir_.file("out.ogg");
  const json created = ws.request({{"action", "createsession"}, {"name", "crashy"},
                                   {"yaml", live_yaml(input_, out)}});
  const std::string id = created["session_id"];
  const json applied = ws.request(
      {{"action", "applybatch"},
       {"session_id", id},
       {"operations",
        {{{"action", "addnode"}, {"node_id", "boom"}, {"kind", "testing::fault"},
          {"params", {{"mode", "segfault"}}}},
         op_connect("dec", "boom")}}});
  ASSERT_TRUE(applied.value("success", false)) << applied.dump();
  const json failed = ws.wait_event(
      [](const json& p) {
        return p.value("event", "") == "nodestatechanged" && p.value("node_id", "") == "boom" &&
               p["state"].is_object() && p["state"].contains("Failed");
      },
      15s);
  ASSERT_FALSE(failed.is_null());
  EXPECT_NE(failed["state"]["Failed"]["reason"].get<std::string>().find("not restarted"),
            std::string::npos);
  int recovering = 0;
  for (const auto& p : ws.events()) {
    recovering += p.value("node_id", "") == "boom" && p.contains("state") &&
                  p["state"].is_object() && p["state"].contains("Recovering");
  }
  EXPECT_EQ(recovering, 2);
  // The session plays on, the server answers.
  ASSERT_TRUE(writer_done(ws, id));
  EXPECT_NEAR(decode_f32(out).seconds(), 6.0, 0.021);
  const auto health = http_call(server.http_port(), http::verb::get, "/healthz");
  EXPECT_EQ(health.status, 200);
}

TEST_F(LiveSessions, TwoHundredCreateMutateDestroyCyclesLeakNothing) {
  SkitServer server(config());
  const pid_t skit = server.pid();
  WsClient ws(server.http_port());
  ASSERT_TRUE(ws.open()) << ws.error();
  // One warm-up cycle, so that process-wide resources exist before counting.
  auto cycle = [&](int i) {
    const json created = ws.request({{"action", "createsession"}, {"name", "c" + std::to_string(i)}});
    ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump();
    const std::string id = created["session_id"];
    const json applied = ws.request(
        {{"action", "applybatch"},
         {"session_id", id},
         {"operations",
          {{{"action", "addnode"}, {"node_id", "a"}, {"kind", "audio::gain"}},
           {{"action", "addnode"}, {"node_id", "b"}, {"kind", "audio::gain"}},
           op_connect("a", "b")}}});
    ASSERT_TRUE(applied.value("success", false)) << applied.dump();
    const json tuned = ws.request({{"action", "tunenode"}, {"session_id", id}, {"node_id", "a"},
                                   {"message", {{"UpdateParams", {{"gain", 0.5}}}}}});
    ASSERT_EQ(tuned.value("action", ""), "success") << tuned.dump();
    if (i % 2 == 0) {
      const json removed = ws.request({{"action", "removenode"}, {"session_id", id}, {"node_id", "b"}});
      ASSERT_EQ(removed.value("action", ""), "success") << removed.dump();
    }
    const json destroyed = ws.request({{"action", "destroysession"}, {"session_id", id}});
    ASSERT_EQ(destroyed.value("action", ""), "sessiondestroyed") << destroyed.dump();
  };
  cycle(-1);
  ASSERT_TRUE(wait_until([&] { return skit_workers(skit).empty(); }, 5s));
  std::this_thread::sleep_for(300ms);
  const std::size_t fds_before = fd_count(skit);
  const std::size_t threads_before = thread_count(skit);
  for (int i = 0; i < 200; ++i) {
    cycle(i);
    if (HasFatalFailure()) {
      return;
    }
  }
  EXPECT_TRUE(wait_until([&] { return skit_workers(skit).empty(); }, 5s));
  EXPECT_TRUE(wait_until([&] { return children_of(skit).empty(); }, 5s));
  EXPECT_TRUE(shm_segments_of(skit).empty());
  EXPECT_TRUE(wait_until([&] { return fd_count(skit) <= fds_before; }, 5s))
      << fd_count(skit) << " fds, " << fds_before << " before";
  EXPECT_LE(thread_count(skit), threads_before);
}

TEST_F(LiveSessions, TheDynamicSampleRunsAndTakesATune) {
  SkitServer server(config());
  const std::string yaml = read_file((kRepo / "samples/pipelines/dynamic/live_gain.yml").string());
  const auto created = http_call(server.http_port(), http::verb::post, "/api/v1/sessions",
                                 kOperatorToken, json{{"name", "sample"}, {"yaml", yaml}}.dump());
  ASSERT_EQ(created.status, 200) << created.body;
  WsClient ws(server.http_port());
  ASSERT_TRUE(ws.open()) << ws.error();
  const auto running = [&] {
    const auto p = http_call(server.http_port(), http::verb::get,
                             "/api/v1/sessions/sample/pipeline", kOperatorToken);
    return p.status == 200 && p.body_json()["nodes"]["gain"]["state"] == "Running" &&
           p.body_json()["nodes"]["sink"]["stats"]["received"].get<int>() > 10;
  };
  ASSERT_TRUE(wait_until(running, 10s));
  const json tuned = ws.request({{"action", "tunenode"}, {"session_id", "sample"},
                                 {"node_id", "gain"},
                                 {"message", {{"UpdateParams", {{"gain", 0.25}}}}}});
  EXPECT_EQ(tuned.value("action", ""), "success") << tuned.dump();
  const auto deleted = http_call(server.http_port(), http::verb::delete_,
                                 "/api/v1/sessions/sample", kOperatorToken);
  EXPECT_EQ(deleted.status, 200) << deleted.body;
}

}  // namespace
}  // namespace skit::testing
