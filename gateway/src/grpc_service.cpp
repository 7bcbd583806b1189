// SPDX-License-Identifier: MPL-2.0
// skit.v1.Control. The unary RPCs run on gRPC's synchronous handler threads (they are short:
// the session RPCs call the session manager directly); the long-lived streams, Process and
// WatchEvents, run on the callback API, so an open stream holds no thread: a stream is a
// reactor driven by gRPC's events and by its queues' listeners. Process: a runner thread runs
// the pipeline on the engine; the client's media goes into a bounded ByteQueue
// (streamkit::http_input) as it is read, each read started only when the queue has room;
// streamkit::http_output's bytes are written back as the pipeline produces them; the call
// ends as soon as the run does. Long-lived streams count against the per-connection and
// per-token caps (grpc_infra.hpp); auth uses the HTTP gateway's bearer tokens and roles.
#include "grpc_service.hpp"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_callback.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "byte_queue.hpp"
#include "control_plane.hpp"
#include "grpc_infra.hpp"
#include "grpc_reflection.hpp"
#include "skit/gateway/session_json.hpp"
#include "skit/core/packet_type.hpp"
#include "skit/core/registry.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"
#include "skit/v1/control.grpc.pb.h"

namespace skit::gateway {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kQueueBytes = 1 << 20;
constexpr int kMaxMessageBytes = 4 << 20;  // a media chunk; the config may need more
constexpr auto kShutdownGrace = std::chrono::seconds(5);   // for Process calls to end
constexpr auto kUnaryGrace = std::chrono::milliseconds(300);  // then for the rest
// A Process call whose run has not ended this long past limits.request_timeout_ms (a client
// that never sends its config, say) is cancelled.
constexpr auto kTimeoutGrace = std::chrono::seconds(5);

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

/// An engine or session error's gRPC code: a file outside the path allow-lists is
/// PERMISSION_DENIED (HTTP's 403), a node that has stopped or failed cannot be tuned
/// (FAILED_PRECONDITION).
grpc::StatusCode code_for(const Status& s, bool session_api) {
  if (session_api && s.code() == ErrorCode::kUnavailable) {
    return grpc::StatusCode::FAILED_PRECONDITION;
  }
  return grpc_code_for(s.code());
}

/// Every problem of a pipeline, one per line in the message and one per detail. A path
/// policy refusal decides the code (PERMISSION_DENIED); otherwise the first problem's.
grpc::Status compile_error(grpc::ServerContextBase& ctx, const std::vector<Status>& errors,
                           const std::string& field) {
  std::string message;
  ErrorCode code = errors.empty() ? ErrorCode::kInvalidArgument : errors.front().code();
  std::vector<v1::Problem> problems;
  for (const auto& e : errors) {
    message += (message.empty() ? "" : "\n") + e.to_string();
    if (e.code() == ErrorCode::kPermissionDenied) {
      code = ErrorCode::kPermissionDenied;
    }
    problems.push_back(problem_of(e, field));
  }
  return rpc_error(ctx, grpc_code_for(code), error_code_name(code), message, problems);
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

/// A JSON document as a google.protobuf.Struct (false if it is not an object).
bool to_struct(const nlohmann::json& value, google::protobuf::Struct* out) {
  return value.is_object() &&
         google::protobuf::util::JsonStringToMessage(
             value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), out)
             .ok();
}

/// A google.protobuf.Struct as JSON (numbers are doubles: 2 stays 2).
nlohmann::json from_struct(const google::protobuf::Struct& value) {
  std::string text;
  (void)google::protobuf::util::MessageToJsonString(value, &text);
  return nlohmann::json::parse(text, nullptr, false);
}

/// A JSON object in a request field; the error carries the field and where in the text.
Result<nlohmann::json> json_object_of(const std::string& text, const std::string& what,
                                      v1::SourcePosition* position) {
  try {
    auto value = nlohmann::json::parse(text);
    if (!value.is_object()) {
      return Status(ErrorCode::kInvalidArgument, what + " must be a JSON object");
    }
    return value;
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based, the offending character.
    const std::size_t at = std::min<std::size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
    const auto nl = text.rfind('\n', at == 0 ? 0 : at - 1);
    const auto column = nl == std::string::npos || at == 0 ? at + 1 : at - nl;
    if (position != nullptr) {
      position->set_line(static_cast<int>(line));
      position->set_column(static_cast<int>(column));
    }
    return Status(ErrorCode::kInvalidArgument,
                  what + " is not valid JSON (line " + std::to_string(line) + ", column " +
                      std::to_string(column) + ")");
  }
}

const char* operation_name(const v1::BatchOperation& op) {
  switch (op.operation_case()) {
    case v1::BatchOperation::kAddNode: return "add_node";
    case v1::BatchOperation::kRemoveNode: return "remove_node";
    case v1::BatchOperation::kConnect: return "connect";
    case v1::BatchOperation::kDisconnect: return "disconnect";
    default: return "";
  }
}

/// The request field a batch problem is about.
std::string batch_field(const v1::ApplyBatchRequest& req, std::size_t index, ErrorCode code) {
  std::string field = "operations[" + std::to_string(index) + "]";
  if (index < static_cast<std::size_t>(req.operations_size())) {
    const auto& op = req.operations(static_cast<int>(index));
    const std::string name = operation_name(op);
    if (!name.empty()) {
      field += "." + name;
      if (op.has_add_node() && code == ErrorCode::kInvalidParam) {
        field += ".params_json";
      }
    }
  }
  return field;
}

class ControlService;

// ---------------------------------------------------------------------------------------------
// Process

class ProcessCall final
    : public grpc::ServerBidiReactor<v1::ProcessRequest, v1::ProcessResponse> {
 public:
  ProcessCall(ControlService& service, grpc::CallbackServerContext* ctx);
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  enum class Phase : std::uint8_t { kConfig, kProbe, kMedia, kUploadDone };
  enum class Stop : std::uint8_t { kNone, kClient, kShutdown, kExpired };

  void start_locked();
  void accept_chunk_locked(std::string chunk);
  void fail_upload_locked(Status status);
  void on_upload_space();
  void pump_output_locked();
  void maybe_finish_locked();
  void finish_early_locked(const grpc::Status& status);
  void stop(Stop why);
  [[nodiscard]] Status final_status_locked() const;

  ControlService& service_;
  grpc::CallbackServerContext* ctx_;
  const Clock::time_point started_at_ = Clock::now();
  std::unique_ptr<StreamLimiter::Ticket> ticket_;
  bool registered_ = false;

  std::mutex mutex_;
  Phase phase_ = Phase::kConfig;
  v1::ProcessRequest request_;
  std::string yaml_;
  bool has_media_ = false;
  ByteQueue upload_{kQueueBytes};
  ByteQueue output_{kQueueBytes};
  QueueSource source_{upload_};
  QueueSink sink_{output_};
  std::atomic<bool> cancel_{false};
  std::thread runner_;
  bool started_ = false;
  bool run_done_ = false;
  supervisor::RunReport report_;
  Status upload_error_;
  std::optional<std::string> held_;  // read, waiting for room in upload_
  bool reading_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool first_output_ = true;
  Stop stop_ = Stop::kNone;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  v1::ProcessResponse out_;
};

// ---------------------------------------------------------------------------------------------
// WatchEvents

class WatchCall final : public grpc::ServerWriteReactor<v1::SessionEvent> {
 public:
  WatchCall(ControlService& service, grpc::CallbackServerContext* ctx,
            const v1::WatchEventsRequest& req);
  void OnSendInitialMetadataDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void pump();
  void pump_locked();
  void finish_locked(const grpc::Status& status);
  void stop(bool shutdown);

  ControlService& service_;
  grpc::CallbackServerContext* ctx_;
  std::unique_ptr<StreamLimiter::Ticket> ticket_;
  std::shared_ptr<supervisor::EventSubscription> subscription_;
  bool registered_ = false;
  std::string only_;  // a session id: only its events, and end after its sessiondestroyed
  std::mutex mutex_;
  v1::SessionEvent out_;
  bool writing_ = false;
  bool ending_ = false;  // the last event is being written
  bool stopping_ = false;
  bool shutdown_ = false;
  bool finished_ = false;
};

// ---------------------------------------------------------------------------------------------
// The service

using ControlBase =
    v1::Control::WithCallbackMethod_Process<v1::Control::WithCallbackMethod_WatchEvents<
        v1::Control::Service>>;

class ControlService final : public ControlBase {
 public:
  ControlService(const ServerConfig& config, supervisor::Engine& engine,
                 supervisor::SessionManager& sessions, const Authenticator& auth,
                 StreamLimiter& limiter, CallRegistry& calls, HealthState& health)
      : config_(config), engine_(engine), sessions_(sessions), auth_(auth), limiter_(limiter),
        calls_(calls), health_(health) {}

  grpc::ServerBidiReactor<v1::ProcessRequest, v1::ProcessResponse>* Process(
      grpc::CallbackServerContext* ctx) override {
    return new ProcessCall(*this, ctx);
  }

  grpc::ServerWriteReactor<v1::SessionEvent>* WatchEvents(
      grpc::CallbackServerContext* ctx, const v1::WatchEventsRequest* req) override {
    return new WatchCall(*this, ctx, *req);
  }

  grpc::Status ListNodeKinds(grpc::ServerContext* ctx, const v1::ListNodeKindsRequest* /*req*/,
                             v1::ListNodeKindsResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kViewer, "list node kinds")) {
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
      k->set_bidirectional(d->to_json().value("bidirectional", false));
    }
    return grpc::Status::OK;
  }

  grpc::Status GetPermissions(grpc::ServerContext* ctx, const v1::GetPermissionsRequest* /*req*/,
                              v1::GetPermissionsResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    Caller caller;  // without auth: admin
    if (auto denied = admit(*ctx, Role::kViewer, "read permissions", &caller)) {
      return *denied;
    }
    resp->set_role(std::string(role_name(caller.role)));
    const nlohmann::json permissions = permissions_of(caller.role);
    for (const auto& [name, allowed] : permissions.items()) {
      (*resp->mutable_permissions())[name] = allowed.get<bool>();
    }
    return grpc::Status::OK;
  }

  grpc::Status GetConfig(grpc::ServerContext* ctx, const v1::GetConfigRequest* /*req*/,
                         v1::GetConfigResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kViewer, "read the config")) {
      return *denied;
    }
    resp->set_version(SKIT_VERSION);
    resp->set_placement(std::string(supervisor::placement_name(engine_.config().placement)));
    resp->set_max_body_bytes(config_.max_body_bytes);
    resp->set_max_config_bytes(config_.max_config_bytes);
    resp->set_max_concurrent_oneshots(
        static_cast<std::uint32_t>(engine_.config().max_concurrent_oneshots));
    resp->set_request_timeout_ms(static_cast<std::uint64_t>(config_.request_timeout.count()));
    resp->set_max_sessions(static_cast<std::uint32_t>(sessions_.config().max_sessions));
    resp->set_max_nodes_per_session(
        static_cast<std::uint32_t>(sessions_.config().max_nodes_per_session));
    resp->set_grpc_streams_per_connection(
        static_cast<std::uint32_t>(config_.grpc_streams_per_connection));
    resp->set_grpc_streams_per_token(static_cast<std::uint32_t>(config_.grpc_streams_per_token));
    resp->set_grpc_max_streams(static_cast<std::uint32_t>(config_.grpc_max_streams));
    return grpc::Status::OK;
  }

  grpc::Status GetPacketSchema(grpc::ServerContext* ctx, const v1::GetPacketSchemaRequest* /*req*/,
                               v1::GetPacketSchemaResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kViewer, "read the packet schema")) {
      return *denied;
    }
    const auto converted =
        google::protobuf::util::JsonStringToMessage(packet_schema_json().dump(), resp->mutable_schema());
    if (!converted.ok()) {
      return rpc_error(*ctx, grpc::StatusCode::INTERNAL, "internal",
                       "the packet schema does not convert: " + converted.ToString());
    }
    return grpc::Status::OK;
  }

  grpc::Status ListSamples(grpc::ServerContext* ctx, const v1::ListSamplesRequest* /*req*/,
                           v1::ListSamplesResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kViewer, "list samples")) {
      return *denied;
    }
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(samples_dir(), ec)) {
      if (e.path().extension() == ".yml" || e.path().extension() == ".yaml") {
        files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      load_sample(f, resp->add_samples());
    }
    return grpc::Status::OK;
  }

  grpc::Status GetSample(grpc::ServerContext* ctx, const v1::GetSampleRequest* req,
                         v1::Sample* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kViewer, "read samples")) {
      return *denied;
    }
    std::string id = req->id();
    if (id.rfind("oneshot/", 0) == 0) {
      id = id.substr(8);
    }
    if (id.empty() || id.find('/') != std::string::npos || id.find("..") != std::string::npos) {
      return rpc_error(*ctx, grpc::StatusCode::INVALID_ARGUMENT, "invalid_argument",
                       "bad sample id '" + req->id() + "'");
    }
    for (const char* ext : {".yml", ".yaml"}) {
      if (std::filesystem::exists(samples_dir() / (id + ext))) {
        load_sample(samples_dir() / (id + ext), resp);
        return grpc::Status::OK;
      }
    }
    return rpc_error(*ctx, grpc::StatusCode::NOT_FOUND, "not_found",
                     "no oneshot sample '" + req->id() + "'");
  }

  grpc::Status ValidatePipeline(grpc::ServerContext* ctx, const v1::ValidatePipelineRequest* req,
                                v1::ValidatePipelineResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kViewer, "validate pipelines")) {
      return *denied;
    }
    const std::string& yaml = req->pipeline_yaml();
    if (yaml.size() > config_.max_config_bytes) {
      return config_too_large(*ctx, yaml.size());
    }
    bool has_media = req->has_media();
    if (!req->has_has_media()) {
      // Whatever the pipeline reads: media when it has a streamkit::http_input.
      auto plain = supervisor::compile_pipeline_yaml(yaml);
      if (!plain.ok()) {
        return compile_error(*ctx, plain.errors, "pipeline_yaml");
      }
      const auto& nodes = plain.pipeline.nodes();
      has_media = std::any_of(nodes.begin(), nodes.end(), [](const v1::NodeSpec& n) {
        return n.kind() == "streamkit::http_input";
      });
    }
    auto compiled = engine_.compile_oneshot(yaml, has_media);
    if (!compiled.ok()) {
      return compile_error(*ctx, compiled.errors, "pipeline_yaml");
    }
    *resp->mutable_pipeline() = std::move(compiled.pipeline);
    return grpc::Status::OK;
  }

  grpc::Status CreateSession(grpc::ServerContext* ctx, const v1::CreateSessionRequest* req,
                             v1::CreateSessionResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kOperator, "create sessions")) {
      return *denied;
    }
    if (req->pipeline_yaml().size() > config_.max_config_bytes) {
      return config_too_large(*ctx, req->pipeline_yaml().size());
    }
    const std::optional<std::string> name =
        req->has_name() ? std::optional<std::string>(req->name()) : std::nullopt;
    auto info = create_session(sessions_, name, req->pipeline_yaml());
    if (!info) {
      // A bad document: every problem with its place, as the compiler reports them.
      const Status& s = info.status();
      if (s.code() != ErrorCode::kAlreadyExists && s.code() != ErrorCode::kResourceExhausted &&
          !req->pipeline_yaml().empty()) {
        auto compiled = supervisor::compile_pipeline_yaml(req->pipeline_yaml());
        if (!compiled.ok()) {
          return compile_error(*ctx, compiled.errors, "pipeline_yaml");
        }
      }
      return session_error(*ctx, s, s.code() == ErrorCode::kAlreadyExists ? "name" : "pipeline_yaml");
    }
    set_info(*info, resp->mutable_session());
    return grpc::Status::OK;
  }

  grpc::Status ListSessions(grpc::ServerContext* ctx, const v1::ListSessionsRequest* /*req*/,
                            v1::ListSessionsResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kViewer, "list sessions")) {
      return *denied;
    }
    for (const auto& s : sessions_.list_sessions()) {
      set_info(s, resp->add_sessions());
    }
    return grpc::Status::OK;
  }

  grpc::Status GetSession(grpc::ServerContext* ctx, const v1::GetSessionRequest* req,
                          v1::GetSessionResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kViewer, "read sessions")) {
      return *denied;
    }
    auto info = sessions_.find_session(req->session());
    if (!info) {
      return session_error(*ctx, info.status(), "session");
    }
    auto view = sessions_.pipeline(info->id);
    if (!view) {
      return session_error(*ctx, view.status(), "session");
    }
    const nlohmann::json pipeline = pipeline_json(*view);
    set_info(*info, resp->mutable_session());
    resp->set_pipeline_json(pipeline.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    to_struct(pipeline, resp->mutable_pipeline());
    return grpc::Status::OK;
  }

  grpc::Status DeleteSession(grpc::ServerContext* ctx, const v1::DeleteSessionRequest* req,
                             v1::DeleteSessionResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kOperator, "destroy sessions")) {
      return *denied;
    }
    auto info = sessions_.destroy_session(req->session());
    if (!info) {
      return session_error(*ctx, info.status(), "session");
    }
    resp->set_session_id(info->id);
    return grpc::Status::OK;
  }

  grpc::Status ApplyBatch(grpc::ServerContext* ctx, const v1::ApplyBatchRequest* req,
                          v1::ApplyBatchResponse* resp) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kOperator, "modify sessions")) {
      return *denied;
    }
    std::vector<supervisor::BatchOperation> ops;
    std::vector<v1::BatchIssue> issues;  // the request's own problems (its JSON, its shape)
    for (int i = 0; i < req->operations_size(); ++i) {
      v1::SourcePosition position;
      auto op = batch_operation_of(req->operations(i), &position);
      if (!op) {
        const Status& s = op.status();
        v1::BatchIssue issue;
        issue.set_operation(static_cast<std::uint32_t>(i));
        issue.set_node_id(s.where().node_id);
        issue.set_message(error_text(s));
        issue.set_field(batch_field(*req, static_cast<std::size_t>(i), s.code()) +
                        (req->operations(i).has_add_node() ? ".params_json" : ""));
        *issue.mutable_position() = position;
        issue.set_error_code(std::string(error_code_name(s.code())));
        issues.push_back(std::move(issue));
        continue;
      }
      ops.push_back(std::move(*op));
    }
    if (issues.empty()) {
      // The session's view: every operation checked as it would apply, in order.
      auto checked = sessions_.validate_batch(req->session(), ops);
      if (!checked) {
        return session_error(*ctx, checked.status(), "session");
      }
      for (const auto& i : *checked) {
        v1::BatchIssue issue;
        issue.set_operation(static_cast<std::uint32_t>(i.operation));
        issue.set_node_id(i.node_id);
        issue.set_message(i.message);
        issue.set_field(batch_field(*req, i.operation, i.code));
        issue.set_error_code(std::string(error_code_name(i.code)));
        issues.push_back(std::move(issue));
      }
    } else if (auto found = sessions_.find_session(req->session()); !found) {
      return session_error(*ctx, found.status(), "session");
    }
    if (req->validate_only()) {
      for (auto& i : issues) {
        *resp->add_issues() = std::move(i);
      }
      return grpc::Status::OK;
    }
    if (issues.empty()) {
      Status s = sessions_.apply_batch(req->session(), ops);
      if (s.is_ok()) {
        resp->set_applied(true);
        return grpc::Status::OK;
      }
      // Changed since the check (a concurrent edit): the manager's own account.
      return session_error(*ctx, s, "operations");
    }
    // All or nothing: every problem, numbered from 0 like the operations.
    std::string message;
    std::vector<v1::Problem> problems;
    ErrorCode code = ErrorCode::kInvalidArgument;
    for (const auto& i : issues) {
      const std::string text = "operation " + std::to_string(i.operation()) + ": " + i.message();
      message += (message.empty() ? "" : "\n") + text;
      v1::Problem p;
      p.set_message(text);
      p.set_error_code(i.error_code());
      p.set_field(i.field());
      *p.mutable_position() = i.position();
      p.set_node_id(i.node_id());
      p.set_operation(static_cast<int>(i.operation()));
      problems.push_back(std::move(p));
    }
    // The first problem's kind decides the code (a path escape is not a syntax error).
    for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
      if (error_code_name(static_cast<ErrorCode>(c)) == issues.front().error_code()) {
        code = static_cast<ErrorCode>(c);
      }
    }
    return rpc_error(*ctx, code_for(Status(code, ""), true), error_code_name(code), message,
                     problems);
  }

  grpc::Status TuneNode(grpc::ServerContext* ctx, const v1::TuneNodeRequest* req,
                        v1::TuneNodeResponse* /*resp*/) override {
    const HealthState::UnaryGuard busy(health_);
    if (auto denied = admit(*ctx, Role::kOperator, "tune nodes")) {
      return *denied;
    }
    v1::SourcePosition position;
    auto patch = req->has_params() ? Result<nlohmann::json>(from_struct(req->params()))
                                   : json_object_of(req->params_json(), "params_json", &position);
    if (!patch) {
      v1::Problem p = problem_of(patch.status(), "params_json");
      *p.mutable_position() = position;
      return rpc_error(*ctx, grpc::StatusCode::INVALID_ARGUMENT, "invalid_argument",
                       patch.status().message() + " (a JSON object of params, e.g. {\"gain\": 0.5})",
                       {p});
    }
    // The manager checks the patch against the node policy (file paths) itself.
    const Status s = sessions_.tune_node(req->session(), req->node_id(), *patch, !req->no_wait());
    return s.is_ok() ? grpc::Status::OK : session_error(*ctx, s, "params_json");
  }

  // ---- shared with the stream reactors

  /// Null when the call may go on; else the status to end it with: the server is draining
  /// (UNAVAILABLE, new calls are refused), or the caller may not (auth).
  std::optional<grpc::Status> admit(grpc::ServerContextBase& ctx, Role needed, const char* what,
                                    Caller* caller = nullptr) const {
    if (calls_.draining()) {
      return rpc_error(ctx, grpc::StatusCode::UNAVAILABLE, "unavailable",
                       "the server is shutting down");
    }
    if (grpc::Status s = auth_.authorize(ctx, needed, what, caller); !s.ok()) {
      return s;
    }
    return std::nullopt;
  }

  /// A session API error: the message with its place, the code mapped as in docs/grpc.md.
  static grpc::Status session_error(grpc::ServerContextBase& ctx, const Status& s,
                                    const std::string& field) {
    std::vector<v1::Problem> problems;
    const bool invalid = grpc_code_for(s.code()) == grpc::StatusCode::INVALID_ARGUMENT ||
                         s.code() == ErrorCode::kPermissionDenied;
    if (invalid) {
      problems.push_back(problem_of(s, field));
      problems.back().set_message(error_text(s));
    }
    return rpc_error(ctx, code_for(s, true), error_code_name(s.code()), error_text(s), problems);
  }

  grpc::Status config_too_large(grpc::ServerContextBase& ctx, std::size_t size) const {
    return rpc_error(ctx, grpc::StatusCode::RESOURCE_EXHAUSTED, "resource_exhausted",
                     "the pipeline is " + std::to_string(size) +
                         " bytes; limits.max_config_bytes is " +
                         std::to_string(config_.max_config_bytes));
  }

  static grpc::Status protocol_error(grpc::ServerContextBase& ctx, const std::string& message) {
    return rpc_error(ctx, grpc::StatusCode::INVALID_ARGUMENT, "invalid_argument", message);
  }

  const ServerConfig& config_;
  supervisor::Engine& engine_;
  supervisor::SessionManager& sessions_;
  const Authenticator& auth_;
  StreamLimiter& limiter_;
  CallRegistry& calls_;
  HealthState& health_;

 private:
  [[nodiscard]] std::filesystem::path samples_dir() const {
    return engine_.config().base_dir / config_.samples_dir / "oneshot";
  }

  static void load_sample(const std::filesystem::path& file, v1::Sample* out) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    const std::string yaml = text.str();
    const auto compiled = supervisor::compile_pipeline_yaml(yaml);
    out->set_id("oneshot/" + file.stem().string());
    out->set_name(compiled.pipeline.name().empty() ? file.stem().string()
                                                   : compiled.pipeline.name());
    out->set_description(compiled.pipeline.description());
    out->set_yaml(yaml);
    out->set_mode("oneshot");
  }

  static void set_info(const supervisor::SessionInfo& info, v1::SessionInfo* out) {
    out->set_id(info.id);
    out->set_name(info.name);
    out->set_created_at(info.created_at);
    out->set_node_count(static_cast<std::uint32_t>(info.node_count));
  }

  static Result<supervisor::BatchOperation> batch_operation_of(const v1::BatchOperation& in,
                                                               v1::SourcePosition* position) {
    using Action = supervisor::BatchOperation::Action;
    supervisor::BatchOperation op;
    switch (in.operation_case()) {
      case v1::BatchOperation::kAddNode: {
        op.action = Action::kAddNode;
        op.node_id = in.add_node().node_id();
        op.kind = in.add_node().kind();
        const std::string& params = in.add_node().params_json();
        if (in.add_node().has_params()) {
          op.params = from_struct(in.add_node().params());
        } else if (!params.empty()) {
          auto parsed = json_object_of(params, "add_node '" + op.node_id + "': params_json",
                                       position);
          if (!parsed) {
            return Status(ErrorCode::kInvalidArgument, parsed.status().message(),
                          SourceLocation{op.node_id, "", 0, 0});
          }
          op.params = std::move(*parsed);
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
};

// ---------------------------------------------------------------------------------------------
// ProcessCall

ProcessCall::ProcessCall(ControlService& service, grpc::CallbackServerContext* ctx)
    : service_(service), ctx_(ctx) {
  std::lock_guard lock(mutex_);
  Caller caller;
  if (auto denied = service_.admit(*ctx, Role::kOperator, "run pipelines", &caller)) {
    finish_early_locked(*denied);
    return;
  }
  std::string refusal;
  ticket_ = service_.limiter_.acquire(ctx->peer(), caller.token_name, &refusal);
  if (!ticket_) {
    finish_early_locked(
        rpc_error(*ctx, grpc::StatusCode::RESOURCE_EXHAUSTED, "resource_exhausted", refusal));
    return;
  }
  registered_ = service_.calls_.add(
      this, [this] { stop(Stop::kShutdown); },
      started_at_ + service_.config_.request_timeout + kTimeoutGrace);
  if (!registered_) {
    finish_early_locked(rpc_error(*ctx, grpc::StatusCode::UNAVAILABLE, "unavailable",
                                  "the server is shutting down"));
    return;
  }
  upload_.set_listeners(nullptr, [this] { on_upload_space(); });
  output_.set_listeners(
      [this] {
        std::lock_guard l(mutex_);
        pump_output_locked();
      },
      nullptr);
  reading_ = true;
  StartRead(&request_);
}

void ProcessCall::finish_early_locked(const grpc::Status& status) {
  if (finished_) {
    return;
  }
  finished_ = true;
  Finish(status);
}

void ProcessCall::OnReadDone(bool ok) {
  std::lock_guard lock(mutex_);
  reading_ = false;
  if (finished_) {
    return;
  }
  switch (phase_) {
    case Phase::kConfig: {
      if (!ok) {
        finish_early_locked(
            stop_ != Stop::kNone || ctx_->IsCancelled()
                ? rpc_error(*ctx_, grpc::StatusCode::CANCELLED, "cancelled", "the call was cancelled")
                : ControlService::protocol_error(*ctx_, "expected a ProcessRequest with `config` first"));
        return;
      }
      if (!request_.has_config()) {
        finish_early_locked(ControlService::protocol_error(
            *ctx_, "the first ProcessRequest must carry `config` (the pipeline YAML)"));
        return;
      }
      yaml_ = std::move(*request_.mutable_config()->mutable_pipeline_yaml());
      if (yaml_.size() > service_.config_.max_config_bytes) {
        finish_early_locked(service_.config_too_large(*ctx_, yaml_.size()));
        return;
      }
      if (request_.config().has_has_media()) {
        has_media_ = request_.config().has_media();
        start_locked();
        return;
      }
      // Unset: the next message tells, a media chunk or the half-close (no media).
      phase_ = Phase::kProbe;
      reading_ = true;
      StartRead(&request_);
      return;
    }
    case Phase::kProbe: {
      if (ok) {
        if (request_.has_config()) {
          finish_early_locked(ControlService::protocol_error(
              *ctx_, "`config` may be sent only once, in the first message"));
          return;
        }
        has_media_ = true;
        held_ = std::move(*request_.mutable_media());
      } else if (stop_ != Stop::kNone || ctx_->IsCancelled()) {
        finish_early_locked(
            rpc_error(*ctx_, grpc::StatusCode::CANCELLED, "cancelled", "the call was cancelled"));
        return;
      } else {
        has_media_ = false;
      }
      start_locked();
      return;
    }
    case Phase::kMedia: {
      if (!ok) {
        phase_ = Phase::kUploadDone;
        if (stop_ == Stop::kNone) {
          upload_.close();  // the half-close: the end of the media
        }
        return;
      }
      if (request_.has_config()) {
        fail_upload_locked(Status(ErrorCode::kInvalidArgument,
                                  "`config` may be sent only once, in the first message"));
        return;
      }
      accept_chunk_locked(std::move(*request_.mutable_media()));
      return;
    }
    case Phase::kUploadDone:
      return;
  }
}

void ProcessCall::start_locked() {
  auto compiled = service_.engine_.compile_oneshot(yaml_, has_media_);
  if (!compiled.ok()) {
    finish_early_locked(compile_error(*ctx_, compiled.errors, "config.pipeline_yaml"));
    return;
  }
  started_ = true;
  runner_ = std::thread([this, pipeline = std::move(compiled.pipeline)] {
    supervisor::RunReport report = service_.engine_.run_oneshot(
        pipeline, has_media_ ? &source_ : nullptr, &sink_, &cancel_);
    output_.close(report.status);
    upload_.abort();  // media still coming is not read any more
    std::lock_guard lock(mutex_);
    report_ = std::move(report);
    run_done_ = true;
    pump_output_locked();
  });
  if (!has_media_) {
    phase_ = Phase::kUploadDone;
    return;
  }
  phase_ = Phase::kMedia;
  if (held_) {
    std::string chunk = std::move(*held_);
    held_.reset();
    accept_chunk_locked(std::move(chunk));
  } else {
    reading_ = true;
    StartRead(&request_);
  }
}

void ProcessCall::accept_chunk_locked(std::string chunk) {
  if (stop_ != Stop::kNone || run_done_) {
    return;  // the run is over: nothing more is read
  }
  if (chunk.empty()) {  // an empty chunk would read as the end of the stream
    reading_ = true;
    StartRead(&request_);
    return;
  }
  bytes_in_ += chunk.size();
  if (bytes_in_ > service_.config_.max_body_bytes) {
    fail_upload_locked(Status(ErrorCode::kResourceExhausted,
                              "the media exceeds limits.max_body_bytes (" +
                                  std::to_string(service_.config_.max_body_bytes) + " bytes)"));
    return;
  }
  switch (upload_.try_push(chunk)) {
    case ByteQueue::TryPush::kPushed:
      reading_ = true;
      StartRead(&request_);
      break;
    case ByteQueue::TryPush::kFull:
      held_ = std::move(chunk);  // read on once the pipeline has taken some (on_upload_space)
      break;
    case ByteQueue::TryPush::kAborted:
      break;  // the run is ending
  }
}

void ProcessCall::on_upload_space() {
  std::lock_guard lock(mutex_);
  if (!held_ || finished_ || phase_ != Phase::kMedia) {
    return;
  }
  std::string chunk = std::move(*held_);
  held_.reset();
  bytes_in_ -= chunk.size();  // counted again
  accept_chunk_locked(std::move(chunk));
}

void ProcessCall::fail_upload_locked(Status status) {
  upload_error_ = status;
  cancel_.store(true);
  upload_.close(std::move(status));
  upload_.abort();
  phase_ = Phase::kUploadDone;
}

void ProcessCall::pump_output_locked() {
  if (finished_ || writing_) {
    return;
  }
  if (stop_ != Stop::kClient) {
    if (auto chunk = output_.try_pop()) {
      out_.Clear();
      auto* out = out_.mutable_output();
      bytes_out_ += chunk->size();
      out->set_data(std::move(*chunk));
      if (first_output_) {
        out->set_content_type(sink_.content_type());
        first_output_ = false;
      }
      writing_ = true;
      StartWrite(&out_);
      return;
    }
  }
  maybe_finish_locked();
}

void ProcessCall::OnWriteDone(bool ok) {
  std::lock_guard lock(mutex_);
  writing_ = false;
  if (!ok) {
    // The client went away: stop the pipeline.
    stop_ = Stop::kClient;
    cancel_.store(true);
    output_.abort();
    upload_.abort();
  }
  pump_output_locked();
}

void ProcessCall::OnCancel() { stop(Stop::kClient); }

void ProcessCall::stop(Stop why) {
  std::lock_guard lock(mutex_);
  if (finished_ || stop_ != Stop::kNone) {
    return;
  }
  stop_ = why;
  if (why == Stop::kShutdown && Clock::now() > started_at_ + service_.config_.request_timeout) {
    stop_ = Stop::kExpired;
  }
  cancel_.store(true);
  upload_.abort();
  if (why == Stop::kClient) {
    output_.abort();
  }
  if (!started_) {
    finish_early_locked(rpc_error(
        *ctx_, grpc::StatusCode::CANCELLED, "cancelled",
        why == Stop::kClient ? "the client cancelled" : "the server is shutting down"));
  }
}

Status ProcessCall::final_status_locked() const {
  Status s = !upload_error_.is_ok() ? upload_error_ : report_.status;
  if (stop_ == Stop::kClient && (s.is_ok() || s.code() == ErrorCode::kCancelled)) {
    return Status(ErrorCode::kCancelled, "the client cancelled or went away");
  }
  if (stop_ == Stop::kShutdown && (s.is_ok() || s.code() == ErrorCode::kCancelled)) {
    return Status(ErrorCode::kCancelled, "the server is shutting down");
  }
  if (stop_ == Stop::kExpired && (s.is_ok() || s.code() == ErrorCode::kCancelled)) {
    return Status(ErrorCode::kDeadlineExceeded, "the call outlived limits.request_timeout_ms");
  }
  if (s.code() == ErrorCode::kDeadlineExceeded && s.where().node_id.empty() &&
      s.message().find("time limit") != std::string::npos) {
    return Status(ErrorCode::kDeadlineExceeded,
                  "the run took longer than limits.request_timeout_ms (" +
                      std::to_string(service_.config_.request_timeout.count()) +
                      " ms): stopped");
  }
  return s;
}

void ProcessCall::maybe_finish_locked() {
  if (finished_ || writing_ || !run_done_) {
    return;
  }
  if (stop_ != Stop::kClient && !output_.drained()) {
    return;  // output still to send: pump_output_locked comes back here
  }
  finished_ = true;
  const Status s = final_status_locked();
  if (!s.is_ok()) {
    spdlog::warn("grpc Process failed: {}", s.to_string());
  }
  const grpc::Status status =
      s.is_ok() ? grpc::Status::OK
                : rpc_error(*ctx_, grpc_code_for(s.code()), error_code_name(s.code()), s.to_string());
  if (s.is_ok()) {
    ctx_->AddTrailingMetadata(kErrorCodeKey, "ok");
  }
  if (stop_ == Stop::kClient) {
    Finish(status);
    return;
  }
  out_.Clear();
  auto* res = out_.mutable_result();
  res->set_code(static_cast<int>(status.error_code()));
  res->set_message(s.is_ok() ? "" : s.to_string());
  res->set_error_code(std::string(error_code_name(s.code())));
  res->set_wall_seconds(report_.wall_seconds);
  res->set_worker_count(static_cast<std::uint32_t>(report_.worker_count));
  res->set_placement(std::string(supervisor::placement_name(report_.placement)));
  res->set_bytes_in(bytes_in_);
  res->set_bytes_out(bytes_out_);
  for (const auto& n : report_.nodes) {
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
  StartWriteAndFinish(&out_, grpc::WriteOptions(), status);
}

void ProcessCall::OnDone() {
  if (runner_.joinable()) {
    runner_.join();  // it has ended: the call finishes only after the run
  }
  if (registered_) {
    service_.calls_.remove(this);
  }
  ticket_.reset();
  delete this;
}

// ---------------------------------------------------------------------------------------------
// WatchCall

WatchCall::WatchCall(ControlService& service, grpc::CallbackServerContext* ctx,
                     const v1::WatchEventsRequest& req)
    : service_(service), ctx_(ctx) {
  std::lock_guard lock(mutex_);
  Caller caller;
  if (auto denied = service_.admit(*ctx, Role::kViewer, "watch sessions", &caller)) {
    finish_locked(*denied);
    return;
  }
  std::string refusal;
  ticket_ = service_.limiter_.acquire(ctx->peer(), caller.token_name, &refusal);
  if (!ticket_) {
    finish_locked(
        rpc_error(*ctx, grpc::StatusCode::RESOURCE_EXHAUSTED, "resource_exhausted", refusal));
    return;
  }
  if (!req.session().empty()) {
    auto info = service_.sessions_.find_session(req.session());
    if (!info) {
      finish_locked(ControlService::session_error(*ctx, info.status(), "session"));
      return;
    }
    only_ = info->id;
  }
  registered_ = service_.calls_.add(this, [this] { stop(true); }, Clock::time_point::max());
  if (!registered_) {
    finish_locked(rpc_error(*ctx, grpc::StatusCode::UNAVAILABLE, "unavailable",
                            "the server is shutting down"));
    return;
  }
  subscription_ = service_.sessions_.subscribe();
  // The headers tell the client that it is subscribed: events from now on reach it.
  writing_ = true;
  StartSendInitialMetadata();
  subscription_->set_listener([this] { pump(); });
}

void WatchCall::OnSendInitialMetadataDone(bool ok) {
  std::lock_guard lock(mutex_);
  writing_ = false;
  if (!ok) {
    stopping_ = true;
  }
  pump_locked();
}

void WatchCall::pump() {
  std::lock_guard lock(mutex_);
  pump_locked();
}

void WatchCall::pump_locked() {
  if (finished_ || writing_) {
    return;
  }
  if (stopping_) {
    finish_locked(shutdown_ ? grpc::Status(grpc::StatusCode::CANCELLED, "the server is shutting down")
                            : grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled"));
    return;
  }
  if (ending_) {
    finish_locked(grpc::Status::OK);  // the watched session is gone
    return;
  }
  while (true) {
    auto event = subscription_->next(std::chrono::milliseconds(0));
    if (!event) {
      if (subscription_->closed()) {
        shutdown_ = true;
        finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "the server is shutting down"));
      }
      return;
    }
    if (!only_.empty() && event->session_id != only_) {
      continue;
    }
    out_.Clear();
    out_.set_session_id(event->session_id);
    const nlohmann::json payload = event_json(*event);
    const std::string name(event_name(event->kind));
    out_.set_event(name);
    out_.set_payload_json(payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    to_struct(payload, out_.mutable_payload());
    out_.set_timestamp(event->timestamp);
    out_.set_dropped(subscription_->dropped());
    if (!only_.empty() && name == "sessiondestroyed") {
      ending_ = true;
    }
    writing_ = true;
    StartWrite(&out_);
    return;
  }
}

void WatchCall::OnWriteDone(bool ok) {
  std::lock_guard lock(mutex_);
  writing_ = false;
  if (!ok) {
    stopping_ = true;  // the client went away
  }
  pump_locked();
}

void WatchCall::OnCancel() { stop(false); }

void WatchCall::stop(bool shutdown) {
  std::lock_guard lock(mutex_);
  if (!stopping_) {
    stopping_ = true;
    shutdown_ = shutdown;
  }
  pump_locked();
}

void WatchCall::finish_locked(const grpc::Status& status) {
  if (finished_) {
    return;
  }
  finished_ = true;
  Finish(status.ok() || !status.error_details().empty()
             ? status
             : rpc_error(*ctx_, status.error_code(), error_code_for(status.error_code()),
                         status.error_message()));
}

void WatchCall::OnDone() {
  if (subscription_) {
    subscription_->set_listener(nullptr);  // waits for a notification in progress
    subscription_->close();
  }
  if (registered_) {
    service_.calls_.remove(this);
  }
  ticket_.reset();
  delete this;
}

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
  explicit Impl(const ServerConfig& config)
      : auth(config.tokens),
        limiter(StreamCaps{config.grpc_streams_per_connection, config.grpc_streams_per_token,
                           config.grpc_max_streams}),
        threads(static_cast<int>(std::max<std::uint32_t>(config.max_connections, 16))),
        health(limiter, static_cast<std::size_t>(threads - 2)) {}

  Authenticator auth;
  StreamLimiter limiter;
  CallRegistry calls;
  int threads;
  HealthState health;
  std::unique_ptr<ReflectionContext> reflection_context;
  std::unique_ptr<ControlService> service;
  std::unique_ptr<grpc::Service> health_service;
  std::vector<std::unique_ptr<grpc::Service>> reflection;
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

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (config.grpc_tls_cert.empty() != config.grpc_tls_key.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "server.grpc_tls_cert and server.grpc_tls_key go together (TLS needs both)");
  }
  if (!config.grpc_tls_cert.empty()) {
    grpc::SslServerCredentialsOptions tls;
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    auto cert = supervisor::read_text_file(config.grpc_tls_cert);
    auto key = supervisor::read_text_file(config.grpc_tls_key);
    if (!cert || !key) {
      return Status(ErrorCode::kInvalidArgument,
                    "cannot read server.grpc_tls_" + std::string(!cert ? "cert" : "key") + ": " +
                        (!cert ? cert.status() : key.status()).message());
    }
    pair.cert_chain = std::move(*cert);
    pair.private_key = std::move(*key);
    tls.pem_key_cert_pairs.push_back(std::move(pair));
    credentials = grpc::SslServerCredentials(tls);
  }

  auto impl = std::make_unique<Impl>(config);
  impl->service = std::make_unique<ControlService>(config, engine, sessions, impl->auth,
                                                   impl->limiter, impl->calls, impl->health);
  impl->health_service = make_health_service(impl->health, impl->limiter, impl->calls);
  impl->reflection_context = std::make_unique<ReflectionContext>(ReflectionContext{
      impl->auth, impl->limiter, impl->calls,
      {v1::Control::service_full_name(), "grpc.health.v1.Health",
       "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}});
  impl->reflection = make_reflection_services(*impl->reflection_context);
  HealthState* health = &impl->health;
  impl->limiter.set_listener([health] { health->changed(); });

  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, credentials, &impl->port);
  // A taken port is an error, not a port silently shared with another server.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Dead peers are found by pings; idle connections are closed; clients may ping every 10 s.
  if (config.grpc_keepalive.count() > 0) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                               static_cast<int>(config.grpc_keepalive.count()));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                               static_cast<int>(config.grpc_keepalive_timeout.count()));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  }
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  if (config.grpc_idle_timeout.count() > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               static_cast<int>(std::min<std::int64_t>(
                                   config.grpc_idle_timeout.count(), INT32_MAX)));
  }
  builder.SetMaxReceiveMessageSize(
      std::max<int>(kMaxMessageBytes,
                    static_cast<int>(std::min<std::uint64_t>(config.max_config_bytes + 65536,
                                                             1U << 30))));
  grpc::ResourceQuota quota("skit-grpc");
  quota.SetMaxThreads(impl->threads);
  builder.SetResourceQuota(quota);
  builder.RegisterService(impl->service.get());
  builder.RegisterService(impl->health_service.get());
  for (auto& r : impl->reflection) {
    builder.RegisterService(r.get());
  }
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(make_error_interceptor());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return Status(ErrorCode::kUnavailable,
                  "cannot serve gRPC on " + listen +
                      " (server.grpc_listen; is the port taken? an empty value disables gRPC)");
  }
  Impl* raw = impl.get();
  impl->reaper = std::thread([raw] {
    std::unique_lock lock(raw->mutex);
    while (!raw->cv.wait_for(lock, std::chrono::milliseconds(250), [raw] { return raw->stopping; })) {
      raw->calls.cancel_expired();
    }
  });
  spdlog::info("gRPC listening on {}:{}{}", host_of(listen), impl->port,
               config.grpc_tls_cert.empty() ? "" : " (TLS)");
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
  spdlog::info("gRPC shutting down: cancelling running pipelines and streams");
  impl_->health.set_draining();
  impl_->calls.cancel_all();
  // Process calls end as soon as their pipelines are torn down, streams at once. Then only
  // short calls can be left: they get a moment. (gRPC's Shutdown waits until its deadline
  // while any client keeps an idle connection open, so the deadline is kept short.)
  const bool drained = impl_->calls.wait_empty(kShutdownGrace);
  impl_->limiter.set_listener(nullptr);
  impl_->server->Shutdown(std::chrono::system_clock::now() + kUnaryGrace);
  impl_->server->Wait();
  spdlog::info("gRPC stopped{}", drained ? "" : " (some calls did not end in time)");
}

}  // namespace skit::gateway
