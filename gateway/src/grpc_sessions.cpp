// SPDX-License-Identifier: MPL-2.0
// skit.v1.Control's session RPCs (CreateSession, ListSessions, GetSession, DeleteSession,
// ApplyBatch, TuneNode) on the session manager, and WatchEvents: a stream reactor fed by a
// bounded EventSubscription's listener, one event written at a time.
#include <spdlog/spdlog.h>

#include <mutex>

#include "grpc_control.hpp"
#include "session_api.hpp"
#include "skit/gateway/session_json.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"
#include "status_codes.hpp"

namespace skit::gateway {

namespace {

using Clock = std::chrono::steady_clock;

void set_info(const supervisor::SessionInfo& info, v1::SessionInfo* out) {
  out->set_id(info.id);
  out->set_name(info.name);
  out->set_created_at(info.created_at);
  out->set_node_count(static_cast<std::uint32_t>(info.node_count));
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

Result<supervisor::BatchOperation> batch_operation_of(const v1::BatchOperation& in,
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
        auto parsed =
            json_object_of(params, "add_node '" + op.node_id + "': params_json", position);
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

v1::BatchIssue issue_of(const v1::ApplyBatchRequest& req, const supervisor::BatchIssue& i) {
  v1::BatchIssue issue;
  issue.set_operation(static_cast<std::uint32_t>(i.operation));
  issue.set_node_id(i.node_id);
  issue.set_message(i.message);
  issue.set_field(batch_field(req, i.operation, i.code));
  issue.set_error_code(std::string(error_code_name(i.code)));
  return issue;
}

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
  Caller caller_;     // whose sessions it may see
  std::string only_;  // a session id: only its events, and end after its sessiondestroyed
  std::mutex mutex_;
  v1::SessionEvent out_;
  bool writing_ = false;
  bool ending_ = false;  // the last event is being written
  bool stopping_ = false;
  bool shutdown_ = false;
  bool finished_ = false;
};

WatchCall::WatchCall(ControlService& service, grpc::CallbackServerContext* ctx,
                     const v1::WatchEventsRequest& req)
    : service_(service), ctx_(ctx) {
  std::lock_guard lock(mutex_);
  Caller caller;
  if (auto denied = service_.admit(*ctx, Permission::kListSessions, "watch sessions", &caller)) {
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
    auto info = find_session_for(service_.sessions_, req.session(), caller);
    if (!info) {
      finish_locked(ControlService::session_error(*ctx, info.status(), "session"));
      return;
    }
    only_ = info->id;
  }
  caller_ = caller;
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
    finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, shutdown_
                                                               ? "the server is shutting down"
                                                               : "the client cancelled"));
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
    if ((!only_.empty() && event->session_id != only_) || !may_access_session(caller_, event->owner)) {
      continue;  // another session, or another token's
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

grpc::ServerWriteReactor<v1::SessionEvent>* ControlService::WatchEvents(
    grpc::CallbackServerContext* ctx, const v1::WatchEventsRequest* req) {
  return new WatchCall(*this, ctx, *req);
}

grpc::Status ControlService::CreateSession(grpc::ServerContext* ctx,
                                           const v1::CreateSessionRequest* req,
                                           v1::CreateSessionResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  Caller caller;
  if (auto denied = admit(*ctx, Permission::kCreateSessions, "create sessions", &caller)) {
    return *denied;
  }
  if (req->pipeline_yaml().size() > config_.max_config_bytes) {
    return config_too_large(*ctx, req->pipeline_yaml().size());
  }
  const std::optional<std::string> name =
      req->has_name() ? std::optional<std::string>(req->name()) : std::nullopt;
  auto info = create_session(sessions_, name, req->pipeline_yaml(), caller);
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
    return session_error(*ctx, s,
                         s.code() == ErrorCode::kAlreadyExists ? "name" : "pipeline_yaml");
  }
  set_info(*info, resp->mutable_session());
  return grpc::Status::OK;
}

grpc::Status ControlService::ListSessions(grpc::ServerContext* ctx,
                                          const v1::ListSessionsRequest* /*req*/,
                                          v1::ListSessionsResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  Caller caller;
  if (auto denied = admit(*ctx, Permission::kListSessions, "list sessions", &caller)) {
    return *denied;
  }
  for (const auto& s : sessions_for(sessions_, caller)) {
    set_info(s, resp->add_sessions());
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::GetSession(grpc::ServerContext* ctx,
                                        const v1::GetSessionRequest* req,
                                        v1::GetSessionResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  Caller caller;
  if (auto denied = admit(*ctx, Permission::kListSessions, "read sessions", &caller)) {
    return *denied;
  }
  auto info = find_session_for(sessions_, req->session(), caller);
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

grpc::Status ControlService::DeleteSession(grpc::ServerContext* ctx,
                                           const v1::DeleteSessionRequest* req,
                                           v1::DeleteSessionResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  Caller caller;
  if (auto denied = admit(*ctx, Permission::kDestroySessions, "destroy sessions", &caller)) {
    return *denied;
  }
  if (auto mine = find_session_for(sessions_, req->session(), caller); !mine) {
    return session_error(*ctx, mine.status(), "session");
  }
  auto info = sessions_.destroy_session(req->session());
  if (!info) {
    return session_error(*ctx, info.status(), "session");
  }
  resp->set_session_id(info->id);
  return grpc::Status::OK;
}

grpc::Status ControlService::ApplyBatch(grpc::ServerContext* ctx,
                                        const v1::ApplyBatchRequest* req,
                                        v1::ApplyBatchResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  Caller caller;
  if (auto denied = admit(*ctx, Permission::kModifySessions, "modify sessions", &caller)) {
    return *denied;
  }
  if (auto mine = find_session_for(sessions_, req->session(), caller); !mine) {
    return session_error(*ctx, mine.status(), "session");
  }
  std::vector<supervisor::BatchOperation> ops;
  std::vector<v1::BatchIssue> issues;  // the request's own problems (its JSON, its shape)
  ErrorCode code = ErrorCode::kInvalidArgument;
  for (int i = 0; i < req->operations_size(); ++i) {
    v1::SourcePosition position;
    auto op = batch_operation_of(req->operations(i), &position);
    if (!op) {
      const Status& s = op.status();
      if (issues.empty()) {
        code = s.code();
      }
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
    std::vector<supervisor::BatchIssue> found;
    if (req->validate_only()) {
      auto checked = sessions_.validate_batch(req->session(), ops);
      if (!checked) {
        return session_error(*ctx, checked.status(), "session");
      }
      found = std::move(*checked);
    } else if (Status s = sessions_.apply_batch(req->session(), ops, &found); s.is_ok()) {
      resp->set_applied(true);
      return grpc::Status::OK;
    } else if (found.empty()) {
      // No such session, or changed since the check (a concurrent edit): as the manager says.
      return session_error(*ctx, s, s.code() == ErrorCode::kNotFound ? "session" : "operations");
    }
    for (const auto& i : found) {
      issues.push_back(issue_of(*req, i));
    }
    if (!found.empty()) {
      code = found.front().code;
    }
  } else if (auto exists = sessions_.find_session(req->session()); !exists) {
    return session_error(*ctx, exists.status(), "session");
  }
  if (req->validate_only()) {
    for (auto& i : issues) {
      *resp->add_issues() = std::move(i);
    }
    return grpc::Status::OK;
  }
  // All or nothing: every problem, numbered from 0 like the operations; the first problem's
  // kind decides the code (a path escape is not a syntax error).
  std::string message;
  std::vector<v1::Problem> problems;
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
  return rpc_error(*ctx, grpc_code_for(code), error_code_name(code), message, problems);
}

grpc::Status ControlService::TuneNode(grpc::ServerContext* ctx, const v1::TuneNodeRequest* req,
                                      v1::TuneNodeResponse* /*resp*/) {
  const HealthState::UnaryGuard busy(health_);
  Caller caller;
  if (auto denied = admit(*ctx, Permission::kTuneNodes, "tune nodes", &caller)) {
    return *denied;
  }
  if (auto mine = find_session_for(sessions_, req->session(), caller); !mine) {
    return session_error(*ctx, mine.status(), "session");
  }
  v1::SourcePosition position;
  auto patch = req->has_params() ? Result<nlohmann::json>(from_struct(req->params()))
                                 : json_object_of(req->params_json(), "params_json", &position);
  if (!patch) {
    v1::Problem p = problem_of(patch.status(), "params_json");
    *p.mutable_position() = position;
    return rpc_error(*ctx, grpc::StatusCode::INVALID_ARGUMENT, "invalid_argument",
                     patch.status().message() +
                         " (a JSON object of params, e.g. {\"gain\": 0.5})",
                     {p});
  }
  // The manager checks the patch against the node policy (file paths) itself.
  const Status s = sessions_.tune_node(req->session(), req->node_id(), *patch, !req->no_wait());
  return s.is_ok() ? grpc::Status::OK : session_error(*ctx, s, "params_json");
}

}  // namespace skit::gateway
