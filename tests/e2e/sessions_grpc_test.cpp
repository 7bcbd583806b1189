// SPDX-License-Identifier: MPL-2.0
// Dynamic sessions over gRPC end to end: the real `skit serve` driven by the C++ stubs of
// skit.v1.Control: CreateSession, ListSessions, GetSession, DeleteSession, ApplyBatch (and its
// validate_only mode), TuneNode and the server-streaming WatchEvents, with the status code of
// every failure, roles, and a shutdown with event streams open.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <set>

#include "session_clients.hpp"
#include "skit/v1/control.grpc.pb.h"

namespace skit::testing {
namespace {

std::unique_ptr<grpc::ClientContext> context(const std::string& token = kOperatorToken,
                                             std::chrono::seconds timeout = 30s) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  if (!token.empty()) {
    ctx->AddMetadata("authorization", "Bearer " + token);
  }
  return ctx;
}

std::string trailer(const grpc::ClientContext& ctx, const std::string& key) {
  const auto& md = ctx.GetServerTrailingMetadata();
  const auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

v1::BatchOperation add_node(const std::string& id, const std::string& kind,
                            const std::string& params_json = "") {
  v1::BatchOperation op;
  op.mutable_add_node()->set_node_id(id);
  op.mutable_add_node()->set_kind(kind);
  op.mutable_add_node()->set_params_json(params_json);
  return op;
}
v1::BatchOperation remove_node(const std::string& id) {
  v1::BatchOperation op;
  op.mutable_remove_node()->set_node_id(id);
  return op;
}
v1::BatchOperation connect(const std::string& from, const std::string& to,
                           v1::ConnectionMode mode = v1::CONNECTION_MODE_RELIABLE) {
  v1::BatchOperation op;
  auto* c = op.mutable_connect();
  c->set_from_node(from);
  c->set_from_pin("out");
  c->set_to_node(to);
  c->set_to_pin("in");
  c->set_mode(mode);
  return op;
}
v1::BatchOperation disconnect(const std::string& from, const std::string& to) {
  v1::BatchOperation op;
  auto* c = op.mutable_disconnect();
  c->set_from_node(from);
  c->set_from_pin("out");
  c->set_to_node(to);
  c->set_to_pin("in");
  return op;
}

/// A WatchEvents call read by a thread of its own.
class Watch {
 public:
  Watch(v1::Control::Stub& stub, const std::string& session, const std::string& token = kOperatorToken)
      : ctx_(context(token, 120s)) {
    v1::WatchEventsRequest req;
    req.set_session(session);
    reader_ = stub.WatchEvents(ctx_.get(), req);
    // The headers arrive once the server has subscribed: events from now on are seen.
    reader_->WaitForInitialMetadata();
    thread_ = std::thread([this] {
      v1::SessionEvent e;
      while (reader_->Read(&e)) {
        std::lock_guard lock(mutex_);
        events_.push_back(e);
        cv_.notify_all();
      }
      grpc::Status s = reader_->Finish();
      std::lock_guard lock(mutex_);
      status_ = s;
      done_ = true;
      cv_.notify_all();
    });
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  ~Watch() {
    ctx_->TryCancel();
    thread_.join();
  }

  /// The first event named `name` (for `node` when given) received so far or within timeout.
  std::optional<v1::SessionEvent> wait(const std::string& name, const std::string& node = "",
                                       std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    std::optional<v1::SessionEvent> out;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& e : events_) {
        if (e.event() == name &&
            (node.empty() || json::parse(e.payload_json()).value("node_id", "") == node)) {
          out = e;
          return true;
        }
      }
      return done_;
    });
    return out;
  }

  /// The call's status once it ended (nullopt while it runs past `timeout`).
  std::optional<grpc::Status> finished(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return done_; });
    return done_ ? std::optional<grpc::Status>(status_) : std::nullopt;
  }

  std::vector<v1::SessionEvent> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReader<v1::SessionEvent>> reader_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<v1::SessionEvent> events_;
  grpc::Status status_;
  bool done_ = false;
};

class GrpcSessions : public ::testing::Test {
 protected:
  void start(const std::string& extra = "") {
    server_ = std::make_unique<SkitServer>(session_config(extra));
    ASSERT_TRUE(server_->up()) << server_->log();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Control::NewStub(channel_);
  }
  void TearDown() override {
    if (!server_) {
      return;
    }
    const pid_t pid = server_->pid();
    EXPECT_EQ(server_->stop(), 0) << "skit serve did not exit cleanly";
    EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 5s));
    EXPECT_TRUE(shm_segments_of(pid).empty()) << "shared memory left behind";
    if (HasFailure()) {
      const std::string log = server_->log();
      std::printf("---- server log (last 8 KiB) ----\n%s\n",
                  log.substr(log.size() > 8192 ? log.size() - 8192 : 0).c_str());
    }
  }

  grpc::Status create(const std::optional<std::string>& name, const std::string& yaml,
                      v1::CreateSessionResponse* resp, const std::string& token = kOperatorToken,
                      std::string* error_code = nullptr) {
    v1::CreateSessionRequest req;
    if (name) {
      req.set_name(*name);
    }
    req.set_pipeline_yaml(yaml);
    auto ctx = context(token);
    grpc::Status s = stub_->CreateSession(ctx.get(), req, resp);
    if (error_code != nullptr) {
      *error_code = trailer(*ctx, "skit-error-code");
    }
    return s;
  }
  v1::SessionInfo create_ok(const std::string& name, const std::string& yaml = "") {
    v1::CreateSessionResponse resp;
    const grpc::Status s = create(name, yaml, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.session();
  }
  grpc::Status get(const std::string& session, v1::GetSessionResponse* resp,
                   const std::string& token = kOperatorToken) {
    v1::GetSessionRequest req;
    req.set_session(session);
    auto ctx = context(token);
    return stub_->GetSession(ctx.get(), req, resp);
  }
  json pipeline(const std::string& session) {
    v1::GetSessionResponse resp;
    const grpc::Status s = get(session, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return json::parse(resp.pipeline_json(), nullptr, false);
  }
  grpc::Status apply(const std::string& session, const std::vector<v1::BatchOperation>& ops,
                     v1::ApplyBatchResponse* resp, bool validate_only = false,
                     const std::string& token = kOperatorToken) {
    v1::ApplyBatchRequest req;
    req.set_session(session);
    req.set_validate_only(validate_only);
    for (const auto& op : ops) {
      *req.add_operations() = op;
    }
    auto ctx = context(token);
    return stub_->ApplyBatch(ctx.get(), req, resp);
  }
  grpc::Status tune(const std::string& session, const std::string& node, const std::string& params,
                    bool async = false, const std::string& token = kOperatorToken) {
    v1::TuneNodeRequest req;
    req.set_session(session);
    req.set_node_id(node);
    req.set_params_json(params);
    req.set_no_wait(async);
    v1::TuneNodeResponse resp;
    auto ctx = context(token);
    return stub_->TuneNode(ctx.get(), req, &resp);
  }
  grpc::Status remove(const std::string& session, v1::DeleteSessionResponse* resp = nullptr,
                      const std::string& token = kOperatorToken) {
    v1::DeleteSessionRequest req;
    req.set_session(session);
    v1::DeleteSessionResponse local;
    auto ctx = context(token);
    return stub_->DeleteSession(ctx.get(), req, resp != nullptr ? resp : &local);
  }
  std::vector<v1::SessionInfo> list(const std::string& token = kOperatorToken) {
    v1::ListSessionsResponse resp;
    auto ctx = context(token);
    EXPECT_TRUE(stub_->ListSessions(ctx.get(), {}, &resp).ok());
    return {resp.sessions().begin(), resp.sessions().end()};
  }

  std::unique_ptr<SkitServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Control::Stub> stub_;
};

TEST_F(GrpcSessions, CreateListGetAndDeleteASession) {
  start();
  const v1::SessionInfo info = create_ok("grpc-one", decode_pipeline());
  EXPECT_TRUE(is_uuid_v4(info.id())) << info.DebugString();
  EXPECT_EQ(info.name(), "grpc-one");
  EXPECT_TRUE(is_rfc3339(info.created_at())) << info.created_at();
  EXPECT_EQ(info.node_count(), 5U);

  const auto sessions = list(kViewerToken);
  ASSERT_EQ(sessions.size(), 1U);
  EXPECT_EQ(sessions[0].id(), info.id());

  for (const std::string& key : {info.id(), std::string("grpc-one")}) {
    v1::GetSessionResponse got;
    ASSERT_TRUE(get(key, &got, kViewerToken).ok());
    EXPECT_EQ(got.session().id(), info.id());
    const json p = json::parse(got.pipeline_json(), nullptr, false);
    ASSERT_TRUE(p.is_object()) << got.pipeline_json();
    EXPECT_EQ(p["nodes"].size(), 5U);
    EXPECT_EQ(p["nodes"]["loud"]["kind"], "audio::gain");
    EXPECT_EQ(p["connections"].size(), 4U);
  }

  v1::DeleteSessionResponse deleted;
  ASSERT_TRUE(remove("grpc-one", &deleted).ok());
  EXPECT_EQ(deleted.session_id(), info.id());
  EXPECT_TRUE(list().empty());
  v1::GetSessionResponse gone;
  EXPECT_EQ(get(info.id(), &gone).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(remove(info.id()).error_code(), grpc::StatusCode::NOT_FOUND);

  // Unnamed: a generated name.
  v1::CreateSessionResponse unnamed;
  ASSERT_TRUE(create(std::nullopt, "", &unnamed).ok());
  EXPECT_FALSE(unnamed.session().name().empty());
  EXPECT_EQ(unnamed.session().node_count(), 0U);
}

TEST_F(GrpcSessions, FailuresHaveTheirStatusCodes) {
  start("sessions:\n  max_sessions: 2\n");
  v1::CreateSessionResponse resp;
  std::string code;

  grpc::Status s = create("bad", decode_pipeline("99"), &resp, kOperatorToken, &code);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(contains(s.error_message(), "line 16")) << s.error_message();
  EXPECT_TRUE(contains(s.error_message(), "loud")) << s.error_message();

  std::string escape = decode_pipeline();
  escape.replace(escape.find("samples/audio/speech.ogg"), 24, "/etc/passwd");
  s = create("escape", escape, &resp, kOperatorToken, &code);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();  // HTTP's 403
  EXPECT_EQ(code, "permission_denied");
  EXPECT_TRUE(contains(s.error_message(), "allowed_file_paths")) << s.error_message();

  s = create("viewer", "", &resp, kViewerToken);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = create("nobody", "", &resp, "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();

  create_ok("first");
  s = create("first", "", &resp, kOperatorToken, &code);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_EQ(code, "already_exists");
  create_ok("second");
  s = create("third", "", &resp, kOperatorToken, &code);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_EQ(code, "resource_exhausted");

  EXPECT_EQ(remove("first", nullptr, kViewerToken).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(list().size(), 2U);
}

TEST_F(GrpcSessions, ApplyBatchIsAllOrNothingAndValidateOnlyChangesNothing) {
  start();
  create_ok("batch");
  v1::ApplyBatchResponse resp;
  ASSERT_TRUE(apply("batch", {add_node("pass", "core::passthrough"), add_node("gain", "audio::gain", R"({"gain": 1.5})"),
                              connect("pass", "gain")},
                    &resp)
                  .ok());
  EXPECT_TRUE(resp.applied());
  json p = pipeline("batch");
  EXPECT_EQ(p["nodes"].size(), 2U) << p.dump();
  EXPECT_DOUBLE_EQ(p["nodes"]["gain"]["params"].value("gain", 0.0), 1.5);
  EXPECT_EQ(p["connections"].size(), 1U);

  // validate_only: the problems, nothing applied.
  const std::vector<v1::BatchOperation> bad = {add_node("x", "audio::nope"), remove_node("missing"),
                                               add_node("y", "audio::gain", "[not json")};
  v1::ApplyBatchResponse checked;
  grpc::Status s = apply("batch", bad, &checked, /*validate_only=*/true);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(checked.applied());
  ASSERT_GE(checked.issues_size(), 1) << checked.DebugString();
  for (const auto& issue : checked.issues()) {
    EXPECT_FALSE(issue.message().empty());
    EXPECT_LT(issue.operation(), bad.size());
  }
  const std::vector<v1::BatchOperation> insert = {add_node("gain2", "audio::gain"), disconnect("pass", "gain"),
                                                  connect("pass", "gain2"), connect("gain2", "gain")};
  v1::ApplyBatchResponse fine;
  ASSERT_TRUE(apply("batch", insert, &fine, /*validate_only=*/true).ok());
  EXPECT_EQ(fine.issues_size(), 0) << fine.DebugString();
  EXPECT_FALSE(fine.applied());
  EXPECT_EQ(pipeline("batch")["nodes"].size(), 2U) << "validate_only applied something";

  // An invalid batch fails whole: the valid operation before the bad one is not applied.
  v1::ApplyBatchResponse refused;
  s = apply("batch", {add_node("ok", "core::passthrough"), add_node("x", "audio::nope")}, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(contains(s.error_message(), "audio::nope")) << s.error_message();
  EXPECT_EQ(pipeline("batch")["nodes"].size(), 2U) << "a failed batch changed the session";
  s = apply("batch", {v1::BatchOperation()}, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  // The valid insert applies.
  v1::ApplyBatchResponse inserted;
  ASSERT_TRUE(apply("batch", insert, &inserted).ok());
  p = pipeline("batch");
  EXPECT_EQ(p["nodes"].size(), 3U) << p.dump();
  EXPECT_EQ(p["connections"].size(), 2U) << p.dump();

  EXPECT_EQ(apply("nope", insert, &refused).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(apply("nope", insert, &refused, true).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(apply("batch", insert, &refused, false, kViewerToken).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(GrpcSessions, TuneNodeSyncAndAsync) {
  start();
  create_ok("tune");
  v1::ApplyBatchResponse resp;
  ASSERT_TRUE(apply("tune", {add_node("gain", "audio::gain")}, &resp).ok());
  grpc::Status s = tune("tune", "gain", R"({"gain": 0.25})");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_DOUBLE_EQ(pipeline("tune")["nodes"]["gain"]["params"].value("gain", 0.0), 0.25);
  ASSERT_TRUE(tune("tune", "gain", R"({"gain": 2.0})", /*async=*/true).ok());
  EXPECT_TRUE(wait_until([&] { return pipeline("tune")["nodes"]["gain"]["params"].value("gain", 0.0) == 2.0; }, 5s));

  EXPECT_EQ(tune("tune", "gain", "not json").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(tune("tune", "gain", R"({"gain": 99})").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(tune("tune", "missing", R"({"gain": 1})").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(tune("nope", "gain", R"({"gain": 1})").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(tune("tune", "gain", R"({"gain": 1})", false, kViewerToken).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(GrpcSessions, TuningAStoppedNodeIsFailedPrecondition) {
  start();
  create_ok("ended", decode_pipeline());  // unpaced: the speech sample ends in well under 10 s
  ASSERT_TRUE(wait_until(
      [&] {
        const json state = pipeline("ended")["nodes"]["loud"]["state"];
        return state.is_object() && state.contains("Stopped");
      },
      20s))
      << pipeline("ended").dump();
  v1::TuneNodeRequest req;
  req.set_session("ended");
  req.set_node_id("loud");
  req.set_params_json(R"({"gain": 0.5})");
  v1::TuneNodeResponse resp;
  auto ctx = context();
  const grpc::Status s = stub_->TuneNode(ctx.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(trailer(*ctx, "skit-error-code"), "failed_precondition");
  EXPECT_TRUE(contains(s.error_message(), "'loud' is stopped")) << s.error_message();
}

TEST_F(GrpcSessions, WatchEventsStreamsTheSameEventsAsTheWebSocket) {
  start();
  Watch all(*stub_, "", kViewerToken);
  WsClient ws(server_->http_port());
  ASSERT_TRUE(ws.open());

  const v1::SessionInfo info = create_ok("watched");
  v1::ApplyBatchResponse resp;
  ASSERT_TRUE(apply("watched", {add_node("pass", "core::passthrough"), add_node("gain", "audio::gain"),
                                connect("pass", "gain")},
                    &resp)
                  .ok());
  // The new nodes' workers report in (Initializing, Ready, Running...).
  ASSERT_TRUE(all.wait("nodestatechanged", "gain", 15s).has_value()) << "no nodestatechanged event";
  ASSERT_TRUE(tune("watched", "gain", R"({"gain": 0.5})").ok());
  ASSERT_TRUE(apply("watched", {disconnect("pass", "gain"), remove_node("pass")}, &resp).ok());
  ASSERT_TRUE(remove("watched").ok());

  for (const char* name : {"sessioncreated", "nodeadded", "connectionadded", "nodeparamschanged",
                           "nodestatechanged", "connectionremoved", "noderemoved", "sessiondestroyed"}) {
    const auto e = all.wait(name, "", 15s);
    ASSERT_TRUE(e.has_value()) << "no " << name << " event";
    EXPECT_EQ(e->session_id(), info.id()) << name;
    EXPECT_TRUE(is_rfc3339(e->timestamp())) << e->timestamp();
    const json payload = json::parse(e->payload_json(), nullptr, false);
    ASSERT_TRUE(payload.is_object()) << e->payload_json();
    EXPECT_EQ(payload.value("event", ""), name);
    EXPECT_EQ(payload.value("session_id", ""), info.id());
    // The WebSocket client got the same payload.
    EXPECT_TRUE(ws.wait_event([&](const json& w) { return w.value("event", "") == name; }).is_object())
        << "the WebSocket client did not get " << name;
  }
  const auto params = all.wait("nodeparamschanged");
  ASSERT_TRUE(params.has_value());
  EXPECT_DOUBLE_EQ(json::parse(params->payload_json())["params"].value("gain", 0.0), 0.5);
  const auto added = all.wait("nodeadded", "gain");
  ASSERT_TRUE(added.has_value());
  EXPECT_EQ(json::parse(added->payload_json()).value("kind", ""), "audio::gain");
  EXPECT_FALSE(all.finished(100ms).has_value()) << "watching every session goes on";
}

TEST_F(GrpcSessions, WatchingOneSessionFiltersAndEndsWithIt) {
  start();
  create_ok("mine");
  create_ok("other");
  {
    v1::WatchEventsRequest req;
    req.set_session("nope");
    auto ctx = context();
    auto reader = stub_->WatchEvents(ctx.get(), req);
    v1::SessionEvent e;
    EXPECT_FALSE(reader->Read(&e));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  Watch mine(*stub_, "mine");
  v1::ApplyBatchResponse resp;
  ASSERT_TRUE(apply("other", {add_node("o", "core::passthrough")}, &resp).ok());
  ASSERT_TRUE(apply("mine", {add_node("m", "core::passthrough")}, &resp).ok());
  ASSERT_TRUE(mine.wait("nodeadded", "m").has_value());
  ASSERT_TRUE(remove("mine").ok());
  const auto status = mine.finished(10s);
  ASSERT_TRUE(status.has_value()) << "the watch did not end with its session";
  EXPECT_TRUE(status->ok()) << status->error_message();
  for (const auto& e : mine.events()) {
    EXPECT_NE(json::parse(e.payload_json()).value("node_id", ""), "o") << "an event of another session";
  }
  EXPECT_EQ(mine.events().back().event(), "sessiondestroyed");
}

TEST_F(GrpcSessions, ShutdownEndsEventStreamsPromptly) {
  start();
  create_ok("kept");
  auto watch1 = std::make_unique<Watch>(*stub_, "");
  auto watch2 = std::make_unique<Watch>(*stub_, "kept");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->stop(), 0);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 15.0);
  const auto s1 = watch1->finished(5s);
  ASSERT_TRUE(s1.has_value());
  EXPECT_FALSE(s1->ok());
  ASSERT_TRUE(watch2->finished(5s).has_value());
}

}  // namespace
}  // namespace skit::testing
