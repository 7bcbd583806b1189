// SPDX-License-Identifier: MPL-2.0
// The session operations every front end (REST, the WebSocket control plane, gRPC) calls, on
// top of the SessionManager: its configuration for `skit serve` (the node policy), creating a
// session.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "skit/core/status.hpp"
#include "skit/gateway/config.hpp"
#include "skit/supervisor/engine.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

/// The session manager's configuration: the `sessions:` section plus the engine's worker
/// executable and sandbox, and a node policy that applies the engine's file path allow-lists
/// (security.allowed_file_paths / allowed_write_paths) to every node that joins a session.
supervisor::SessionConfig session_config_for(const ServerConfig& config,
                                             const supervisor::Engine& engine);

/// SessionManager::create_session, after the node policy has checked every node of `yaml`
/// (all problems at once; kPermissionDenied for a file outside the allow-lists).
Result<supervisor::SessionInfo> create_session(supervisor::SessionManager& sessions,
                                               const std::optional<std::string>& name,
                                               std::string_view yaml);

}  // namespace skit::gateway
