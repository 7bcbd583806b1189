// SPDX-License-Identifier: MPL-2.0
// What every gRPC service of `skit serve` shares: bearer-token authentication, the caps on
// long-lived streams (per connection, per token, in all), the registry of open streams that
// shutdown and deadlines cancel, health with overload, and errors with skit's trailer and
// google.rpc.Status details. See docs/grpc.md.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "authorization.hpp"
#include "skit/core/status.hpp"
#include "skit/gateway/config.hpp"
#include "skit/v1/control.pb.h"

namespace skit::gateway {

inline constexpr const char* kErrorCodeKey = "skit-error-code";
/// How long a client refused with RESOURCE_EXHAUSTED should wait (RetryInfo, as HTTP's
/// Retry-After: 1).
inline constexpr std::chrono::seconds kRetryDelay{1};

/// skit's error codes as gRPC status codes (the one table: status_codes.hpp, docs/grpc.md).
grpc::StatusCode grpc_code_for(ErrorCode code);

/// skit's code name for a gRPC status code, for errors that do not come from the engine
/// (UNAUTHENTICATED -> "unauthenticated", gRPC's own RESOURCE_EXHAUSTED...).
std::string_view error_code_for(grpc::StatusCode code);

/// A failed call: adds the `skit-error-code` trailer and returns the status with its
/// google.rpc.Status details (ErrorInfo with the reason; RetryInfo for RESOURCE_EXHAUSTED;
/// BadRequest with one field violation per problem, and skit.v1.Problems, when there are
/// problems).
grpc::Status rpc_error(grpc::ServerContextBase& ctx, grpc::StatusCode code,
                       std::string_view skit_code, const std::string& message,
                       const std::vector<v1::Problem>& problems = {});

/// A problem of a request from a Status: message with its place, code, node, param, line.
v1::Problem problem_of(const Status& s, std::string field, int operation = -1);

class Authenticator {
 public:
  explicit Authenticator(std::vector<TokenConfig> tokens) : tokens_(std::move(tokens)) {}
  [[nodiscard]] bool enabled() const { return !tokens_.empty(); }
  /// OK and the caller (`caller` may be null) when the call's bearer token is a configured
  /// one; else UNAUTHENTICATED (no, malformed or unknown token), its trailer added. Without
  /// tokens every call is the admin's. What the role may do is authorization.hpp's.
  grpc::Status authenticate(grpc::ServerContextBase& ctx, Caller* caller) const;

 private:
  std::vector<TokenConfig> tokens_;
};

struct StreamCaps {
  std::size_t per_connection = 32;
  std::size_t per_token = 128;
  std::size_t total = 1024;
};

/// Counts long-lived streams (WatchEvents, Process, reflection, health Watch); unary calls
/// never count. A stream over a cap is refused at once.
class StreamLimiter {
 public:
  /// Holds one stream's place; released on destruction.
  class Ticket {
   public:
    Ticket(StreamLimiter& limiter, std::string peer, std::string token)
        : limiter_(limiter), peer_(std::move(peer)), token_(std::move(token)) {}
    ~Ticket() { limiter_.release(peer_, token_); }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    StreamLimiter& limiter_;
    std::string peer_;
    std::string token_;
  };

  explicit StreamLimiter(StreamCaps caps) : caps_(caps) {}
  /// A place for a stream of connection `peer` (its address) and token `token` (empty: no
  /// token, not counted per token); null with `refusal` set when a cap is reached.
  std::unique_ptr<Ticket> acquire(const std::string& peer, const std::string& token,
                                  std::string* refusal);
  [[nodiscard]] std::size_t open() const;
  /// Every place is taken.
  [[nodiscard]] bool saturated() const;
  /// Called (without locks held) when saturated() may have changed.
  void set_listener(std::function<void()> listener);

 private:
  void release(const std::string& peer, const std::string& token);
  void notify(bool was_saturated);

  StreamCaps caps_;
  mutable std::mutex mutex_;
  std::map<std::string, std::size_t> per_peer_;
  std::map<std::string, std::size_t> per_token_;
  std::size_t total_ = 0;
  std::function<void()> listener_;
};

/// The long-lived calls in progress: cancelled together on shutdown, one by one past their
/// deadline. `cancel` must not block and may be called more than once.
class CallRegistry {
 public:
  using Clock = std::chrono::steady_clock;
  /// False when the server is draining (the call must be refused). Returns an id for remove().
  bool add(const void* call, std::function<void()> cancel, Clock::time_point deadline);
  void remove(const void* call);
  [[nodiscard]] bool draining() const;
  /// True when every call has ended within `timeout`.
  bool wait_empty(std::chrono::milliseconds timeout);
  /// Starts draining and cancels every call.
  void cancel_all();
  void cancel_expired();

 private:
  struct Entry {
    std::function<void()> cancel;
    Clock::time_point deadline;
    bool expired = false;
  };
  mutable std::mutex mutex_;
  std::condition_variable empty_;
  bool draining_ = false;
  std::map<const void*, Entry> calls_;
};

/// Health for grpc.health.v1.Health: SERVING, or NOT_SERVING while the server drains or is
/// overloaded (every long-lived stream place taken, or every unary handler thread busy).
class HealthState {
 public:
  HealthState(StreamLimiter& limiter, std::size_t unary_threads)
      : limiter_(limiter), unary_threads_(unary_threads) {}
  [[nodiscard]] bool serving() const;
  [[nodiscard]] bool overloaded() const;
  void set_draining();
  /// A unary call in progress, for the duration of the guard.
  class UnaryGuard {
   public:
    explicit UnaryGuard(HealthState& h) : h_(h) { h_.unary_started(); }
    ~UnaryGuard() { h_.unary_ended(); }
    UnaryGuard(const UnaryGuard&) = delete;
    UnaryGuard& operator=(const UnaryGuard&) = delete;

   private:
    HealthState& h_;
  };
  /// Watchers: called (from any thread, without locks held) when serving() may have changed.
  int subscribe(std::function<void()> on_change);
  void unsubscribe(int id);
  /// Tells every watcher; for changes the state does not see itself.
  void changed();

 private:
  void unary_started();
  void unary_ended();

  StreamLimiter& limiter_;
  std::size_t unary_threads_;
  std::atomic<std::size_t> unary_busy_{0};
  std::atomic<bool> draining_{false};
  std::mutex mutex_;
  std::map<int, std::function<void()>> watchers_;
  int next_id_ = 0;
};

/// The grpc.health.v1.Health service (callback API: Watch holds no thread).
std::unique_ptr<grpc::Service> make_health_service(HealthState& health, StreamLimiter& limiter,
                                                   CallRegistry& calls);

/// Every error leaves with `skit-error-code` and google.rpc.Status details, whichever code
/// produced it (a handler, auth, gRPC's own cancellation of a call).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> make_error_interceptor();

}  // namespace skit::gateway
