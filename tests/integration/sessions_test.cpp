// SPDX-License-Identifier: MPL-2.0
// Live sessions through the SessionManager with real worker processes: tuning mid-stream,
// seamless insertion/removal of a node, atomic batches, crash recovery, the failure budget and
// leak accounting over many cycles. (The same flows over WebSocket and gRPC are in tests/e2e.)
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <thread>

#include "audio_measure.hpp"
#include "skit/gateway/session_json.hpp"
#include "skit/supervisor/sessions.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

using namespace std::chrono_literals;
using supervisor::BatchOperation;
using supervisor::SessionConfig;
using supervisor::SessionManager;
using Clock = std::chrono::steady_clock;
using gateway::event_json;

/// The pipeline with live state, as StreamKit's JSON (the REST API's shape).
Result<Json> pipeline_json(SessionManager& m, const std::string& id) {
  auto view = m.pipeline(id);
  if (!view) {
    return view.status();
  }
  return gateway::pipeline_json(*view);
}

/// Per-node placement: each node in a worker of its own, so a test can kill one node's.
SessionConfig test_config() {
  SessionConfig c;
  c.worker_executable = SKIT_BINARY;
  c.placement = supervisor::PlacementPolicy::kPerNode;
  c.backoff_initial = 50ms;
  c.backoff_max = 400ms;
  return c;
}

std::string live_yaml(const std::string& in, const std::string& out, double gain = 1.0) {
  return "name: live gain\n"
         "mode: dynamic\n"
         "nodes:\n"
         "  reader: {kind: core::file_reader, params: {path: '" + in + "'}}\n"
         "  demux: {kind: containers::ogg::demuxer, needs: reader}\n"
         "  pacer: {kind: core::pacer, needs: demux}\n"
         "  dec: {kind: audio::opus::decoder, needs: pacer}\n"
         "  gain: {kind: audio::gain, params: {gain: " + std::to_string(gain) + "}, needs: dec}\n"
         "  enc: {kind: audio::opus::encoder, needs: gain}\n"
         "  mux: {kind: containers::ogg::muxer, params: {codec: opus}, needs: enc}\n"
         "  writer: {kind: core::file_writer, params: {path: '" + out + "'}, needs: mux}\n";
}

std::string node_state(SessionManager& m, const std::string& session, const std::string& node) {
  auto p = pipeline_json(m, session);
  if (!p || !(*p)["nodes"].contains(node)) {
    return "";
  }
  const Json& st = (*p)["nodes"][node]["state"];
  return st.is_string() ? st.get<std::string>() : st.begin().key();
}

int worker_pid(SessionManager& m, const std::string& session, const std::string& node) {
  auto p = pipeline_json(m, session);
  return p ? (*p)["nodes"][node]["worker_pid"].get<int>() : 0;
}

bool wait_stopped(SessionManager& m, const std::string& session, const std::string& node,
                  std::chrono::milliseconds timeout) {
  return wait_until([&] { return node_state(m, session, node) == "Stopped"; }, timeout);
}

std::size_t count_fds() {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::getenv("SKIT_TEST_LIST_FDS") != nullptr) {
      std::fprintf(stderr, "fd %s -> %s\n", e.path().filename().c_str(),
                   std::filesystem::read_symlink(e.path(), ec).c_str());
    }
    ++n;
  }
  return n;
}

/// The descriptor count once ZeroMQ has finished closing sockets (it does so on its own
/// thread): the same for 300 ms.
std::size_t settled_fd_count() {
  std::size_t last = count_fds();
  for (int stable = 0; stable < 15;) {
    std::this_thread::sleep_for(20ms);
    const std::size_t now = count_fds();
    stable = now == last ? stable + 1 : 0;
    last = now;
  }
  return last;
}

/// Process-wide resources (ZeroMQ's context and its threads) are created on first use and
/// kept: count descriptors only after they exist.
void warm_up() {
  SessionManager m(test_config());
  ASSERT_TRUE(m.create_session("warm", ""));
  ASSERT_TRUE(m.destroy_session("warm"));
}

class SessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    input_ = dir_.file("tone.ogg");
    ASSERT_TRUE(make_sine(input_, 440, 0.5, 6.0, 48000, 1, {"-c:a", "libopus", "-b:a", "96k"}));
  }
  TempDir dir_;
  std::string input_;
};

SessionConfig grouped_config() {
  SessionConfig c = test_config();
  c.placement = supervisor::PlacementPolicy::kGrouped;
  return c;
}

TEST_F(SessionsTest, TuneGainMidStreamStepsTheOutputByMinus12dB) {
  SessionManager m(grouped_config());
  const std::string out = dir_.file("out.ogg");
  auto created = m.create_session("tune", live_yaml(input_, out));
  ASSERT_TRUE(created) << created.status().to_string();
  const auto started = Clock::now();
  std::this_thread::sleep_until(started + 2500ms);
  const double tuned_at = std::chrono::duration<double>(Clock::now() - started).count();
  Status s = m.tune_node("tune", "gain", Json{{"gain", 0.25}}, /*wait=*/true);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto p = pipeline_json(m, "tune");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ((*p)["nodes"]["gain"]["params"]["gain"].get<double>(), 0.25);
  ASSERT_TRUE(wait_stopped(m, "tune", "writer", 15s)) << node_state(m, "tune", "writer");
  // The stream has ended: a node that has stopped takes no params, a refusal about its
  // state (FAILED_PRECONDITION, HTTP 409), not a dead worker's kUnavailable.
  ASSERT_TRUE(wait_stopped(m, "tune", "gain", 5s)) << node_state(m, "tune", "gain");
  const Status late = m.tune_node("tune", "gain", Json{{"gain", 0.5}}, /*wait=*/true);
  EXPECT_EQ(late.code(), ErrorCode::kFailedPrecondition) << late.to_string();
  EXPECT_NE(late.message().find("'gain' is stopped"), std::string::npos) << late.to_string();

  const Decoded d = decode_f32(out);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_NEAR(d.seconds(), 6.0, 0.05);
  const auto levels = window_levels(d);
  const double before = mean_level(levels, 0.3, tuned_at - 0.5);
  const double after = mean_level(levels, tuned_at + 0.6, 5.7);
  EXPECT_NEAR(after - before, -12.04, 0.5) << "before " << before << " dB, after " << after;
  // Where the level crosses the midpoint: near the moment of the tune (the pacer releases
  // media in real time from the session's start; rings add at most a few hundred ms).
  std::size_t step = 0;
  for (std::size_t i = 15; i < levels.size(); ++i) {
    if (levels[i] < (before + after) / 2) {
      step = i;
      break;
    }
  }
  const double step_s = static_cast<double>(step) * 0.02;
  EXPECT_NEAR(step_s, tuned_at, 0.4) << "step at " << step_s << " s, tuned at " << tuned_at;
}

TEST_F(SessionsTest, ApplyBatchInsertsAndRemovesANodeWithoutAGap) {
  SessionManager m(grouped_config());
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(m.create_session("splice", live_yaml(input_, out)));
  const auto started = Clock::now();
  std::this_thread::sleep_until(started + 1500ms);
  // gain -> enc becomes gain -> gain2 (-6 dB) -> enc, in one step.
  std::vector<BatchOperation> insert(4);
  insert[0].action = BatchOperation::Action::kAddNode;
  insert[0].node_id = "gain2";
  insert[0].kind = "audio::gain";
  insert[0].params = Json{{"gain", 0.5}};
  insert[1].action = BatchOperation::Action::kDisconnect;
  insert[1].from_node = "gain", insert[1].from_pin = "out", insert[1].to_node = "enc",
  insert[1].to_pin = "in";
  insert[2].action = BatchOperation::Action::kConnect;
  insert[2].from_node = "gain", insert[2].from_pin = "out", insert[2].to_node = "gain2",
  insert[2].to_pin = "in";
  insert[3].action = BatchOperation::Action::kConnect;
  insert[3].from_node = "gain2", insert[3].from_pin = "out", insert[3].to_node = "enc",
  insert[3].to_pin = "in";
  Status s = m.apply_batch("splice", insert);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  const double inserted_at = std::chrono::duration<double>(Clock::now() - started).count();
  std::this_thread::sleep_until(started + 3500ms);
  std::vector<BatchOperation> remove(4);
  remove[0].action = BatchOperation::Action::kDisconnect;
  remove[0].from_node = "gain", remove[0].from_pin = "out", remove[0].to_node = "gain2",
  remove[0].to_pin = "in";
  remove[1].action = BatchOperation::Action::kDisconnect;
  remove[1].from_node = "gain2", remove[1].from_pin = "out", remove[1].to_node = "enc",
  remove[1].to_pin = "in";
  remove[2].action = BatchOperation::Action::kConnect;
  remove[2].from_node = "gain", remove[2].from_pin = "out", remove[2].to_node = "enc",
  remove[2].to_pin = "in";
  remove[3].action = BatchOperation::Action::kRemoveNode;
  remove[3].node_id = "gain2";
  s = m.apply_batch("splice", remove);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  const double removed_at = std::chrono::duration<double>(Clock::now() - started).count();
  ASSERT_TRUE(wait_stopped(m, "splice", "writer", 15s)) << node_state(m, "splice", "writer");

  const Decoded d = decode_f32(out);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  // Nothing lost, nothing doubled: the same 6 s (one 20 ms frame of slack).
  EXPECT_NEAR(d.seconds(), 6.0, 0.021);
  const auto levels = window_levels(d);
  const double full = mean_level(levels, 0.3, inserted_at - 0.5);
  const double spliced = mean_level(levels, inserted_at + 0.6, removed_at - 0.5);
  const double restored = mean_level(levels, removed_at + 0.6, 5.7);
  EXPECT_NEAR(spliced - full, -6.02, 0.5);
  EXPECT_NEAR(restored - full, 0.0, 0.5);
  // No gap: no 20 ms window in the stream falls silent.
  for (std::size_t i = 5; i + 5 < levels.size(); ++i) {
    EXPECT_GT(levels[i], full - 12.0) << "a hole at " << static_cast<double>(i) * 0.02 << " s";
  }
  auto p = pipeline_json(m, "splice");
  ASSERT_TRUE(p);
  EXPECT_FALSE((*p)["nodes"].contains("gain2"));
}

TEST_F(SessionsTest, AnInvalidBatchChangesNothing) {
  SessionManager m(test_config());
  ASSERT_TRUE(m.create_session("atomic", ""));
  std::vector<BatchOperation> setup(2);
  setup[0].action = BatchOperation::Action::kAddNode;
  setup[0].node_id = "a";
  setup[0].kind = "audio::gain";
  setup[1].action = BatchOperation::Action::kAddNode;
  setup[1].node_id = "b";
  setup[1].kind = "audio::gain";
  ASSERT_TRUE(m.apply_batch("atomic", setup).is_ok());
  const Json before = *pipeline_json(m, "atomic");

  std::vector<BatchOperation> bad(3);
  bad[0].action = BatchOperation::Action::kAddNode;
  bad[0].node_id = "c";
  bad[0].kind = "audio::gain";
  bad[1].action = BatchOperation::Action::kConnect;
  bad[1].from_node = "a", bad[1].from_pin = "out", bad[1].to_node = "b", bad[1].to_pin = "in";
  bad[2].action = BatchOperation::Action::kConnect;  // no such pin
  bad[2].from_node = "b", bad[2].from_pin = "nope", bad[2].to_node = "c", bad[2].to_pin = "in";
  auto issues = m.validate_batch("atomic", bad);
  ASSERT_TRUE(issues);
  ASSERT_EQ(issues->size(), 1U);
  EXPECT_EQ((*issues)[0].operation, 2U);
  EXPECT_NE((*issues)[0].message.find("has no output 'nope'"), std::string::npos);
  Status s = m.apply_batch("atomic", bad);
  EXPECT_EQ(s.code(), ErrorCode::kGraphError);  // as the YAML compiler says it
  EXPECT_NE(s.message().find("operation 2:"), std::string::npos) << s.message();  // from 0
  const Json after = *pipeline_json(m, "atomic");
  EXPECT_EQ(after["nodes"].size(), before["nodes"].size());
  EXPECT_TRUE(after["connections"].empty());

  // Type checks, unknown kinds and bad params are refused before anything changes, too.
  std::vector<BatchOperation> more(3);
  more[0].action = BatchOperation::Action::kAddNode;
  more[0].node_id = "enc";
  more[0].kind = "audio::opus::encoder";
  more[1].action = BatchOperation::Action::kConnect;  // EncodedAudio into a RawAudio pin
  more[1].from_node = "enc", more[1].from_pin = "out", more[1].to_node = "a", more[1].to_pin = "in";
  more[2].action = BatchOperation::Action::kAddNode;
  more[2].node_id = "x";
  more[2].kind = "audio::gain";
  more[2].params = Json{{"gain", "loud"}};
  issues = m.validate_batch("atomic", more);
  ASSERT_TRUE(issues);
  ASSERT_EQ(issues->size(), 2U);
  EXPECT_NE((*issues)[0].message.find("pin type mismatch"), std::string::npos);
  EXPECT_EQ((*issues)[1].node_id, "x");
  EXPECT_FALSE(m.apply_batch("atomic", more).is_ok());
  EXPECT_EQ(pipeline_json(m, "atomic")->at("nodes").size(), 2U);

  // Tuning: unknown or fixed params and bad values are refused.
  EXPECT_EQ(m.tune_node("atomic", "a", Json{{"volume", 1}}, true).code(), ErrorCode::kInvalidParam);
  EXPECT_EQ(m.tune_node("atomic", "a", Json{{"gain", "x"}}, true).code(), ErrorCode::kInvalidParam);
  EXPECT_EQ(m.tune_node("atomic", "zz", Json{{"gain", 1}}, true).code(), ErrorCode::kNotFound);
  EXPECT_TRUE(m.tune_node("atomic", "a", Json{{"gain", 2.0}}, true).is_ok());
}

TEST_F(SessionsTest, KilledWorkerIsRestartedAndOtherSessionsDoNotNotice) {
  warm_up();
  const std::size_t fds_before = settled_fd_count();
  {
    SessionManager m(test_config());
    auto events = m.subscribe();
    const std::string out_a = dir_.file("a.ogg");
    const std::string out_b = dir_.file("b.ogg");
    ASSERT_TRUE(m.create_session("a", live_yaml(input_, out_a)));
    ASSERT_TRUE(m.create_session("b", live_yaml(input_, out_b)));
    std::this_thread::sleep_for(2s);
    const int victim = worker_pid(m, "a", "gain");
    ASSERT_GT(victim, 0);
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    // Reported, restarted, running again.
    bool recovering = false;
    bool running_again = false;
    // Generous for a loaded 2-core CI (other suites run alongside); the restart takes ~0.1 s.
    const auto killed_at = Clock::now();
    const auto deadline = killed_at + 15s;
    while (Clock::now() < deadline && !running_again) {
      auto e = events->next(100ms);
      if (!e) {
        continue;
      }
      const Json ev = event_json(*e);
      if (ev["event"] != "nodestatechanged" || ev["node_id"] != "gain") {
        continue;
      }
      const Json& st = ev["state"];
      if (st.is_object() && st.contains("Recovering")) {
        recovering = true;
        EXPECT_NE(st["Recovering"]["reason"].get<std::string>().find("signal 9"),
                  std::string::npos);
      } else if (recovering && st == "Running") {
        running_again = true;
      }
    }
    EXPECT_TRUE(recovering);
    EXPECT_TRUE(running_again);
    std::printf("killed worker running again after %.3f s\n",
                std::chrono::duration<double>(Clock::now() - killed_at).count());
    EXPECT_NE(worker_pid(m, "a", "gain"), victim);
    ASSERT_TRUE(wait_stopped(m, "a", "writer", 15s)) << pipeline_json(m, "a")->dump();
    ASSERT_TRUE(wait_stopped(m, "b", "writer", 15s)) << pipeline_json(m, "b")->dump();
    auto p = pipeline_json(m, "a");
    EXPECT_EQ((*p)["nodes"]["gain"]["restarts"].get<int>(), 1);

    // Session a goes on after the restart: at most the packet in hand is lost.
    const Decoded a = decode_f32(out_a);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_GT(a.seconds(), 5.8);
    // Session b is untouched: complete and continuous.
    const Decoded b = decode_f32(out_b);
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_NEAR(b.seconds(), 6.0, 0.021);
    const auto levels = window_levels(b);
    for (std::size_t i = 5; i + 5 < levels.size(); ++i) {
      EXPECT_GT(levels[i], -20.0) << "a hole in session b at " << static_cast<double>(i) * 0.02;
    }
    ASSERT_TRUE(m.destroy_session("a"));
    ASSERT_TRUE(m.destroy_session("b"));
    EXPECT_TRUE(skit_workers(::getpid()).empty());
    EXPECT_TRUE(shm_segments_of(::getpid()).empty());
  }
  EXPECT_TRUE(wait_until([] { return children_of(::getpid()).empty(); }, 2s));
  // ZeroMQ closes a socket's descriptors on its own thread, shortly after.
  EXPECT_TRUE(wait_until([&] { return count_fds() == fds_before; }, 2s))
      << count_fds() << " descriptors open, " << fds_before << " before";
}

TEST_F(SessionsTest, ANodeThatAlwaysCrashesEndsFailedAndTheSessionStaysUp) {
  SessionConfig config = test_config();
  config.max_restarts = 2;
  SessionManager m(config);
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(m.create_session("crashy", live_yaml(input_, out)));
  std::vector<BatchOperation> ops(4);
  ops[0].action = BatchOperation::Action::kAddNode;
  ops[0].node_id = "boom";
  ops[0].kind = "testing::fault";
  ops[0].params = Json{{"mode", "segfault"}};
  ops[1].action = BatchOperation::Action::kDisconnect;
  ops[1].from_node = "gain", ops[1].from_pin = "out", ops[1].to_node = "enc", ops[1].to_pin = "in";
  ops[2].action = BatchOperation::Action::kConnect;
  ops[2].from_node = "gain", ops[2].from_pin = "out", ops[2].to_node = "boom", ops[2].to_pin = "in";
  ops[3].action = BatchOperation::Action::kConnect;
  ops[3].from_node = "boom", ops[3].from_pin = "out", ops[3].to_node = "enc", ops[3].to_pin = "in";
  ASSERT_TRUE(m.apply_batch("crashy", ops).is_ok());
  ASSERT_TRUE(wait_until([&] { return node_state(m, "crashy", "boom") == "Failed"; }, 10s))
      << node_state(m, "crashy", "boom");
  auto p = pipeline_json(m, "crashy");
  const std::string reason = (*p)["nodes"]["boom"]["state"]["Failed"]["reason"];
  EXPECT_NE(reason.find("not restarted"), std::string::npos) << reason;
  EXPECT_EQ((*p)["nodes"]["boom"]["restarts"].get<int>(), 2);
  // The session and its other nodes stay up; the upstream does not block on the failed node.
  EXPECT_EQ(node_state(m, "crashy", "reader"), "Stopped");  // read everything
  EXPECT_TRUE(wait_until([&] { return node_state(m, "crashy", "gain") == "Stopped"; }, 25s))
      << node_state(m, "crashy", "gain");
  EXPECT_TRUE(m.find_session("crashy"));
  EXPECT_GE(m.stats().worker_crashes, 3U);
  // And the manager still creates sessions.
  EXPECT_TRUE(m.create_session("after", ""));
}

TEST_F(SessionsTest, AKilledGroupedWorkerRestartsTheWholeSession) {
  SessionManager m(grouped_config());
  auto events = m.subscribe();
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(m.create_session("grouped", live_yaml(input_, out)));
  std::this_thread::sleep_for(1500ms);
  const int victim = worker_pid(m, "grouped", "gain");
  EXPECT_EQ(worker_pid(m, "grouped", "reader"), victim) << "one worker for the session";
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  // Every node of the worker reports the crash, then runs again (the reader may already be
  // done: it reads the whole file at once).
  bool saw_recovering = false;
  const auto all_restarted = [&] {
    while (auto e = events->next(0ms)) {
      const Json st = event_json(*e)["state"];
      saw_recovering = saw_recovering || (st.is_object() && st.contains("Recovering"));
    }
    auto p = pipeline_json(m, "grouped");
    for (const auto& [id, node] : (*p)["nodes"].items()) {
      const Json& st = node["state"];
      if (node["restarts"] != 1 || (st.is_object() && st.contains("Recovering"))) {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(wait_until(all_restarted, 5s));
  EXPECT_TRUE(saw_recovering);
  EXPECT_NE(worker_pid(m, "grouped", "gain"), victim);
  // The restarted nodes start over: the reader from the top, the writer a new file, which
  // is complete when the stream ends.
  ASSERT_TRUE(wait_stopped(m, "grouped", "writer", 30s));  // 6 s of media; a loaded CI took over 15 s once
  const Decoded d = decode_f32(out);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_NEAR(d.seconds(), 6.0, 0.021);
}

TEST_F(SessionsTest, AHungWorkerIsKilledAndRestarted) {
  SessionConfig config = test_config();
  config.heartbeat_timeout = 1000ms;
  SessionManager m(config);
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(m.create_session("hung", live_yaml(input_, out)));
  std::this_thread::sleep_for(1s);
  const int victim = worker_pid(m, "hung", "dec");
  ASSERT_EQ(::kill(victim, SIGSTOP), 0);  // alive but silent: no heartbeats
  ASSERT_TRUE(wait_until([&] { return node_state(m, "hung", "dec") == "Recovering"; }, 3s));
  auto p = pipeline_json(m, "hung");
  const std::string reason = (*p)["nodes"]["dec"]["state"]["Recovering"]["reason"];
  EXPECT_NE(reason.find("stopped answering"), std::string::npos) << reason;
  ASSERT_TRUE(wait_until([&] { return node_state(m, "hung", "dec") == "Running"; }, 3s));
  EXPECT_NE(worker_pid(m, "hung", "dec"), victim);
  ASSERT_TRUE(wait_stopped(m, "hung", "writer", 15s));
  const Decoded d = decode_f32(out);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_GT(d.seconds(), 5.8);
}

TEST_F(SessionsTest, AWorkerOverItsMemoryLimitIsStoppedAndReported) {
  SessionConfig config = test_config();
  config.worker_memory_limit_bytes = 256ULL << 20;
  config.max_restarts = 0;
  SessionManager m(config);
  const std::string out = dir_.file("out.ogg");
  ASSERT_TRUE(m.create_session("hog", live_yaml(input_, out)));
  std::vector<BatchOperation> ops(2);
  ops[0].node_id = "hog";
  ops[0].kind = "testing::fault";
  ops[0].params = Json{{"mode", "oom"}};
  ops[1].action = BatchOperation::Action::kConnect;
  ops[1].from_node = "dec", ops[1].from_pin = "out", ops[1].to_node = "hog", ops[1].to_pin = "in";
  ops[1].mode = ConnectionMode::kBestEffort;
  ASSERT_TRUE(m.apply_batch("hog", ops).is_ok());
  ASSERT_TRUE(wait_until([&] { return node_state(m, "hog", "hog") == "Failed"; }, 10s));
  auto p = pipeline_json(m, "hog");
  const std::string reason = (*p)["nodes"]["hog"]["state"]["Failed"]["reason"];
  EXPECT_NE(reason.find("memory limit"), std::string::npos) << reason;
  // The main chain never noticed.
  ASSERT_TRUE(wait_stopped(m, "hog", "writer", 15s));
  EXPECT_NEAR(decode_f32(out).seconds(), 6.0, 0.021);
}

TEST_F(SessionsTest, LimitsAreEnforcedWithClearErrors) {
  SessionConfig config = test_config();
  config.max_sessions = 2;
  config.max_nodes_per_session = 3;
  SessionManager m(config);
  ASSERT_TRUE(m.create_session("one", ""));
  EXPECT_EQ(m.create_session("one", "").status().code(), ErrorCode::kAlreadyExists);
  ASSERT_TRUE(m.create_session(std::nullopt, ""));
  auto third = m.create_session("three", "");
  EXPECT_EQ(third.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("limit 2"), std::string::npos);
  std::vector<BatchOperation> ops(4);
  for (int i = 0; i < 4; ++i) {
    ops[static_cast<std::size_t>(i)].node_id = "g" + std::to_string(i);
    ops[static_cast<std::size_t>(i)].kind = "audio::gain";
  }
  Status s = m.apply_batch("one", ops);
  EXPECT_EQ(s.code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(s.message().find("at most 3 nodes"), std::string::npos) << s.message();
  EXPECT_EQ(m.destroy_session("nope").status().code(), ErrorCode::kNotFound);
  for (const auto& info : m.list_sessions()) {
    ASSERT_TRUE(m.destroy_session(info.id));
  }
  auto bad = m.create_session("bad", "nodes:\n  a: {kind: audio::gain, needs: zz}\n");
  EXPECT_FALSE(bad);
  EXPECT_NE(bad.status().to_string().find("line 2"), std::string::npos) << bad.status().to_string();
  EXPECT_EQ(bad.status().code(), ErrorCode::kGraphError);
  auto host = m.create_session("host", "nodes:\n  in: {kind: streamkit::http_input}\n"
                                       "  out: {kind: streamkit::http_output, needs: in}\n");
  EXPECT_FALSE(host);
}

TEST_F(SessionsTest, IdleSessionsAreDestroyed) {
  SessionConfig config = test_config();
  config.idle_timeout = std::chrono::seconds(1);
  SessionManager m(config);
  auto events = m.subscribe();
  ASSERT_TRUE(m.create_session("idle", ""));
  EXPECT_TRUE(wait_until([&] { return m.list_sessions().empty(); }, 4s));
}

TEST_F(SessionsTest, TwoHundredCyclesLeakNothing) {
  SessionManager m(test_config());
  ASSERT_TRUE(m.create_session("warm", ""));
  ASSERT_TRUE(m.destroy_session("warm"));
  const std::size_t fds_before = settled_fd_count();
  auto events = m.subscribe(64);  // a subscriber that never reads: bounded, never blocking
  for (int i = 0; i < 200; ++i) {
    auto created = m.create_session("cycle", "");
    ASSERT_TRUE(created) << created.status().to_string();
    std::vector<BatchOperation> ops(3);
    ops[0].node_id = "a";
    ops[0].kind = "audio::gain";
    ops[1].node_id = "b";
    ops[1].kind = "audio::gain";
    ops[2].action = BatchOperation::Action::kConnect;
    ops[2].from_node = "a", ops[2].from_pin = "out", ops[2].to_node = "b", ops[2].to_pin = "in";
    ASSERT_TRUE(m.apply_batch("cycle", ops).is_ok());
    // The workers really run: wait for both nodes, then tune one synchronously.
    ASSERT_TRUE(wait_until([&] {
      return node_state(m, "cycle", "a") == "Running" && node_state(m, "cycle", "b") == "Running";
    }, 5s));
    ASSERT_TRUE(m.tune_node("cycle", "a", Json{{"gain", 0.5}}, true).is_ok());
    if (i % 2 == 0) {
      std::vector<BatchOperation> rm(1);
      rm[0].action = BatchOperation::Action::kRemoveNode;
      rm[0].node_id = "b";
      ASSERT_TRUE(m.apply_batch("cycle", rm).is_ok());
    }
    ASSERT_TRUE(m.destroy_session("cycle"));
  }
  EXPECT_TRUE(skit_workers(::getpid()).empty());
  EXPECT_TRUE(shm_segments_of(::getpid()).empty());
  EXPECT_TRUE(wait_until([] { return children_of(::getpid()).empty(); }, 2s));
  EXPECT_TRUE(wait_until([&] { return count_fds() == fds_before; }, 2s))
      << count_fds() << " descriptors open, " << fds_before << " before";
  EXPECT_GT(events->dropped(), 0U);
  EXPECT_EQ(m.stats().sessions_created, 201U);
}

}  // namespace
}  // namespace skit::testing

namespace skit::testing {
namespace {
// A node added after the stream ended used to wait forever, reporting Running with 0 packets.
TEST(SessionsEnded, ConnectingToANodeThatHasEndedIsRefusedWithTheReason) {
  TempDir dir;
  const std::string in = dir.file("short.ogg");
  ASSERT_TRUE(make_sine(in, 440, 0.5, 0.5, 48000, 1, {"-c:a", "libopus"}));
  SessionManager m(grouped_config());
  ASSERT_TRUE(m.create_session("ended", live_yaml(in, dir.file("out.ogg"))));
  ASSERT_TRUE(wait_stopped(m, "ended", "gain", 15s)) << node_state(m, "ended", "gain");
  std::vector<BatchOperation> late(2);
  late[0].action = BatchOperation::Action::kAddNode;
  late[0].node_id = "late";
  late[0].kind = "audio::gain";
  late[1].action = BatchOperation::Action::kConnect;
  late[1].from_node = "gain", late[1].from_pin = "out", late[1].to_node = "late",
  late[1].to_pin = "in";
  auto issues = m.validate_batch("ended", late);
  ASSERT_TRUE(issues);
  ASSERT_EQ(issues->size(), 1U);
  EXPECT_EQ((*issues)[0].operation, 1U);
  EXPECT_NE((*issues)[0].message.find("node 'gain' has stopped (completed)"), std::string::npos)
      << (*issues)[0].message;
  EXPECT_FALSE(m.apply_batch("ended", late).is_ok());
  auto p = pipeline_json(m, "ended");
  EXPECT_FALSE((*p)["nodes"].contains("late")) << "a refused batch changed the session";
  ASSERT_TRUE(m.destroy_session("ended"));
}
}  // namespace
}  // namespace skit::testing
