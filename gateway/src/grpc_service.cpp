// SPDX-License-Identifier: MPL-2.0
// skit.v1.Control on gRPC's synchronous API. The session RPCs call the session manager
// directly; WatchEvents holds a bounded event subscription for the length of the call. Process runs on three threads: the call's own
// thread reads the client's media into a bounded ByteQueue (the pipeline's
// streamkit::http_input), a runner thread runs the pipeline on the engine, and a writer
// thread sends streamkit::http_output's bytes back as they are produced. Auth uses the same
// bearer tokens and roles as the HTTP gateway; the health service and reflection are open,
// like GET /healthz.
#include "grpc_service.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "byte_queue.hpp"
#include "control_plane.hpp"
#include "grpc/health/v1/health.pb.h"
#include "skit/core/packet_type.hpp"
#include "skit/core/registry.hpp"
#include "skit/v1/control.grpc.pb.h"

namespace skit::gateway {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kQueueBytes = 1 << 20;
constexpr int kMaxMessageBytes = 4 << 20;  // a media chunk; the config may need more
constexpr auto kShutdownGrace = std::chrono::seconds(5);   // for Process calls to end
constexpr auto kUnaryGrace = std::chrono::milliseconds(300);  // then for the rest
constexpr auto kTimeoutGrace = std::chrono::seconds(5);  // past the run's own deadline
constexpr const char* kErrorCodeKey = "skit-error-code";

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string host_of(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

grpc::Status to_grpc(const Status& s) {
  return {grpc_code_for(s.code()), s.to_string()};
}

/// Every problem of a pipeline, one per line. A path-policy refusal makes the request's
/// pipeline invalid: INVALID_ARGUMENT (HTTP answers 403), with "permission_denied" in the
/// skit-error-code trailer; otherwise the first problem's code.
grpc::Status compile_error(grpc::ServerContext* ctx, const std::vector<Status>& errors) {
  std::string message;
  ErrorCode code = errors.empty() ? ErrorCode::kInvalidArgument : errors.front().code();
  for (const auto& e : errors) {
    message += (message.empty() ? "" : "\n") + e.to_string();
    if (e.code() == ErrorCode::kPermissionDenied) {
      code = ErrorCode::kPermissionDenied;
    }
  }
  ctx->AddTrailingMetadata(kErrorCodeKey, std::string(error_code_name(code)));
  const grpc::StatusCode status = code == ErrorCode::kPermissionDenied
                                      ? grpc::StatusCode::INVALID_ARGUMENT
                                      : grpc_code_for(code);
  return {status, message};
}

v1::NodeKind::Cardinality cardinality_of(Cardinality c) {
  switch (c) {
    case Cardinality::kOne: return v1::NodeKind::ONE;
    case Cardinality::kBroadcast: return v1::NodeKind::BROADCAST;
    case Cardinality::kDynamic: return v1::NodeKind::DYNAMIC;
  }
  return v1::NodeKind::CARDINALITY_UNSPECIFIED;
}

v1::NodeReport::State state_of(NodeState s) {
  switch (s) {
    case NodeState::kInitializing: return v1::NodeReport::INITIALIZING;
    case NodeState::kReady: return v1::NodeReport::READY;
    case NodeState::kRunning: return v1::NodeReport::RUNNING;
    case NodeState::kStopped: return v1::NodeReport::STOPPED;
    case NodeState::kFailed: return v1::NodeReport::FAILED;
  }
  return v1::NodeReport::STATE_UNSPECIFIED;
}

/// The calls in progress: cancelled together on shutdown, one by one past their deadline.
class CallRegistry {
 public:
  struct Entry {
    grpc::ServerContext* ctx;
    std::atomic<bool>* cancel;
    Clock::time_point deadline;
  };

  /// False when the server is draining (the call must be refused).
  bool add(const Entry& entry) {
    std::lock_guard lock(mutex_);
    if (draining_) {
      return false;
    }
    calls_.emplace(entry.ctx, entry);
    return true;
  }
  void remove(grpc::ServerContext* ctx) {
    std::lock_guard lock(mutex_);
    calls_.erase(ctx);
    empty_.notify_all();
  }
  /// True when every call has ended within `timeout`.
  bool wait_empty(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return empty_.wait_for(lock, timeout, [&] { return calls_.empty(); });
  }
  void cancel_all() {
    std::lock_guard lock(mutex_);
    draining_ = true;
    for (auto& [ctx, e] : calls_) {
      e.cancel->store(true);
      ctx->TryCancel();
    }
  }
  void cancel_expired() {
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    for (auto& [ctx, e] : calls_) {
      if (now > e.deadline && !e.cancel->load()) {
        spdlog::warn("grpc: a call exceeded limits.request_timeout_ms: cancelled");
        e.cancel->store(true);
        ctx->TryCancel();
      }
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable empty_;
  bool draining_ = false;
  std::map<grpc::ServerContext*, Entry> calls_;
};

/// Keeps a call registered for its lifetime.
class CallGuard {
 public:
  CallGuard(CallRegistry& registry, const CallRegistry::Entry& entry)
      : registry_(registry), ctx_(entry.ctx), added_(registry.add(entry)) {}
  ~CallGuard() {
    if (added_) {
      registry_.remove(ctx_);
    }
  }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;
  [[nodiscard]] bool admitted() const { return added_; }

 private:
  CallRegistry& registry_;
  grpc::ServerContext* ctx_;
  bool added_;
};



class ControlService final : public v1::Control::Service {
 public:
  ControlService(const ServerConfig& config, supervisor::Engine& engine,
                 supervisor::SessionManager& sessions, CallRegistry& calls)
      : config_(config), engine_(engine), sessions_(sessions), calls_(calls) {}

  grpc::Status ListNodeKinds(grpc::ServerContext* ctx, const v1::ListNodeKindsRequest* /*req*/,
                             v1::ListNodeKindsResponse* resp) override {
    if (auto denied = authorize(ctx, Role::kViewer, "list node kinds")) {
      return *denied;
    }
    for (const auto* d : NodeRegistry::builtin().all()) {
      v1::NodeKind* k = resp->add_node_kinds();
      k->set_kind(d->kind);
      k->set_description(d->summary);
      k->add_categories(d->category);
      k->set_param_schema_json(d->params != nullptr ? d->params->json_schema().dump() : "{}");
      for (const auto& p : d->inputs) {
        auto* in = k->add_inputs();
        in->set_name(p.name);
        for (const auto& t : p.accepts) {
          in->add_accepts_types(to_string(t));
        }
        in->set_cardinality(cardinality_of(p.cardinality));
        in->set_required(p.required);
      }
      for (const auto& p : d->outputs) {
        auto* out = k->add_outputs();
        out->set_name(p.name);
        out->set_produces_type(to_string(p.produces));
        out->set_cardinality(cardinality_of(p.cardinality));
      }
      k->set_execution(d->execution == NodeExecution::kHost ? v1::NodeKind::HOST
                                                            : v1::NodeKind::WORKER);
    }
    return grpc::Status::OK;
  }

  grpc::Status ValidatePipeline(grpc::ServerContext* ctx, const v1::ValidatePipelineRequest* req,
                                v1::ValidatePipelineResponse* resp) override {
    if (auto denied = authorize(ctx, Role::kViewer, "validate pipelines")) {
      return *denied;
    }
    const std::string& yaml = req->pipeline_yaml();
    if (yaml.size() > config_.max_config_bytes) {
      return config_too_large(ctx, yaml.size());
    }
    bool has_media = req->has_media();
    if (!req->has_has_media()) {
      // Whatever the pipeline reads: media when it has a streamkit::http_input.
      auto plain = supervisor::compile_pipeline_yaml(yaml);
      if (!plain.ok()) {
        return compile_error(ctx, plain.errors);
      }
      const auto& nodes = plain.pipeline.nodes();
      has_media = std::any_of(nodes.begin(), nodes.end(), [](const v1::NodeSpec& n) {
        return n.kind() == "streamkit::http_input";
      });
    }
    auto compiled = engine_.compile_oneshot(yaml, has_media);
    if (!compiled.ok()) {
      return compile_error(ctx, compiled.errors);
    }
    *resp->mutable_pipeline() = std::move(compiled.pipeline);
    return grpc::Status::OK;
  }

  grpc::Status Process(grpc::ServerContext* ctx,
                       grpc::ServerReaderWriter<v1::ProcessResponse, v1::ProcessRequest>* stream)
      override {
    if (auto denied = authorize(ctx, Role::kOperator, "run pipelines")) {
      return *denied;
    }
    std::atomic<bool> cancel{false};
    const CallGuard guard(calls_, {ctx, &cancel,
                                   Clock::now() + config_.request_timeout + kTimeoutGrace});
    if (!guard.admitted()) {
      return {grpc::StatusCode::UNAVAILABLE, "the server is shutting down"};
    }

    // The config first; then, unless the client said, the next message tells whether media
    // follows (a media chunk) or not (the half-close).
    v1::ProcessRequest first;
    if (!stream->Read(&first)) {
      return ctx->IsCancelled()
                 ? grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled")
                 : protocol_error(ctx, "expected a ProcessRequest with `config` first");
    }
    if (!first.has_config()) {
      return protocol_error(ctx, "the first ProcessRequest must carry `config` (the pipeline YAML)");
    }
    const std::string& yaml = first.config().pipeline_yaml();
    if (yaml.size() > config_.max_config_bytes) {
      return config_too_large(ctx, yaml.size());
    }
    bool has_media = first.config().has_media();
    std::optional<std::string> pending;
    if (!first.config().has_has_media()) {
      v1::ProcessRequest next;
      if (stream->Read(&next)) {
        if (next.has_config()) {
          return protocol_error(ctx, "`config` may be sent only once, in the first message");
        }
        has_media = true;
        pending = std::move(*next.mutable_media());
      } else if (ctx->IsCancelled()) {
        return {grpc::StatusCode::CANCELLED, "the client cancelled"};
      }
    }
    auto compiled = engine_.compile_oneshot(yaml, has_media);
    if (!compiled.ok()) {
      return compile_error(ctx, compiled.errors);
    }
    return run(ctx, stream, compiled.pipeline, has_media, std::move(pending), cancel);
  }

  grpc::Status CreateSession(grpc::ServerContext* ctx, const v1::CreateSessionRequest* req,
                             v1::CreateSessionResponse* resp) override {
    if (auto denied = authorize(ctx, Role::kOperator, "create sessions")) {
      return *denied;
    }
    if (req->pipeline_yaml().size() > config_.max_config_bytes) {
      return config_too_large(ctx, req->pipeline_yaml().size());
    }
    const std::optional<std::string> name =
        req->has_name() ? std::optional<std::string>(req->name()) : std::nullopt;
    auto info = create_session(sessions_, name, req->pipeline_yaml());
    if (!info) {
      return session_error(ctx, info.status());
    }
    set_info(*info, resp->mutable_session());
    return grpc::Status::OK;
  }

  grpc::Status ListSessions(grpc::ServerContext* ctx, const v1::ListSessionsRequest* /*req*/,
                            v1::ListSessionsResponse* resp) override {
    if (auto denied = authorize(ctx, Role::kViewer, "list sessions")) {
      return *denied;
    }
    for (const auto& s : sessions_.list_sessions()) {
      set_info(s, resp->add_sessions());
    }
    return grpc::Status::OK;
  }

  grpc::Status GetSession(grpc::ServerContext* ctx, const v1::GetSessionRequest* req,
                          v1::GetSessionResponse* resp) override {
    if (auto denied = authorize(ctx, Role::kViewer, "read sessions")) {
      return *denied;
    }
    auto info = sessions_.find_session(req->session());
    if (!info) {
      return session_error(ctx, info.status());
    }
    auto pipeline = sessions_.pipeline_json(info->id);
    if (!pipeline) {
      return session_error(ctx, pipeline.status());
    }
    set_info(*info, resp->mutable_session());
    resp->set_pipeline_json(pipeline->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return grpc::Status::OK;
  }

  grpc::Status DeleteSession(grpc::ServerContext* ctx, const v1::DeleteSessionRequest* req,
                             v1::DeleteSessionResponse* resp) override {
    if (auto denied = authorize(ctx, Role::kOperator, "destroy sessions")) {
      return *denied;
    }
    auto info = sessions_.destroy_session(req->session());
    if (!info) {
      return session_error(ctx, info.status());
    }
    resp->set_session_id(info->id);
    return grpc::Status::OK;
  }

  grpc::Status ApplyBatch(grpc::ServerContext* ctx, const v1::ApplyBatchRequest* req,
                          v1::ApplyBatchResponse* resp) override {
    if (auto denied = authorize(ctx, Role::kOperator, "modify sessions")) {
      return *denied;
    }
    std::vector<supervisor::BatchOperation> ops;
    std::vector<Status> problems;
    for (int i = 0; i < req->operations_size(); ++i) {
      auto op = batch_operation_of(req->operations(i));
      if (!op) {
        Status s = op.status();
        problems.emplace_back(s.code(), "operation " + std::to_string(i + 1) + ": " + error_text(s));
        if (req->validate_only()) {
          auto* issue = resp->add_issues();
          issue->set_operation(static_cast<std::uint32_t>(i));
          issue->set_node_id(s.where().node_id);
          issue->set_message(error_text(s));
        }
        continue;
      }
      ops.push_back(std::move(*op));
    }
    if (req->validate_only()) {
      if (!problems.empty()) {
        auto found = sessions_.find_session(req->session());
        return found ? grpc::Status::OK : session_error(ctx, found.status());
      }
      auto issues = sessions_.validate_batch(req->session(), ops);
      if (!issues) {
        return session_error(ctx, issues.status());
      }
      for (const auto& i : *issues) {
        auto* issue = resp->add_issues();
        issue->set_operation(static_cast<std::uint32_t>(i.operation));
        issue->set_node_id(i.node_id);
        issue->set_message(i.message);
      }
      return grpc::Status::OK;
    }
    if (!problems.empty()) {
      std::string message;
      for (const auto& p : problems) {
        message += (message.empty() ? "" : "\n") + p.message();
      }
      return session_error(ctx, Status(ErrorCode::kInvalidArgument, message));
    }
    if (Status s = sessions_.apply_batch(req->session(), ops); !s.is_ok()) {
      return session_error(ctx, s);
    }
    resp->set_applied(true);
    return grpc::Status::OK;
  }

  grpc::Status TuneNode(grpc::ServerContext* ctx, const v1::TuneNodeRequest* req,
                        v1::TuneNodeResponse* /*resp*/) override {
    if (auto denied = authorize(ctx, Role::kOperator, "tune nodes")) {
      return *denied;
    }
    const auto patch = nlohmann::json::parse(req->params_json(), nullptr, false);
    if (patch.is_discarded() || !patch.is_object()) {
      return protocol_error(ctx, "params_json must be a JSON object of params, e.g. {\"gain\": 0.5}");
    }
    const Status s = sessions_.tune_node(req->session(), req->node_id(), patch, !req->async());
    return s.is_ok() ? grpc::Status::OK : session_error(ctx, s);
  }

  grpc::Status WatchEvents(grpc::ServerContext* ctx, const v1::WatchEventsRequest* req,
                           grpc::ServerWriter<v1::SessionEvent>* writer) override {
    if (auto denied = authorize(ctx, Role::kViewer, "watch sessions")) {
      return *denied;
    }
    std::atomic<bool> cancel{false};
    const CallGuard guard(calls_, {ctx, &cancel, Clock::time_point::max()});
    if (!guard.admitted()) {
      return {grpc::StatusCode::UNAVAILABLE, "the server is shutting down"};
    }
    std::string only;
    if (!req->session().empty()) {
      auto info = sessions_.find_session(req->session());
      if (!info) {
        return session_error(ctx, info.status());
      }
      only = info->id;
    }
    const auto subscription = sessions_.subscribe();
    // The headers tell the client that it is subscribed: events from now on reach it.
    writer->SendInitialMetadata();
    bool ended = false;  // the watched session is gone
    while (!cancel.load() && !ctx->IsCancelled()) {
      auto event = subscription->next(std::chrono::milliseconds(200));
      if (!event) {
        if (subscription->closed()) {
          break;
        }
        continue;
      }
      if (!only.empty() && event->session_id != only) {
        continue;
      }
      v1::SessionEvent out;
      out.set_session_id(event->session_id);
      const auto& payload = event->payload;
      const std::string name = payload.is_object() ? payload.value("event", "") : "";
      out.set_event(name);
      out.set_payload_json(payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      const auto ts = payload.is_object() ? payload.find("timestamp") : payload.end();
      out.set_timestamp(ts != payload.end() && ts->is_string() ? ts->get<std::string>()
                                                               : now_rfc3339());
      out.set_dropped(subscription->dropped());
      if (!writer->Write(out)) {
        break;  // the client went away
      }
      if (!only.empty() && name == "sessiondestroyed") {
        ended = true;
        break;
      }
    }
    subscription->close();
    if (ended) {
      return grpc::Status::OK;
    }
    if (cancel.load()) {
      return {grpc::StatusCode::CANCELLED, "the server is shutting down"};
    }
    return {grpc::StatusCode::CANCELLED, "the client cancelled"};
  }

 private:
  using Stream = grpc::ServerReaderWriter<v1::ProcessResponse, v1::ProcessRequest>;

  static void set_info(const supervisor::SessionInfo& info, v1::SessionInfo* out) {
    out->set_id(info.id);
    out->set_name(info.name);
    out->set_created_at(info.created_at);
    out->set_node_count(static_cast<std::uint32_t>(info.node_count));
  }

  /// A session API error, as compile_error treats a pipeline's: a file outside the path
  /// allow-lists is INVALID_ARGUMENT with the trailer permission_denied. A node that has
  /// stopped or failed (kUnavailable: it cannot be tuned) is FAILED_PRECONDITION.
  static grpc::Status session_error(grpc::ServerContext* ctx, const Status& s) {
    ctx->AddTrailingMetadata(kErrorCodeKey, std::string(error_code_name(s.code())));
    grpc::StatusCode code = grpc_code_for(s.code());
    if (s.code() == ErrorCode::kPermissionDenied) {
      code = grpc::StatusCode::INVALID_ARGUMENT;
    } else if (s.code() == ErrorCode::kUnavailable) {
      code = grpc::StatusCode::FAILED_PRECONDITION;
    }
    return {code, error_text(s)};
  }

  static Result<supervisor::BatchOperation> batch_operation_of(const v1::BatchOperation& in) {
    using Action = supervisor::BatchOperation::Action;
    supervisor::BatchOperation op;
    switch (in.operation_case()) {
      case v1::BatchOperation::kAddNode: {
        op.action = Action::kAddNode;
        op.node_id = in.add_node().node_id();
        op.kind = in.add_node().kind();
        const std::string& params = in.add_node().params_json();
        if (!params.empty()) {
          op.params = nlohmann::json::parse(params, nullptr, false);
          if (op.params.is_discarded() || !(op.params.is_object() || op.params.is_null())) {
            return Status(ErrorCode::kInvalidArgument,
                          "add_node '" + op.node_id + "': params_json must be a JSON object",
                          SourceLocation{op.node_id, "", 0, 0});
          }
        }
        break;
      }
      case v1::BatchOperation::kRemoveNode:
        op.action = Action::kRemoveNode;
        op.node_id = in.remove_node().node_id();
        break;
      case v1::BatchOperation::kConnect: {
        const auto& c = in.connect();
        op.action = Action::kConnect;
        op.from_node = c.from_node();
        op.from_pin = c.from_pin();
        op.to_node = c.to_node();
        op.to_pin = c.to_pin();
        op.mode = c.mode() == v1::CONNECTION_MODE_BEST_EFFORT ? ConnectionMode::kBestEffort
                                                               : ConnectionMode::kReliable;
        break;
      }
      case v1::BatchOperation::kDisconnect: {
        const auto& c = in.disconnect();
        op.action = Action::kDisconnect;
        op.from_node = c.from_node();
        op.from_pin = c.from_pin();
        op.to_node = c.to_node();
        op.to_pin = c.to_pin();
        break;
      }
      default:
        return Status(ErrorCode::kInvalidArgument,
                      "an operation must be add_node, remove_node, connect or disconnect");
    }
    return op;
  }

  static std::string now_rfc3339() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return buf;
  }

  /// Null when the caller may do it; else UNAUTHENTICATED or PERMISSION_DENIED.
  std::optional<grpc::Status> authorize(grpc::ServerContext* ctx, Role needed,
                                        const char* what) const {
    if (config_.tokens.empty()) {
      return std::nullopt;  // no auth configured: loopback only (check_listen_policy)
    }
    const auto& md = ctx->client_metadata();
    const auto it = md.find("authorization");
    if (it == md.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "authentication required: send metadata authorization: Bearer <token>");
    }
    const std::string_view auth(it->second.data(), it->second.size());
    const TokenConfig* who = nullptr;
    if (auth.rfind("Bearer ", 0) == 0) {
      const std::string_view token = auth.substr(7);
      for (const auto& t : config_.tokens) {
        if (constant_time_equal(t.token, token)) {
          who = &t;
        }
      }
    }
    if (who == nullptr) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid token");
    }
    if (static_cast<int>(who->role) < static_cast<int>(needed)) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "role '" + std::string(role_name(who->role)) + "' may not " + what +
                              " (needs " + std::string(role_name(needed)) + ")");
    }
    return std::nullopt;
  }

  static grpc::Status protocol_error(grpc::ServerContext* ctx, const std::string& message) {
    ctx->AddTrailingMetadata(kErrorCodeKey, "invalid_argument");
    return {grpc::StatusCode::INVALID_ARGUMENT, message};
  }

  grpc::Status config_too_large(grpc::ServerContext* ctx, std::size_t size) const {
    ctx->AddTrailingMetadata(kErrorCodeKey, "resource_exhausted");
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            "the pipeline is " + std::to_string(size) + " bytes; limits.max_config_bytes is " +
                std::to_string(config_.max_config_bytes)};
  }

  grpc::Status run(grpc::ServerContext* ctx, Stream* stream, const v1::Pipeline& pipeline,
                   bool has_media, std::optional<std::string> pending, std::atomic<bool>& cancel) {
    ByteQueue upload(kQueueBytes);
    ByteQueue output(kQueueBytes);
    QueueSource source(upload);
    QueueSink sink(output);

    supervisor::RunReport report;
    std::mutex done_mutex;
    std::condition_variable done_cv;
    bool done = false;
    std::thread runner([&] {
      report = engine_.run_oneshot(pipeline, has_media ? &source : nullptr, &sink, &cancel);
      output.close(report.status);
      upload.abort();  // stop reading media if the pipeline ended before the upload did
      std::lock_guard lock(done_mutex);
      done = true;
      done_cv.notify_all();
    });

    std::atomic<bool> write_failed{false};
    std::uint64_t bytes_out = 0;
    std::thread writer([&] {
      bool first = true;
      while (auto chunk = output.pop()) {
        v1::ProcessResponse r;
        auto* out = r.mutable_output();
        bytes_out += chunk->size();
        out->set_data(std::move(*chunk));
        if (first) {
          out->set_content_type(sink.content_type());
          first = false;
        }
        if (!stream->Write(r)) {
          write_failed.store(true);  // the client went away: stop the pipeline
          cancel.store(true);
          output.abort();
          break;
        }
      }
    });

    // This thread: the media, into the pipeline's input, within limits.max_body_bytes.
    Status upload_error;
    std::uint64_t bytes_in = 0;
    if (has_media) {
      auto push = [&](std::string chunk) {
        if (chunk.empty()) {
          return true;  // an empty chunk would read as the end of the stream
        }
        bytes_in += chunk.size();
        if (bytes_in > config_.max_body_bytes) {
          upload_error = Status(ErrorCode::kResourceExhausted,
                                "the media exceeds limits.max_body_bytes (" +
                                    std::to_string(config_.max_body_bytes) + " bytes)");
          return false;
        }
        return upload.push(std::move(chunk));
      };
      bool more = !pending || push(std::move(*pending));
      bool closed = false;
      while (more && !cancel.load()) {
        v1::ProcessRequest req;
        if (!stream->Read(&req)) {
          if (ctx->IsCancelled()) {
            cancel.store(true);
            upload.close(Status(ErrorCode::kCancelled, "the client cancelled"));
          } else {
            upload.close();  // the half-close: end of the media
          }
          closed = true;
          break;
        }
        if (req.has_config()) {
          upload_error = Status(ErrorCode::kInvalidArgument,
                                "`config` may be sent only once, in the first message");
          break;
        }
        more = push(std::move(*req.mutable_media()));
      }
      if (!upload_error.is_ok()) {
        cancel.store(true);
        upload.close(upload_error);
      } else if (!closed) {
        // Stopped early (cancelled, or the pipeline is done with its input): no reader waits.
        upload.close(Status(ErrorCode::kCancelled, "the request was cancelled"));
      }
    }

    // Wait for the run; a client that cancels (or whose deadline passes) stops it.
    {
      std::unique_lock lock(done_mutex);
      while (!done_cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; })) {
        if (ctx->IsCancelled() && !cancel.load()) {
          cancel.store(true);
          output.abort();
        }
      }
    }
    runner.join();
    writer.join();

    Status final_status = upload_error.is_ok() ? report.status : upload_error;
    if (final_status.is_ok() && write_failed.load()) {
      final_status = Status(ErrorCode::kCancelled, "the client went away");
    }
    const grpc::Status status = to_grpc(final_status);
    if (!final_status.is_ok()) {
      spdlog::warn("grpc Process failed: {}", final_status.to_string());
    }
    if (!write_failed.load() && !ctx->IsCancelled()) {
      v1::ProcessResponse r;
      auto* res = r.mutable_result();
      res->set_code(static_cast<int>(status.error_code()));
      res->set_message(final_status.is_ok() ? "" : final_status.to_string());
      res->set_error_code(std::string(error_code_name(final_status.code())));
      res->set_wall_seconds(report.wall_seconds);
      res->set_worker_count(static_cast<std::uint32_t>(report.worker_count));
      res->set_placement(std::string(supervisor::placement_name(report.placement)));
      res->set_bytes_in(bytes_in);
      res->set_bytes_out(bytes_out);
      for (const auto& n : report.nodes) {
        auto* node = res->add_nodes();
        node->set_id(n.id);
        node->set_kind(n.kind);
        node->set_worker_pid(n.worker_pid);
        node->set_state(state_of(n.state));
        node->set_message(n.message);
        node->set_packets_in(n.stats.packets_in);
        node->set_packets_out(n.stats.packets_out);
        node->set_bytes_in(n.stats.bytes_in);
        node->set_bytes_out(n.stats.bytes_out);
        node->set_dropped(n.stats.dropped);
      }
      stream->Write(r);
    }
    ctx->AddTrailingMetadata(kErrorCodeKey, std::string(error_code_name(final_status.code())));
    return status;
  }

  const ServerConfig& config_;
  supervisor::Engine& engine_;
  supervisor::SessionManager& sessions_;
  CallRegistry& calls_;
};

}  // namespace

grpc::StatusCode grpc_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return grpc::StatusCode::OK;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidParam:
    case ErrorCode::kUnknownKind:
    case ErrorCode::kPinTypeMismatch:
    case ErrorCode::kGraphError:
    case ErrorCode::kCorruptMedia: return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case ErrorCode::kPermissionDenied: return grpc::StatusCode::PERMISSION_DENIED;
    case ErrorCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ErrorCode::kAlreadyExists: return grpc::StatusCode::ALREADY_EXISTS;
    case ErrorCode::kCancelled: return grpc::StatusCode::CANCELLED;
    case ErrorCode::kDeadlineExceeded: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case ErrorCode::kUnavailable:  // a worker died: retrying the same input would not help
    case ErrorCode::kInternal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::UNKNOWN;
}

struct GrpcServer::Impl {
  CallRegistry calls;
  std::unique_ptr<ControlService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::mutex mutex;
  std::condition_variable cv;
  bool stopping = false;
  std::thread reaper;  // cancels calls past their deadline
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() { shutdown(); }

unsigned short GrpcServer::port() const { return static_cast<unsigned short>(impl_->port); }

Result<std::unique_ptr<GrpcServer>> GrpcServer::start(const ServerConfig& config,
                                                      supervisor::Engine& engine,
                                                      supervisor::SessionManager& sessions) {
  const std::string& listen = config.grpc_listen;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size() ||
      listen.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument,
                  "server.grpc_listen must be HOST:PORT, got '" + listen + "'");
  }
  if (config.tokens.empty() && !config.allow_insecure_non_loopback &&
      !is_loopback(host_of(listen))) {
    return Status(ErrorCode::kInvalidArgument,
                  "refusing to serve gRPC on " + listen +
                      " without authentication: listen on 127.0.0.1, configure auth.tokens, or "
                      "set server.allow_insecure_non_loopback: true");
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // gRPC's health service is built without C++ descriptors; linking ours in (and so into the
  // descriptor pool) lets reflection describe grpc.health.v1 to generic tools.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();

  auto impl = std::make_unique<Impl>();
  impl->service = std::make_unique<ControlService>(config, engine, sessions, impl->calls);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &impl->port);
  // A taken port is an error, not a port silently shared with another server.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(
      std::max<int>(kMaxMessageBytes,
                    static_cast<int>(std::min<std::uint64_t>(config.max_config_bytes + 65536,
                                                             1U << 30))));
  grpc::ResourceQuota quota("skit-grpc");
  quota.SetMaxThreads(static_cast<int>(std::max<std::uint32_t>(config.max_connections, 16)));
  builder.SetResourceQuota(quota);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return Status(ErrorCode::kUnavailable,
                  "cannot serve gRPC on " + listen +
                      " (server.grpc_listen; is the port taken? an empty value disables gRPC)");
  }
  impl->server->GetHealthCheckService()->SetServingStatus(true);
  impl->server->GetHealthCheckService()->SetServingStatus(v1::Control::service_full_name(), true);
  Impl* raw = impl.get();
  impl->reaper = std::thread([raw] {
    std::unique_lock lock(raw->mutex);
    while (!raw->cv.wait_for(lock, std::chrono::milliseconds(250), [raw] { return raw->stopping; })) {
      raw->calls.cancel_expired();
    }
  });
  spdlog::info("gRPC listening on {}:{}", host_of(listen), impl->port);
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

void GrpcServer::shutdown() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) {
      return;
    }
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  impl_->reaper.join();
  spdlog::info("gRPC shutting down: cancelling running pipelines");
  impl_->server->GetHealthCheckService()->SetServingStatus(false);
  impl_->calls.cancel_all();
  // Process calls end as soon as their pipelines are torn down. Then only short calls can be
  // left: they get a moment. (gRPC's Shutdown waits until its deadline while any client
  // keeps an idle connection open, so the deadline is kept short rather than generous.)
  const bool drained = impl_->calls.wait_empty(kShutdownGrace);
  impl_->server->Shutdown(std::chrono::system_clock::now() + kUnaryGrace);
  impl_->server->Wait();
  spdlog::info("gRPC stopped{}", drained ? "" : " (some calls did not end in time)");
}

}  // namespace skit::gateway
