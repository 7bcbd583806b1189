// SPDX-License-Identifier: MPL-2.0
// The gRPC front end of `skit serve`: skit.v1.Control on the engine and the session manager,
// plus the standard grpc.health.v1.Health service and server reflection. See docs/grpc.md.
#pragma once

#include <grpcpp/support/status.h>

#include <memory>

#include "skit/core/status.hpp"
#include "skit/gateway/config.hpp"
#include "skit/supervisor/engine.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

class GrpcServer {
 public:
  /// Listens on config.grpc_listen (port 0: any free port) and starts serving. Fails when the
  /// address is unusable or taken, or is not loopback while no auth tokens are configured.
  static Result<std::unique_ptr<GrpcServer>> start(const ServerConfig& config,
                                                   supervisor::Engine& engine,
                                                   supervisor::SessionManager& sessions);
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  /// The port it listens on (the one chosen, for port 0).
  [[nodiscard]] unsigned short port() const;

  /// Health turns NOT_SERVING, running calls are cancelled (their pipelines stopped, event
  /// streams ended), new ones refused; returns when every call has ended (at most a few
  /// seconds). Idempotent. Sessions are not touched (the caller destroys them).
  void shutdown();

  struct Impl;

 private:
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skit::gateway
