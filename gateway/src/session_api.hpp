// SPDX-License-Identifier: MPL-2.0
// The session operations every front end (REST, the WebSocket control plane, gRPC) calls, on
// top of the SessionManager: its configuration for `skit serve` (the node policy), creating a
// session, and batches with their problems as structured issues.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

/// Applies a batch all or nothing. Refused: `issues` has every problem (operation from 0,
/// node, code, message) and the status the first one's code with all of them, one per line.
/// Any other error (no such session) leaves `issues` empty.
Status apply_batch(supervisor::SessionManager& sessions, std::string_view id_or_name,
                   const std::vector<supervisor::BatchOperation>& operations,
                   std::vector<supervisor::BatchIssue>& issues);

}  // namespace skit::gateway
