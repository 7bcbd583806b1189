// SPDX-License-Identifier: MPL-2.0
// Dynamic sessions through `skit serve` end to end: the REST endpoints (/api/v1/sessions)
// driven by an HTTP client, and the WebSocket control plane (/api/v1/control) driven by a
// Boost.Beast WebSocket client: StreamKit's envelope and every action, the events they cause,
// errors, roles, limits, a client that never reads while another works, and a disconnect or
// shutdown that leaves nothing behind. Each test runs its own server (repository root as
// working directory) and stops it with SIGTERM: it must exit 0 with no worker process and no
// shared-memory segment left.
#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include "session_clients.hpp"

namespace skit::testing {
namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class Sessions : public ::testing::Test {
 protected:
  void start(const std::string& extra_config = "") {
    server_ = std::make_unique<SkitServer>(session_config(extra_config));
    ASSERT_TRUE(server_->up()) << "skit serve did not start:\n" << server_->log();
  }

  void TearDown() override {
    if (!server_) {
      return;
    }
    const pid_t pid = server_->pid();
    EXPECT_EQ(server_->stop(), 0) << "skit serve did not exit cleanly on SIGTERM";
    EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 5s))
        << "worker processes outlived the server";
    EXPECT_TRUE(shm_segments_of(pid).empty()) << "shared memory left behind";
    if (HasFailure()) {
      const std::string log = server_->log();
      std::printf("---- server log (last 8 KiB) ----\n%s\n",
                  log.substr(log.size() > 8192 ? log.size() - 8192 : 0).c_str());
    }
  }

  Response get(const std::string& target, const std::string& token = kOperatorToken) {
    return http_call(server_->http_port(), http::verb::get, target, token);
  }
  Response post(const std::string& target, const json& body,
                    const std::string& token = kOperatorToken) {
    return http_call(server_->http_port(), http::verb::post, target, token, body.dump());
  }
  Response del(const std::string& target, const std::string& token = kOperatorToken) {
    return http_call(server_->http_port(), http::verb::delete_, target, token);
  }

  /// POST /api/v1/sessions; expects 200 and returns the body.
  json create(const json& body) {
    const Response r = post("/api/v1/sessions", body);
    EXPECT_EQ(r.status, 200) << r.describe();
    return r.body_json();
  }

  std::unique_ptr<WsClient> ws(WsClient::Options options = {}) {
    auto client = std::make_unique<WsClient>(server_->http_port(), std::move(options));
    EXPECT_TRUE(client->open()) << "handshake: " << client->handshake_status() << " "
                                << client->error();
    return client;
  }

  std::unique_ptr<SkitServer> server_;
};

/// An event predicate: payload.event == `name` (and session_id, node_id when given).
std::function<bool(const json&)> event(const std::string& name, const std::string& session = "",
                                       const std::string& node = "") {
  return [=](const json& e) {
    return e.value("event", "") == name && (session.empty() || e.value("session_id", "") == session) &&
           (node.empty() || e.value("node_id", "") == node);
  };
}

// ---------------------------------------------------------------------------------------------
// REST

TEST_F(Sessions, RestCreatesListsGetsAndDeletesASessionByNameAndById) {
  start();
  const json created = create({{"name", "alpha"}});
  ASSERT_TRUE(created.is_object());
  const std::string id = created.value("session_id", "");
  EXPECT_TRUE(is_uuid_v4(id)) << created.dump();
  EXPECT_EQ(created.value("name", ""), "alpha");
  EXPECT_TRUE(is_rfc3339(created.value("created_at", ""))) << created.dump();
  EXPECT_EQ(created.size(), 3U) << "StreamKit's shape: {session_id, name, created_at}";

  const Response list = get("/api/v1/sessions");
  ASSERT_EQ(list.status, 200) << list.describe();
  EXPECT_EQ(list.header("content-type"), "application/json");
  const json sessions = list.body_json();
  ASSERT_TRUE(sessions.is_array()) << list.body;
  ASSERT_EQ(sessions.size(), 1U);
  EXPECT_EQ(sessions[0], (json{{"id", id}, {"name", "alpha"}, {"created_at", created["created_at"]}}));

  for (const std::string& key : {std::string("alpha"), id}) {
    const Response p = get("/api/v1/sessions/" + key + "/pipeline");
    ASSERT_EQ(p.status, 200) << p.describe();
    const json pipeline = p.body_json();
    EXPECT_TRUE(pipeline["nodes"].is_object()) << p.body;
    EXPECT_TRUE(pipeline["nodes"].empty()) << p.body;
    EXPECT_TRUE(pipeline["connections"].is_array()) << p.body;
  }

  const Response d = del("/api/v1/sessions/alpha");
  ASSERT_EQ(d.status, 200) << d.describe();
  EXPECT_EQ(d.body_json(), (json{{"session_id", id}}));
  EXPECT_EQ(get("/api/v1/sessions").body_json(), json::array());

  // A generated name when none is given; deleting by id.
  const json unnamed = create({{"yaml", ""}});
  EXPECT_FALSE(unnamed.value("name", "").empty()) << unnamed.dump();
  EXPECT_EQ(del("/api/v1/sessions/" + unnamed.value("session_id", "")).status, 200);
}

TEST_F(Sessions, RestCreatesASessionFromYamlWithItsNodesAndConnections) {
  start();
  const json created = create({{"name", "from-yaml"}, {"yaml", decode_pipeline()}});
  const Response p = get("/api/v1/sessions/from-yaml/pipeline");
  ASSERT_EQ(p.status, 200) << p.describe();
  const json pipeline = p.body_json();
  std::set<std::string> ids;
  for (const auto& [id, node] : pipeline["nodes"].items()) {
    ids.insert(id);
    EXPECT_TRUE(node.contains("state")) << id << ": " << node.dump();
  }
  EXPECT_EQ(ids, (std::set<std::string>{"src", "demux", "decode", "loud", "sink"}));
  EXPECT_EQ(pipeline["nodes"]["loud"]["kind"], "audio::gain");
  EXPECT_EQ(pipeline["nodes"]["src"]["params"]["path"], "samples/audio/speech.ogg");
  ASSERT_EQ(pipeline["connections"].size(), 4U) << p.body;
  bool found = false;
  for (const auto& c : pipeline["connections"]) {
    found |= c.value("from_node", "") == "decode" && c.value("to_node", "") == "loud";
  }
  EXPECT_TRUE(found) << p.body;
  EXPECT_EQ(del("/api/v1/sessions/from-yaml").status, 200);
}

TEST_F(Sessions, RestADuplicateNameIsConflict) {
  start();
  create({{"name", "taken"}});
  const Response again = post("/api/v1/sessions", {{"name", "taken"}});
  EXPECT_EQ(again.status, 409) << again.describe();
  EXPECT_TRUE(contains(again.body, "taken")) << again.body;
  EXPECT_TRUE(contains(again.header("content-type"), "text/plain"));
  EXPECT_EQ(get("/api/v1/sessions").body_json().size(), 1U);
}

TEST_F(Sessions, RestAnUnknownSessionIsNotFound) {
  start();
  EXPECT_EQ(get("/api/v1/sessions/nope/pipeline").status, 404);
  EXPECT_EQ(del("/api/v1/sessions/nope").status, 404);
  EXPECT_EQ(del("/api/v1/sessions/123e4567-e89b-42d3-a456-426614174000").status, 404);
  EXPECT_EQ(get("/api/v1/sessions/nope/other").status, 404);
}

TEST_F(Sessions, RestBadYamlIsBadRequestNamingTheNodeAndTheLine) {
  start();
  const Response r = post("/api/v1/sessions", {{"name", "bad"}, {"yaml", decode_pipeline("99")}});
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_TRUE(contains(r.body, "line 16")) << r.body;
  EXPECT_TRUE(contains(r.body, "loud")) << r.body;
  EXPECT_TRUE(contains(r.body, "gain")) << r.body;

  const Response syntax = post("/api/v1/sessions", {{"yaml", "nodes:\n  a: [unclosed\n"}});
  EXPECT_EQ(syntax.status, 400) << syntax.describe();
  EXPECT_TRUE(contains(syntax.body, "line")) << syntax.body;

  const Response kind = post("/api/v1/sessions", {{"yaml", "nodes:\n  x:\n    kind: audio::nope\n"}});
  EXPECT_EQ(kind.status, 400) << kind.describe();
  EXPECT_TRUE(contains(kind.body, "audio::nope")) << kind.body;
  EXPECT_TRUE(contains(kind.body, "line 3")) << kind.body;

  EXPECT_EQ(post("/api/v1/sessions", json::array()).status, 400);
  EXPECT_EQ(http_call(server_->http_port(), http::verb::post, "/api/v1/sessions", kOperatorToken,
                      "{not json")
                .status,
            400);
  EXPECT_EQ(post("/api/v1/sessions", {{"yaml", 42}}).status, 400);
  EXPECT_EQ(get("/api/v1/sessions").body_json(), json::array()) << "nothing was created";
}

TEST_F(Sessions, RestOneshotOnlyNodesAreRefusedWithAClearMessage) {
  start();
  const Response r = post(
      "/api/v1/sessions",
      {{"yaml", "nodes:\n  in:\n    kind: streamkit::http_input\n  out:\n    kind: core::sink\n    needs: in\n"}});
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_TRUE(contains(r.body, "streamkit::http_input")) << r.body;
  EXPECT_TRUE(contains(r.body, "oneshot")) << r.body;
}

TEST_F(Sessions, RestAPathEscapeIsForbidden) {
  start();
  std::string yaml = decode_pipeline();
  yaml.replace(yaml.find("samples/audio/speech.ogg"), std::string("samples/audio/speech.ogg").size(),
               "samples/../../../../etc/passwd");
  const Response r = post("/api/v1/sessions", {{"name", "escape"}, {"yaml", yaml}});
  EXPECT_EQ(r.status, 403) << r.describe();
  EXPECT_TRUE(contains(r.body, "security.allowed_file_paths")) << r.body;
  EXPECT_TRUE(contains(r.body, "src")) << r.body;
  EXPECT_EQ(get("/api/v1/sessions").body_json(), json::array());
}

TEST_F(Sessions, RestMaxSessionsIsTooManyRequestsUntilOneIsDeleted) {
  start("sessions:\n  max_sessions: 2\n");
  create({{"name", "one"}});
  create({{"name", "two"}});
  const Response third = post("/api/v1/sessions", {{"name", "three"}});
  EXPECT_EQ(third.status, 429) << third.describe();
  EXPECT_TRUE(contains(third.body, "2")) << third.body;
  EXPECT_EQ(del("/api/v1/sessions/one").status, 200);
  EXPECT_EQ(post("/api/v1/sessions", {{"name", "three"}}).status, 200);
}

TEST_F(Sessions, RestViewersMayListAndReadButNotCreateOrDestroy) {
  start();
  create({{"name", "mine"}});
  EXPECT_EQ(get("/api/v1/sessions", kViewerToken).status, 200);
  EXPECT_EQ(get("/api/v1/sessions/mine/pipeline", kViewerToken).status, 200);
  const Response c = post("/api/v1/sessions", {{"name", "theirs"}}, kViewerToken);
  EXPECT_EQ(c.status, 403) << c.describe();
  EXPECT_TRUE(contains(c.body, "viewer")) << c.body;
  EXPECT_EQ(del("/api/v1/sessions/mine", kViewerToken).status, 403);
  EXPECT_EQ(get("/api/v1/sessions", "").status, 401);
  EXPECT_EQ(post("/api/v1/sessions", {{"name", "x"}}, "").status, 401);
  EXPECT_EQ(del("/api/v1/sessions/mine", kAdminToken).status, 200);
  // The Origin guard covers the session endpoints like every mutating /api request.
  const Response origin =
      http_call(server_->http_port(), http::verb::post, "/api/v1/sessions", kOperatorToken,
                R"({"name":"evil"})", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(origin.status, 403) << origin.describe();
  EXPECT_EQ(get("/api/v1/sessions").body_json(), json::array());
}

// Sessions belong to the token that created them: an operator (no access_all_sessions) lists,
// reads, edits, plays and destroys only its own; another operator's session is "not found" to
// it, on REST and on the control plane, and its events never reach it. Viewers watch every
// session, admins run every session.
TEST_F(Sessions, AnOperatorSeesAndEditsOnlyTheSessionsOfItsOwnToken) {
  const std::string bob = "bob-operator-token-012345";
  std::string config = session_config();
  const std::string marker = "    - {name: dashboard";
  config.insert(config.find(marker), "    - {name: bob, token: \"" + bob + "\", role: operator}\n");
  server_ = std::make_unique<SkitServer>(config);
  ASSERT_TRUE(server_->up()) << server_->log();
  auto alice_ws = ws();
  WsClient::Options as_bob;
  as_bob.token = bob;
  auto bob_ws = ws(as_bob);

  const json made = create({{"name", "alices"}});  // the "ci" operator token
  const std::string id = made.value("session_id", "");
  ASSERT_FALSE(id.empty()) << made.dump();
  ASSERT_FALSE(alice_ws->wait_event(event("sessioncreated", id), 5s).is_null());

  const auto names = [&](const std::string& token) {
    std::set<std::string> out;
    for (const auto& s : get("/api/v1/sessions", token).body_json()) {
      out.insert(s.value("name", ""));
    }
    return out;
  };
  EXPECT_EQ(names(kOperatorToken), std::set<std::string>{"alices"});
  EXPECT_TRUE(names(bob).empty()) << "bob sees alice's session";
  EXPECT_EQ(names(kViewerToken), std::set<std::string>{"alices"});
  EXPECT_EQ(names(kAdminToken), std::set<std::string>{"alices"});

  // REST: not found to bob, whatever he tries; alice's session is untouched.
  const Response read = get("/api/v1/sessions/alices/pipeline", bob);
  EXPECT_EQ(read.status, 404) << read.describe();
  EXPECT_TRUE(contains(read.body, "not found")) << read.body;
  EXPECT_EQ(del("/api/v1/sessions/" + id, bob).status, 404);
  const Response whip = http_call(server_->http_port(), http::verb::post, "/whip/" + id + "/mic", bob,
                                  "v=0\r\n", {{"Content-Type", "application/sdp"}});
  EXPECT_EQ(whip.status, 404) << whip.describe();

  // The control plane: the same, and bob's actions cause nothing in alice's session.
  const json listed = bob_ws->request({{"action", "listsessions"}});
  EXPECT_EQ(listed.value("sessions", json::array()), json::array()) << listed.dump();
  for (const json& payload :
       {json{{"action", "getpipeline"}, {"session_id", id}},
        json{{"action", "addnode"}, {"session_id", id}, {"node_id", "g"}, {"kind", "audio::gain"}},
        json{{"action", "tunenode"}, {"session_id", id}, {"node_id", "g"}, {"message", {{"UpdateParams", {{"gain", 2.0}}}}}},
        json{{"action", "applybatch"}, {"session_id", id}, {"operations", json::array()}},
        json{{"action", "destroysession"}, {"session_id", "alices"}}}) {
    const json r = bob_ws->request(payload);
    EXPECT_EQ(r.value("action", ""), "error") << payload.dump() << " -> " << r.dump();
    EXPECT_TRUE(contains(r.value("message", ""), "not found")) << r.dump();
  }
  // Alice's own edit goes through, and only her client hears of it.
  const json added = alice_ws->request(
      {{"action", "addnode"}, {"session_id", id}, {"node_id", "g"}, {"kind", "audio::gain"}});
  EXPECT_EQ(added.value("action", ""), "success") << added.dump();
  EXPECT_FALSE(alice_ws->wait_event(event("nodeadded", id, "g"), 5s).is_null());
  EXPECT_EQ(del("/api/v1/sessions/" + id, kOperatorToken).status, 200);
  EXPECT_FALSE(alice_ws->wait_event(event("sessiondestroyed", id), 5s).is_null());
  std::this_thread::sleep_for(200ms);  // anything bob would be sent has arrived by now
  for (const auto& e : bob_ws->events()) {
    EXPECT_NE(e.value("session_id", ""), id) << "bob received an event of alice's session: " << e.dump();
  }
  // Bob's own session is his.
  const Response his = post("/api/v1/sessions", {{"name", "bobs"}}, bob);
  ASSERT_EQ(his.status, 200) << his.describe();
  EXPECT_EQ(names(bob), std::set<std::string>{"bobs"});
  EXPECT_TRUE(names(kOperatorToken).empty());
  EXPECT_EQ(del("/api/v1/sessions/bobs", bob).status, 200);
}

TEST_F(Sessions, MetricsAndHealthCountSessions) {
  start();
  create({{"name", "m1"}});
  create({{"name", "m2"}});
  EXPECT_EQ(del("/api/v1/sessions/m1").status, 200);
  const json health = get("/healthz", "").body_json();
  EXPECT_EQ(health.value("sessions", -1), 1) << health.dump();
  const Response m = get("/metrics");
  ASSERT_EQ(m.status, 200);
  for (const char* line : {"skit_sessions_active 1", "skit_sessions_created_total 2",
                           "skit_sessions_destroyed_total 1", "skit_worker_restarts_total 0",
                           "skit_session_worker_crashes_total 0", "skit_session_nodes_failed_total 0",
                           "skit_session_events_dropped_total", "skit_websocket_connections 0"}) {
    EXPECT_TRUE(contains(m.body, line)) << line << "\n" << m.body;
  }
}

TEST(SessionsConfig, TheSessionsSectionIsCheckedWithItsLines) {
  TempDir dir;
  const std::string good = dir.file("good.yaml");
  write_file(good,
             "sessions:\n"
             "  placement: grouped\n"
             "  ring_capacity: 8\n"
             "  max_sessions: 10\n"
             "  max_nodes_per_session: 20\n"
             "  idle_timeout_seconds: 300\n"
             "  max_restarts: 3\n"
             "  restart_window_seconds: 30\n"
             "  backoff_initial_ms: 50\n"
             "  backoff_max_ms: 2000\n"
             "  worker_memory_limit_mb: 512\n"
             "  event_queue_capacity: 256\n"
             "  heartbeat_timeout_ms: 2000\n");
  const RunResult ok = run_skit({"config", "check", good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;

  const std::string bad = dir.file("bad.yaml");
  write_file(bad,
             "sessions:\n"
             "  max_sessions: 0\n"
             "  placement: everywhere\n"
             "  max_sesions: 3\n"
             "  backoff_initial_ms: 900\n"
             "  backoff_max_ms: 100\n");
  const RunResult r = run_skit({"config", "check", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, bad + ":2:")) << r.err;
  EXPECT_TRUE(contains(r.err, "sessions.max_sessions must be between 1")) << r.err;
  EXPECT_TRUE(contains(r.err, bad + ":3:")) << r.err;
  EXPECT_TRUE(contains(r.err, bad + ":4:")) << r.err;
  EXPECT_TRUE(contains(r.err, "unknown key 'sessions.max_sesions'")) << r.err;
  EXPECT_TRUE(contains(r.err, "backoff_initial_ms (900) must not exceed")) << r.err;
}

// ---------------------------------------------------------------------------------------------
// WebSocket control plane

TEST_F(Sessions, ControlEveryActionAnswersWithItsResponseAndCausesItsEvents) {
  start();
  auto client = ws();
  ASSERT_TRUE(client->open());

  // getpermissions, listnodes.
  const json perms = client->request({{"action", "getpermissions"}});
  EXPECT_EQ(perms.value("action", ""), "permissions") << perms.dump();
  EXPECT_EQ(perms.value("role", ""), "operator");
  EXPECT_EQ(perms["permissions"].value("create_sessions", false), true);
  const json nodes = client->request({{"action", "listnodes"}});
  EXPECT_EQ(nodes.value("action", ""), "nodeslisted");
  ASSERT_TRUE(nodes["nodes"].is_array());
  const Response schema = get("/api/v1/schema/nodes");
  EXPECT_EQ(nodes["nodes"], schema.body_json()) << "the same node definitions as the schema";

  // createsession: response and event.
  const json created = client->request({{"action", "createsession"}, {"name", "live"}});
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump();
  const std::string sid = created.value("session_id", "");
  EXPECT_TRUE(is_uuid_v4(sid)) << created.dump();
  EXPECT_EQ(created.value("name", ""), "live");
  EXPECT_TRUE(is_rfc3339(created.value("created_at", "")));
  const json created_event = client->wait_event(event("sessioncreated", sid));
  ASSERT_TRUE(created_event.is_object()) << "no sessioncreated event";

  const json listed = client->request({{"action", "listsessions"}});
  EXPECT_EQ(listed.value("action", ""), "sessionslisted");
  ASSERT_EQ(listed["sessions"].size(), 1U) << listed.dump();
  EXPECT_EQ(listed["sessions"][0].value("id", ""), sid);
  EXPECT_EQ(listed["sessions"][0].value("name", ""), "live");

  // addnode x2, connect.
  const json add1 = client->request(
      {{"action", "addnode"}, {"session_id", sid}, {"node_id", "pass"}, {"kind", "core::passthrough"}});
  EXPECT_EQ(add1.value("action", ""), "success") << add1.dump();
  const json add2 = client->request({{"action", "addnode"},
                                     {"session_id", "live"},  // names work as well as ids
                                     {"node_id", "gain"},
                                     {"kind", "audio::gain"},
                                     {"params", {{"gain", 1.0}}}});
  EXPECT_EQ(add2.value("action", ""), "success") << add2.dump();
  const json added = client->wait_event(event("nodeadded", sid, "gain"));
  ASSERT_TRUE(added.is_object()) << "no nodeadded event";
  EXPECT_EQ(added.value("kind", ""), "audio::gain");
  EXPECT_TRUE(client->wait_event(event("nodeadded", sid, "pass")).is_object());
  EXPECT_TRUE(client->wait_event(event("nodestatechanged", sid, "gain"), 15s).is_object())
      << "no nodestatechanged event for the new node";

  const json conn = client->request({{"action", "connect"},
                                     {"session_id", sid},
                                     {"from_node", "pass"},
                                     {"from_pin", "out"},
                                     {"to_node", "gain"},
                                     {"to_pin", "in"},
                                     {"mode", "best_effort"}});
  EXPECT_EQ(conn.value("action", ""), "success") << conn.dump();
  const json conn_event = client->wait_event(event("connectionadded", sid));
  ASSERT_TRUE(conn_event.is_object()) << "no connectionadded event";
  EXPECT_EQ(conn_event.value("from_node", ""), "pass");
  EXPECT_EQ(conn_event.value("to_node", ""), "gain");
  EXPECT_EQ(conn_event.value("to_pin", ""), "in");

  // getpipeline.
  const json got = client->request({{"action", "getpipeline"}, {"session_id", sid}});
  ASSERT_EQ(got.value("action", ""), "pipeline") << got.dump();
  EXPECT_EQ(got["pipeline"]["nodes"]["gain"]["kind"], "audio::gain");
  EXPECT_EQ(got["pipeline"]["nodes"]["pass"]["kind"], "core::passthrough");
  ASSERT_EQ(got["pipeline"]["connections"].size(), 1U) << got.dump();

  // tunenode (sync) and tunenodeasync (no response).
  const json tuned = client->request({{"action", "tunenode"},
                                      {"session_id", sid},
                                      {"node_id", "gain"},
                                      {"message", {{"UpdateParams", {{"gain", 0.5}}}}}});
  EXPECT_EQ(tuned.value("action", ""), "success") << tuned.dump();
  const json changed = client->wait_event([&](const json& e) {
    return event("nodeparamschanged", sid, "gain")(e) && e["params"].value("gain", 0.0) == 0.5;
  });
  ASSERT_TRUE(changed.is_object()) << "no nodeparamschanged event with gain 0.5";
  const std::string async_id = client->send_request({{"action", "tunenodeasync"},
                                                     {"session_id", sid},
                                                     {"node_id", "gain"},
                                                     {"message", {{"UpdateParams", {{"gain", 0.25}}}}}});
  EXPECT_TRUE(client
                  ->wait_event([&](const json& e) {
                    return event("nodeparamschanged", sid, "gain")(e) &&
                           e["params"].value("gain", 0.0) == 0.25;
                  })
                  .is_object())
      << "no nodeparamschanged event with gain 0.25";
  const json after = client->request({{"action", "getpipeline"}, {"session_id", sid}});
  EXPECT_DOUBLE_EQ(after["pipeline"]["nodes"]["gain"]["params"].value("gain", 0.0), 0.25);

  // validatebatch: a good batch has no errors, a bad one lists them and changes nothing.
  const json good_batch = {
      {{"action", "addnode"}, {"node_id", "gain2"}, {"kind", "audio::gain"}, {"params", {{"gain", 2.0}}}},
      {{"action", "disconnect"}, {"from_node", "pass"}, {"from_pin", "out"}, {"to_node", "gain"}, {"to_pin", "in"}},
      {{"action", "connect"}, {"from_node", "pass"}, {"from_pin", "out"}, {"to_node", "gain2"}, {"to_pin", "in"}},
      {{"action", "connect"}, {"from_node", "gain2"}, {"from_pin", "out"}, {"to_node", "gain"}, {"to_pin", "in"}}};
  const json valid = client->request({{"action", "validatebatch"}, {"session_id", sid}, {"operations", good_batch}});
  EXPECT_EQ(valid.value("action", ""), "validationresult") << valid.dump();
  EXPECT_EQ(valid["errors"], json::array()) << valid.dump();
  const json bad_batch = {
      {{"action", "addnode"}, {"node_id", "x"}, {"kind", "audio::nope"}},
      {{"action", "removenode"}, {"node_id", "missing"}}};
  const json invalid = client->request({{"action", "validatebatch"}, {"session_id", sid}, {"operations", bad_batch}});
  EXPECT_EQ(invalid.value("action", ""), "validationresult") << invalid.dump();
  ASSERT_GE(invalid["errors"].size(), 1U) << invalid.dump();
  for (const auto& e : invalid["errors"]) {
    EXPECT_EQ(e.value("error_type", ""), "error") << e.dump();
    EXPECT_FALSE(e.value("message", "").empty()) << e.dump();
  }

  // applybatch: the bad batch fails and changes nothing; the good one applies.
  const json refused = client->request({{"action", "applybatch"}, {"session_id", sid}, {"operations", bad_batch}});
  EXPECT_EQ(refused.value("action", ""), "batchapplied") << refused.dump();
  EXPECT_EQ(refused.value("success", true), false);
  EXPECT_GE(refused["errors"].size(), 1U) << refused.dump();
  // Operations count from 0, in the text as in validationresult's `operation` fields.
  EXPECT_NE(refused.dump().find("operation 0: "), std::string::npos) << refused.dump();
  EXPECT_EQ(refused.dump().find("operation 2: "), std::string::npos) << refused.dump();
  for (const auto& e : invalid["errors"]) {
    if (e.contains("operation")) {
      EXPECT_LT(e["operation"].get<int>(), 2) << e.dump();
    }
  }
  const json unchanged = client->request({{"action", "getpipeline"}, {"session_id", sid}});
  EXPECT_EQ(unchanged["pipeline"]["nodes"].size(), 2U) << unchanged.dump();
  EXPECT_EQ(unchanged["pipeline"]["connections"].size(), 1U) << unchanged.dump();
  const json applied = client->request({{"action", "applybatch"}, {"session_id", sid}, {"operations", good_batch}});
  EXPECT_EQ(applied.value("action", ""), "batchapplied") << applied.dump();
  EXPECT_EQ(applied.value("success", false), true) << applied.dump();
  EXPECT_EQ(applied["errors"], json::array());
  const json batched = client->request({{"action", "getpipeline"}, {"session_id", sid}});
  EXPECT_EQ(batched["pipeline"]["nodes"].size(), 3U) << batched.dump();
  EXPECT_EQ(batched["pipeline"]["connections"].size(), 2U) << batched.dump();
  EXPECT_TRUE(client->wait_event(event("connectionremoved", sid)).is_object())
      << "no connectionremoved event";

  // disconnect, removenode.
  const json disc = client->request({{"action", "disconnect"},
                                     {"session_id", sid},
                                     {"from_node", "gain2"},
                                     {"from_pin", "out"},
                                     {"to_node", "gain"},
                                     {"to_pin", "in"}});
  EXPECT_EQ(disc.value("action", ""), "success") << disc.dump();
  const json removed = client->request({{"action", "removenode"}, {"session_id", sid}, {"node_id", "gain"}});
  EXPECT_EQ(removed.value("action", ""), "success") << removed.dump();
  EXPECT_TRUE(client->wait_event(event("noderemoved", sid, "gain")).is_object()) << "no noderemoved event";

  // destroysession.
  const json destroyed = client->request({{"action", "destroysession"}, {"session_id", sid}});
  EXPECT_EQ(destroyed.value("action", ""), "sessiondestroyed") << destroyed.dump();
  EXPECT_EQ(destroyed.value("session_id", ""), sid);
  EXPECT_TRUE(client->wait_event(event("sessiondestroyed", sid)).is_object()) << "no sessiondestroyed event";
  EXPECT_EQ(client->request({{"action", "listsessions"}})["sessions"], json::array());

  // Envelopes: responses echo the correlation id, events have none; tunenodeasync got nothing.
  for (const auto& m : client->received()) {
    ASSERT_TRUE(m.is_object());
    const std::string type = m.value("type", "");
    EXPECT_TRUE(type == "response" || type == "event") << m.dump();
    if (type == "event") {
      EXPECT_FALSE(m.contains("correlation_id")) << m.dump();
      EXPECT_TRUE(m["payload"].contains("event")) << m.dump();
    } else {
      EXPECT_TRUE(m.contains("correlation_id")) << m.dump();
      EXPECT_NE(m.value("correlation_id", ""), async_id) << "tunenodeasync answered: " << m.dump();
      EXPECT_TRUE(m["payload"].contains("action")) << m.dump();
    }
  }
}

TEST_F(Sessions, ControlErrorsAreErrorResponsesWithTheCorrelationId) {
  start();
  auto client = ws();
  ASSERT_TRUE(client->open());
  const auto error_of = [&](const json& payload) {
    const std::string id = client->send_request(payload);
    const json r = client->wait_response(id);
    EXPECT_EQ(r.value("type", ""), "response") << r.dump();
    EXPECT_EQ(r.value("correlation_id", ""), id) << r.dump();
    EXPECT_EQ(r["payload"].value("action", ""), "error") << r.dump();
    return r["payload"].value("message", "");
  };
  EXPECT_TRUE(contains(error_of({{"action", "frobnicate"}}), "unknown action 'frobnicate'"));
  EXPECT_TRUE(contains(error_of({{"action", "getpipeline"}}), "session_id"));
  EXPECT_TRUE(contains(error_of({{"action", "getpipeline"}, {"session_id", "nope"}}), "nope"));
  EXPECT_TRUE(contains(error_of({{"action", "destroysession"}, {"session_id", "nope"}}), "nope"));
  EXPECT_FALSE(error_of({{"action", "addnode"}, {"session_id", "nope"}, {"node_id", "a"}, {"kind", "core::passthrough"}}).empty());

  const json created = client->request({{"action", "createsession"}, {"name", "errs"}});
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump();
  EXPECT_TRUE(contains(error_of({{"action", "createsession"}, {"name", "errs"}}), "errs"));
  EXPECT_FALSE(error_of({{"action", "addnode"}, {"session_id", "errs"}, {"node_id", "a"}, {"kind", "audio::nope"}}).empty());
  EXPECT_TRUE(contains(error_of({{"action", "addnode"},
                                 {"session_id", "errs"},
                                 {"node_id", "r"},
                                 {"kind", "core::file_reader"},
                                 {"params", {{"path", "/etc/passwd"}}}}),
                       "allowed_file_paths"));
  EXPECT_TRUE(contains(error_of({{"action", "addnode"},
                                 {"session_id", "errs"},
                                 {"node_id", "o"},
                                 {"kind", "streamkit::http_output"}}),
                       "oneshot"));
  ASSERT_EQ(client->request({{"action", "addnode"}, {"session_id", "errs"}, {"node_id", "g"}, {"kind", "audio::gain"}})
                .value("action", ""),
            "success");
  EXPECT_TRUE(contains(error_of({{"action", "tunenode"},
                                 {"session_id", "errs"},
                                 {"node_id", "g"},
                                 {"message", "Start"}}),
                       "UpdateParams"));
  EXPECT_FALSE(error_of({{"action", "tunenode"},
                         {"session_id", "errs"},
                         {"node_id", "g"},
                         {"message", {{"UpdateParams", {{"gain", 99}}}}}})
                   .empty());
  EXPECT_FALSE(error_of({{"action", "tunenode"},
                         {"session_id", "errs"},
                         {"node_id", "missing"},
                         {"message", {{"UpdateParams", {{"gain", 1}}}}}})
                   .empty());
  EXPECT_FALSE(error_of({{"action", "connect"},
                         {"session_id", "errs"},
                         {"from_node", "g"},
                         {"from_pin", "out"},
                         {"to_node", "missing"},
                         {"to_pin", "in"}})
                   .empty());
  EXPECT_TRUE(contains(error_of({{"action", "applybatch"}, {"session_id", "errs"}}), "operations"));

  // Envelope problems: answered, the connection stays usable.
  client->send_text("{not json");
  json r = client->wait_any_response();
  EXPECT_EQ(r["payload"].value("action", ""), "error") << r.dump();
  EXPECT_FALSE(r.contains("correlation_id"));
  client->send_text(json{{"type", "event"}, {"correlation_id", "t1"}, {"payload", {{"action", "listsessions"}}}}.dump());
  r = client->wait_response("t1");
  EXPECT_EQ(r["payload"].value("action", ""), "error") << r.dump();
  client->send_text(json{{"type", "request"}, {"correlation_id", "t2"}, {"payload", "listsessions"}}.dump());
  r = client->wait_response("t2");
  EXPECT_EQ(r["payload"].value("action", ""), "error") << r.dump();
  EXPECT_EQ(client->request({{"action", "listsessions"}}).value("action", ""), "sessionslisted");
}

TEST_F(Sessions, ControlAViewerMayReadButNotChange) {
  start();
  create({{"name", "watched"}});
  WsClient::Options options;
  options.token = kViewerToken;
  auto viewer = ws(options);
  ASSERT_TRUE(viewer->open());
  EXPECT_EQ(viewer->request({{"action", "getpermissions"}}).value("role", ""), "viewer");
  EXPECT_EQ(viewer->request({{"action", "listsessions"}})["sessions"].size(), 1U);
  EXPECT_EQ(viewer->request({{"action", "getpipeline"}, {"session_id", "watched"}}).value("action", ""), "pipeline");
  for (const json& payload :
       {json{{"action", "createsession"}, {"name", "v"}},
        json{{"action", "destroysession"}, {"session_id", "watched"}},
        json{{"action", "addnode"}, {"session_id", "watched"}, {"node_id", "p"}, {"kind", "core::passthrough"}},
        json{{"action", "applybatch"}, {"session_id", "watched"}, {"operations", json::array()}},
        json{{"action", "tunenode"}, {"session_id", "watched"}, {"node_id", "p"}, {"message", {{"UpdateParams", json::object()}}}}}) {
    const json r = viewer->request(payload);
    EXPECT_EQ(r.value("action", ""), "error") << payload.dump() << " -> " << r.dump();
    EXPECT_TRUE(contains(r.value("message", ""), "viewer")) << r.dump();
  }
  EXPECT_EQ(get("/api/v1/sessions").body_json().size(), 1U);
  // A viewer sees the events of every session.
  create({{"name", "later"}});
  EXPECT_TRUE(viewer->wait_event(event("sessioncreated")).is_object());
}

TEST_F(Sessions, ControlTheUpgradeChecksTheTokenAndTheOrigin) {
  start();
  const std::map<std::string, std::string> upgrade = {
      {"Upgrade", "websocket"},
      {"Connection", "Upgrade"},
      {"Sec-WebSocket-Version", "13"},
      {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}};
  WsClient::Options no_token;
  no_token.token = "";
  WsClient anonymous(server_->http_port(), no_token);
  EXPECT_FALSE(anonymous.open());
  EXPECT_EQ(http_call(server_->http_port(), http::verb::get, "/api/v1/control", "", "", upgrade).status, 401);
  WsClient::Options wrong;
  wrong.token = "not-a-token-0123456789";
  EXPECT_FALSE(WsClient(server_->http_port(), wrong).open());

  WsClient::Options evil;
  evil.origin = "https://evil.example";
  WsClient cross(server_->http_port(), evil);
  EXPECT_FALSE(cross.open());
  auto with_origin = upgrade;
  with_origin["Origin"] = "https://evil.example";
  const Response refused =
      http_call(server_->http_port(), http::verb::get, "/api/v1/control", kOperatorToken, "", with_origin);
  EXPECT_EQ(refused.status, 403) << refused.describe();
  EXPECT_TRUE(contains(refused.body, "allowed_origins")) << refused.body;

  WsClient::Options local;
  local.origin = "http://localhost:5173";
  WsClient ui(server_->http_port(), local);
  EXPECT_TRUE(ui.open()) << ui.error();
  EXPECT_EQ(ui.request({{"action", "getpermissions"}}).value("action", ""), "permissions");

  // A plain GET is told to upgrade.
  EXPECT_EQ(get("/api/v1/control").status, 426);
}

TEST_F(Sessions, ControlAMessageOverOneMebibyteClosesTheConnectionWithTooBig) {
  start();
  auto client = ws();
  ASSERT_TRUE(client->open());
  EXPECT_EQ(client->request({{"action", "listsessions"}}).value("action", ""), "sessionslisted");
  // Just under the limit is a (failed) request; over it ends the connection.
  client->send_text(json{{"type", "request"},
                         {"correlation_id", "big"},
                         {"payload", {{"action", "createsession"},
                                      {"yaml", "nodes: 42\n#" + std::string((1 << 20) - 200, '#')}}}}
                        .dump());
  EXPECT_EQ(client->wait_response("big")["payload"].value("action", ""), "error");
  client->send_text(std::string((1 << 20) + 1, ' '));
  EXPECT_EQ(client->wait_closed(), 1009) << "close code: message too big";
  EXPECT_TRUE(wait_until([&] { return get("/healthz", "").body_json().value("websocket_connections", -1) == 0; }, 5s));
}

TEST_F(Sessions, ControlAClientThatGoesAwayLeavesNoThreadOrFdBehind) {
  start();
  const pid_t pid = server_->pid();
  // Warm up (first connections create lazily initialised state), then take the baseline.
  { auto c = ws(); c->request({{"action", "listsessions"}}); }
  ASSERT_TRUE(wait_until([&] { return get("/healthz", "").body_json().value("websocket_connections", -1) == 0; }, 5s));
  const std::size_t threads0 = thread_count(pid);
  const std::size_t fds0 = fd_count(pid);

  for (int i = 0; i < 10; ++i) {
    auto c = ws();
    ASSERT_EQ(c->request({{"action", "listsessions"}}).value("action", ""), "sessionslisted");
    if (i % 2 == 0) {
      c->close();
    } else {
      c->abort();  // no close frame: the server finds out from the socket
    }
  }
  std::vector<std::unique_ptr<WsClient>> open;
  for (int i = 0; i < 5; ++i) {
    open.push_back(ws());
  }
  EXPECT_TRUE(wait_until([&] { return get("/healthz", "").body_json().value("websocket_connections", -1) == 5; }, 5s));
  EXPECT_GE(thread_count(pid), threads0 + 5) << "a thread per client (and one for its events)";
  open.clear();
  EXPECT_TRUE(wait_until([&] { return get("/healthz", "").body_json().value("websocket_connections", -1) == 0; }, 10s));
  EXPECT_TRUE(wait_until([&] { return thread_count(pid) <= threads0; }, 10s))
      << thread_count(pid) << " threads, " << threads0 << " before";
  EXPECT_TRUE(wait_until([&] { return fd_count(pid) <= fds0; }, 10s))
      << fd_count(pid) << " fds, " << fds0 << " before";
}

TEST_F(Sessions, ControlASlowClientNeitherStallsOthersNorGrowsTheServer) {
  start("sessions:\n  event_queue_capacity: 64\n");
  const pid_t pid = server_->pid();
  auto worker = ws();
  ASSERT_TRUE(worker->open());
  const json created = worker->request({{"action", "createsession"}, {"name", "busy"}});
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump();
  ASSERT_EQ(worker->request({{"action", "addnode"}, {"session_id", "busy"}, {"node_id", "g"}, {"kind", "audio::gain"}})
                .value("action", ""),
            "success");

  // The slow client: a 4 KiB receive window and it never reads.
  WsClient::Options slow_options;
  slow_options.receive_buffer = 4096;
  slow_options.silent = true;
  WsClient slow(server_->http_port(), slow_options);
  ASSERT_TRUE(slow.open());
  const long rss0 = rss_kib(pid);

  // Many events (nodeparamschanged, ~150 bytes each), while timing the worker's requests.
  constexpr int kTunes = 20000;
  double worst = 0;
  for (int i = 0; i < kTunes; ++i) {
    const json patch = {{"gain", 0.5 + (i % 100) / 200.0}};
    if (i % 1000 == 999) {
      const auto t0 = std::chrono::steady_clock::now();
      const json r = worker->request({{"action", "tunenode"},
                                      {"session_id", "busy"},
                                      {"node_id", "g"},
                                      {"message", {{"UpdateParams", patch}}}});
      worst = std::max(worst, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      ASSERT_EQ(r.value("action", ""), "success") << r.dump();
    } else {
      worker->send_request({{"action", "tunenodeasync"},
                            {"session_id", "busy"},
                            {"node_id", "g"},
                            {"message", {{"UpdateParams", patch}}}});
    }
  }
  // The worker client gets the newest events at once (it may lose old ones as well: its
  // queue is as bounded as anyone's, and it is sent 20000 of them in a burst).
  const json last = worker->request({{"action", "tunenode"},
                                     {"session_id", "busy"},
                                     {"node_id", "g"},
                                     {"message", {{"UpdateParams", {{"gain", 3.125}}}}}});
  ASSERT_EQ(last.value("action", ""), "success") << last.dump();
  EXPECT_TRUE(worker
                  ->wait_event([](const json& e) {
                    return e.value("event", "") == "nodeparamschanged" &&
                           e["params"].value("gain", 0.0) == 3.125;
                  },
                               10s)
                  .is_object())
      << "the last nodeparamschanged did not arrive; " << worker->event_count() << " events";
  std::printf("[ measure  ] slowest synchronous tunenode while a client stalls: %.1f ms\n", worst * 1000);
  EXPECT_LT(worst, 2.0) << "a request took " << worst << " s";

  const long rss1 = rss_kib(pid);
  std::printf("[ measure  ] server RSS %ld KiB -> %ld KiB after %d events\n", rss0, rss1, kTunes);
  EXPECT_LT(rss1 - rss0, 64 * 1024) << "the server grew by " << (rss1 - rss0) << " KiB";
  // The slow client lost events (counted), it did not make the server keep them.
  const Response m = get("/metrics");
  const auto at = m.body.find("\nskit_session_events_dropped_total ");
  ASSERT_NE(at, std::string::npos) << m.body;
  const long dropped = std::atol(m.body.c_str() + at + std::strlen("\nskit_session_events_dropped_total "));
  std::printf("[ measure  ] events dropped for the slow client: %ld\n", dropped);
  EXPECT_GT(dropped, 0);
  // Another client still gets answers at once.
  auto third = ws();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(third->request({{"action", "listsessions"}}).value("action", ""), "sessionslisted");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
}

TEST_F(Sessions, ShutdownClosesControlClientsAndDestroysSessions) {
  start();
  auto client = ws();
  ASSERT_TRUE(client->open());
  ASSERT_EQ(client->request({{"action", "createsession"}, {"name", "until-stop"}}).value("action", ""),
            "sessioncreated");
  ASSERT_EQ(client->request({{"action", "addnode"}, {"session_id", "until-stop"}, {"node_id", "p"}, {"kind", "core::passthrough"}})
                .value("action", ""),
            "success");
  WsClient::Options silent;
  silent.silent = true;
  WsClient stuck(server_->http_port(), silent);  // never answers the close frame
  ASSERT_TRUE(stuck.open());
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = server_->pid();
  EXPECT_EQ(server_->stop(), 0) << server_->log();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 15.0) << "the shutdown took " << seconds << " s";
  EXPECT_EQ(client->wait_closed(), 1001) << "close code: going away";
  EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 5s));
  EXPECT_TRUE(shm_segments_of(pid).empty());
}

}  // namespace
}  // namespace skit::testing
