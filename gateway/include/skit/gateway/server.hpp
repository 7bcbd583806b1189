// SPDX-License-Identifier: MPL-2.0
// `skit serve`: the HTTP gateway (StreamKit's API on Boost.Beast) in front of the engine.
#pragma once

#include <atomic>

#include "skit/gateway/config.hpp"
#include "skit/supervisor/engine.hpp"

namespace skit::gateway {

/// Listen policy: without auth tokens, only loopback unless explicitly allowed.
Status check_listen_policy(const ServerConfig& config);

/// Serves until `stop` becomes true (SIGINT/SIGTERM), then drains: stops accepting, cancels
/// running pipelines, waits for connections to finish. Returns the exit code. Each change of
/// `reloads` (SIGHUP) reads server.tls's certificate and key again.
int serve(const ServerConfig& config, supervisor::Engine& engine, const std::atomic<bool>& stop,
          const std::atomic<unsigned>* reloads = nullptr);

}  // namespace skit::gateway
