// SPDX-License-Identifier: MPL-2.0
// What the HTTP route handlers share: the configuration, the engine and the session manager,
// and the server's own state (metrics, open WebSockets, running oneshots and their outcomes,
// browser logins, the web UI's files).
#pragma once

#include <functional>

#include "auth_cookie.hpp"
#include "control_socket.hpp"
#include "http_metrics.hpp"
#include "oneshot_run.hpp"
#include "request_outcomes.hpp"
#include "skit/gateway/config.hpp"
#include "skit/supervisor/engine.hpp"
#include "skit/supervisor/sessions.hpp"
#include "static_files.hpp"

namespace skit::gateway {

struct HttpContext {
  const ServerConfig& config;
  supervisor::Engine& engine;
  supervisor::SessionManager& sessions;
  ControlSockets& control_sockets;
  HttpMetrics& metrics;
  RequestOutcomes& outcomes;
  OneshotRuns& oneshots;
  BrowserSessions& browsers;
  const StaticFiles& ui_files;
  std::function<std::size_t()> open_connections;
};

}  // namespace skit::gateway
