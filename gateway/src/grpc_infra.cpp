// SPDX-License-Identifier: MPL-2.0
#include "grpc_infra.hpp"

#include <grpcpp/support/server_callback.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "authorization.hpp"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "status_codes.hpp"

namespace skit::gateway {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

void add_error_info(google::rpc::Status& status, std::string_view skit_code) {
  google::rpc::ErrorInfo info;
  info.set_reason(upper(skit_code));
  info.set_domain("skit");
  (*info.mutable_metadata())["skit_error_code"] = std::string(skit_code);
  status.add_details()->PackFrom(info);
  if (status.code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    google::rpc::RetryInfo retry;
    retry.mutable_retry_delay()->set_seconds(kRetryDelay.count());
    status.add_details()->PackFrom(retry);
  }
}

}  // namespace

grpc::StatusCode grpc_code_for(ErrorCode code) {
  return static_cast<grpc::StatusCode>(grpc_code_number(code));
}

std::string_view error_code_for(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "ok";
    case grpc::StatusCode::CANCELLED: return "cancelled";
    case grpc::StatusCode::INVALID_ARGUMENT: return "invalid_argument";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "deadline_exceeded";
    case grpc::StatusCode::NOT_FOUND: return "not_found";
    case grpc::StatusCode::ALREADY_EXISTS: return "already_exists";
    case grpc::StatusCode::PERMISSION_DENIED: return "permission_denied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "resource_exhausted";
    case grpc::StatusCode::UNAUTHENTICATED: return "unauthenticated";
    case grpc::StatusCode::UNAVAILABLE: return "unavailable";
    case grpc::StatusCode::FAILED_PRECONDITION: return "failed_precondition";
    case grpc::StatusCode::UNIMPLEMENTED: return "unimplemented";
    default: return "internal";
  }
}

grpc::Status rpc_error(grpc::ServerContextBase& ctx, grpc::StatusCode code,
                       std::string_view skit_code, const std::string& message,
                       const std::vector<v1::Problem>& problems) {
  ctx.AddTrailingMetadata(kErrorCodeKey, std::string(skit_code));
  google::rpc::Status details;
  details.set_code(code);
  details.set_message(message);
  add_error_info(details, skit_code);
  if (!problems.empty()) {
    google::rpc::BadRequest bad;
    v1::Problems all;
    for (const auto& p : problems) {
      auto* v = bad.add_field_violations();
      v->set_field(p.field());
      v->set_description(p.message());
      v->set_reason(upper(p.error_code()));
      *all.add_problems() = p;
    }
    details.add_details()->PackFrom(bad);
    details.add_details()->PackFrom(all);
  }
  return {code, message, details.SerializeAsString()};
}

v1::Problem problem_of(const Status& s, std::string field, int operation) {
  v1::Problem p;
  p.set_message(s.to_string());
  p.set_error_code(std::string(error_code_name(s.code())));
  p.set_field(std::move(field));
  p.mutable_position()->set_line(s.where().line);
  p.mutable_position()->set_column(s.where().column);
  p.set_node_id(s.where().node_id);
  p.set_param(s.where().param);
  p.set_operation(operation);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Authentication

grpc::Status Authenticator::authenticate(grpc::ServerContextBase& ctx, Caller* caller) const {
  if (tokens_.empty()) {
    return grpc::Status::OK;  // no auth configured: loopback only (check_loopback_policy)
  }
  const auto& md = ctx.client_metadata();
  const auto it = md.find("authorization");
  if (it == md.end()) {
    return rpc_error(ctx, grpc::StatusCode::UNAUTHENTICATED, "unauthenticated",
                     "authentication required: send metadata authorization: Bearer <token>");
  }
  const auto token = bearer_token(std::string_view(it->second.data(), it->second.size()));
  const TokenConfig* who = token ? find_token(tokens_, *token) : nullptr;
  if (who == nullptr) {
    return rpc_error(ctx, grpc::StatusCode::UNAUTHENTICATED, "unauthenticated", "invalid token");
  }
  if (caller != nullptr) {
    caller->token_name = who->name.empty() ? "token#" + std::to_string(who - tokens_.data())
                                           : who->name;
    caller->role = who->role;
  }
  return grpc::Status::OK;
}

// ---------------------------------------------------------------------------------------------
// Stream caps

std::unique_ptr<StreamLimiter::Ticket> StreamLimiter::acquire(const std::string& peer,
                                                              const std::string& token,
                                                              std::string* refusal) {
  bool was_saturated = false;
  {
    std::lock_guard lock(mutex_);
    was_saturated = total_ >= caps_.total;
    if (total_ >= caps_.total) {
      *refusal = "the server has " + std::to_string(total_) +
                 " long-lived streams open, its limit (limits.grpc_max_streams); retry later";
      return nullptr;
    }
    if (per_peer_[peer] >= caps_.per_connection) {
      *refusal = "this connection has " + std::to_string(per_peer_[peer]) +
                 " long-lived streams open, the limit per connection "
                 "(limits.grpc_streams_per_connection); end one or open another connection";
      return nullptr;
    }
    if (!token.empty() && per_token_[token] >= caps_.per_token) {
      *refusal = "token '" + token + "' has " + std::to_string(per_token_[token]) +
                 " long-lived streams open, the limit per token "
                 "(limits.grpc_streams_per_token)";
      return nullptr;
    }
    ++per_peer_[peer];
    if (!token.empty()) {
      ++per_token_[token];
    }
    ++total_;
  }
  notify(was_saturated);
  return std::make_unique<Ticket>(*this, peer, token);
}

void StreamLimiter::release(const std::string& peer, const std::string& token) {
  bool was_saturated = false;
  {
    std::lock_guard lock(mutex_);
    was_saturated = total_ >= caps_.total;
    if (auto it = per_peer_.find(peer); it != per_peer_.end() && --it->second == 0) {
      per_peer_.erase(it);
    }
    if (!token.empty()) {
      if (auto it = per_token_.find(token); it != per_token_.end() && --it->second == 0) {
        per_token_.erase(it);
      }
    }
    --total_;
  }
  notify(was_saturated);
}

void StreamLimiter::notify(bool was_saturated) {
  std::function<void()> listener;
  {
    std::lock_guard lock(mutex_);
    if ((total_ >= caps_.total) == was_saturated) {
      return;
    }
    listener = listener_;
  }
  if (listener) {
    listener();
  }
}

std::size_t StreamLimiter::open() const {
  std::lock_guard lock(mutex_);
  return total_;
}

bool StreamLimiter::saturated() const {
  std::lock_guard lock(mutex_);
  return total_ >= caps_.total;
}

void StreamLimiter::set_listener(std::function<void()> listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

// ---------------------------------------------------------------------------------------------
// Calls in progress

bool CallRegistry::add(const void* call, std::function<void()> cancel,
                       Clock::time_point deadline) {
  std::lock_guard lock(mutex_);
  if (draining_) {
    return false;
  }
  calls_[call] = Entry{std::move(cancel), deadline};
  return true;
}

void CallRegistry::remove(const void* call) {
  std::lock_guard lock(mutex_);
  calls_.erase(call);
  empty_.notify_all();
}

bool CallRegistry::draining() const {
  std::lock_guard lock(mutex_);
  return draining_;
}

bool CallRegistry::wait_empty(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return empty_.wait_for(lock, timeout, [&] { return calls_.empty(); });
}

void CallRegistry::cancel_all() {
  std::vector<std::function<void()>> cancels;
  {
    std::lock_guard lock(mutex_);
    draining_ = true;
    for (auto& [call, e] : calls_) {
      cancels.push_back(e.cancel);
    }
  }
  for (auto& c : cancels) {
    c();
  }
}

void CallRegistry::cancel_expired() {
  const auto now = Clock::now();
  std::vector<std::function<void()>> cancels;
  {
    std::lock_guard lock(mutex_);
    for (auto& [call, e] : calls_) {
      if (now > e.deadline && !e.expired) {
        e.expired = true;
        cancels.push_back(e.cancel);
      }
    }
  }
  for (auto& c : cancels) {
    spdlog::warn("grpc: a call outlived limits.request_timeout_ms: cancelled");
    c();
  }
}

// ---------------------------------------------------------------------------------------------
// Health

bool HealthState::overloaded() const {
  return limiter_.saturated() || unary_busy_.load() >= unary_threads_;
}

bool HealthState::serving() const { return !draining_.load() && !overloaded(); }

void HealthState::set_draining() {
  draining_.store(true);
  changed();
}

void HealthState::unary_started() {
  if (unary_busy_.fetch_add(1) + 1 == unary_threads_) {
    changed();
  }
}

void HealthState::unary_ended() {
  if (unary_busy_.fetch_sub(1) == unary_threads_) {
    changed();
  }
}

int HealthState::subscribe(std::function<void()> on_change) {
  std::lock_guard lock(mutex_);
  watchers_[next_id_] = std::move(on_change);
  return next_id_++;
}

void HealthState::unsubscribe(int id) {
  std::lock_guard lock(mutex_);
  watchers_.erase(id);
}

void HealthState::changed() {
  // Called with the lock held: unsubscribe() then waits for a notification in progress, so a
  // watcher is never called once it has unsubscribed.
  std::lock_guard lock(mutex_);
  for (auto& [id, w] : watchers_) {
    w();
  }
}

namespace {

namespace health = grpc::health::v1;
using health::HealthCheckResponse;

/// Services health knows: the server as a whole and skit.v1.Control.
bool known_service(const std::string& name) {
  return name.empty() || name == "skit.v1.Control" || name == "grpc.health.v1.Health";
}

class HealthService final : public health::Health::CallbackService {
 public:
  HealthService(HealthState& state, StreamLimiter& limiter, CallRegistry& calls)
      : state_(state), limiter_(limiter), calls_(calls) {}

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const health::HealthCheckRequest* req,
                                  HealthCheckResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (!known_service(req->service())) {
      reactor->Finish(rpc_error(*ctx, grpc::StatusCode::NOT_FOUND, "not_found",
                                "unknown service '" + req->service() + "'"));
      return reactor;
    }
    resp->set_status(state_.serving() ? HealthCheckResponse::SERVING
                                      : HealthCheckResponse::NOT_SERVING);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx, const health::HealthCheckRequest* req) override {
    return new Watcher(*this, ctx, req->service());
  }

 private:
  /// Sends the status, then every change, until the client cancels or the server stops.
  class Watcher final : public grpc::ServerWriteReactor<HealthCheckResponse> {
   public:
    Watcher(HealthService& service, grpc::CallbackServerContext* ctx, std::string name)
        : service_(service), ctx_(ctx), known_(known_service(name)) {
      std::string refusal;
      ticket_ = service_.limiter_.acquire(ctx->peer(), "", &refusal);
      if (!ticket_) {
        Finish(rpc_error(*ctx, grpc::StatusCode::RESOURCE_EXHAUSTED, "resource_exhausted",
                         refusal));
        return;
      }
      if (!service_.calls_.add(this, [this] { stop(); },
                               CallRegistry::Clock::time_point::max())) {
        ticket_.reset();
        Finish(rpc_error(*ctx, grpc::StatusCode::UNAVAILABLE, "unavailable",
                         "the server is shutting down"));
        return;
      }
      registered_ = true;
      subscription_ = service_.state_.subscribe([this] { send_current(); });
      send_current();
    }

    void OnWriteDone(bool ok) override {
      std::lock_guard lock(mutex_);
      writing_ = false;
      if (!ok) {
        finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
        return;
      }
      pump_locked();
    }
    void OnCancel() override { stop(); }
    void OnDone() override {
      if (subscription_ >= 0) {
        service_.state_.unsubscribe(subscription_);
      }
      if (registered_) {
        service_.calls_.remove(this);
      }
      ticket_.reset();
      delete this;
    }

   private:
    void send_current() {
      std::lock_guard lock(mutex_);
      wanted_ = !known_ ? HealthCheckResponse::SERVICE_UNKNOWN
                : service_.state_.serving() ? HealthCheckResponse::SERVING
                                            : HealthCheckResponse::NOT_SERVING;
      pump_locked();
    }
    void pump_locked() {
      if (writing_ || finished_ || wanted_ == sent_) {
        if (stopping_ && !writing_) {
          finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "the server is shutting down"));
        }
        return;
      }
      sent_ = wanted_;
      out_.set_status(sent_);
      writing_ = true;
      StartWrite(&out_);
    }
    void stop() {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      if (!writing_) {
        finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "the server is shutting down"));
      }
    }
    void finish_locked(const grpc::Status& s) {
      if (finished_) {
        return;
      }
      finished_ = true;
      Finish(s.ok() ? s : rpc_error(*ctx_, s.error_code(), error_code_for(s.error_code()),
                                    s.error_message()));
    }

    HealthService& service_;
    grpc::CallbackServerContext* ctx_;
    bool known_;
    std::unique_ptr<StreamLimiter::Ticket> ticket_;
    bool registered_ = false;
    int subscription_ = -1;
    std::mutex mutex_;
    HealthCheckResponse out_;
    HealthCheckResponse::ServingStatus wanted_ = HealthCheckResponse::UNKNOWN;
    HealthCheckResponse::ServingStatus sent_ = HealthCheckResponse::UNKNOWN;
    bool writing_ = false;
    bool stopping_ = false;
    bool finished_ = false;
  };

  HealthState& state_;
  StreamLimiter& limiter_;
  CallRegistry& calls_;
};

// ---------------------------------------------------------------------------------------------
// Errors

class ErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (!status.ok()) {
        auto* trailers = methods->GetSendTrailingMetadata();
        auto it = trailers->find(kErrorCodeKey);
        std::string skit_code;
        if (it == trailers->end()) {
          skit_code = std::string(error_code_for(status.error_code()));
          trailers->emplace(kErrorCodeKey, skit_code);
        } else {
          skit_code = it->second;
        }
        if (status.error_details().empty()) {
          google::rpc::Status details;
          details.set_code(status.error_code());
          details.set_message(status.error_message());
          add_error_info(details, skit_code);
          methods->ModifySendStatus(grpc::Status(status.error_code(), status.error_message(),
                                                 details.SerializeAsString()));
        }
      }
    }
    methods->Proceed();
  }
};

class ErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* /*info*/) override {
    return new ErrorInterceptor();
  }
};

}  // namespace

std::unique_ptr<grpc::Service> make_health_service(HealthState& health, StreamLimiter& limiter,
                                                   CallRegistry& calls) {
  return std::make_unique<HealthService>(health, limiter, calls);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> make_error_interceptor() {
  return std::make_unique<ErrorInterceptorFactory>();
}

}  // namespace skit::gateway
