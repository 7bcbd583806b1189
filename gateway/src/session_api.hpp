// SPDX-License-Identifier: MPL-2.0
// The session operations every front end (REST, the WebSocket control plane, gRPC) calls, on
// top of the SessionManager: its configuration for `skit serve` (the node policy), creating a
// session.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skit/core/status.hpp"
#include "authorization.hpp"
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
/// (all problems at once; kPermissionDenied for a file outside the allow-lists). The session
/// belongs to `caller`'s token.
Result<supervisor::SessionInfo> create_session(supervisor::SessionManager& sessions,
                                               const std::optional<std::string>& name,
                                               std::string_view yaml, const Caller& caller);

/// The session `id_or_name` if `caller` may see it (may_access_session); another token's
/// session is kNotFound with the manager's own words, so that its existence does not show.
Result<supervisor::SessionInfo> find_session_for(supervisor::SessionManager& sessions,
                                                 std::string_view id_or_name, const Caller& caller);

/// The sessions `caller` may see.
std::vector<supervisor::SessionInfo> sessions_for(supervisor::SessionManager& sessions,
                                                  const Caller& caller);

}  // namespace skit::gateway
