// SPDX-License-Identifier: MPL-2.0
// The session API shared by the HTTP (REST and WebSocket) and gRPC front ends: roles and
// their permissions, the session manager's configuration for `skit serve` (the node policy),
// and the WebSocket control plane's request handling (StreamKit's envelope and actions),
// independent of the transport.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skit/core/status.hpp"
#include "skit/gateway/config.hpp"
#include "skit/supervisor/engine.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

/// The largest WebSocket message a client may send (StreamKit's default).
inline constexpr std::size_t kMaxControlMessageBytes = 1 << 20;

/// Permissions of a role, with StreamKit's names (GET /api/v1/permissions, getpermissions).
nlohmann::json permissions_of(Role role);

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

/// A session error as a client reads it: the message with its place (line, node, param),
/// once, without a trailing newline.
std::string error_text(const Status& s);

/// {id, name, created_at}: StreamKit's SessionInfo.
nlohmann::json session_info_json(const supervisor::SessionInfo& info);

/// The `UpdateParams` object of a StreamKit NodeControlMessage
/// (`{"UpdateParams": {...}}`); kInvalidArgument for anything else ("Start", "Shutdown").
Result<nlohmann::json> update_params_of(const nlohmann::json& message);

/// One WebSocket client's requests: StreamKit's envelope
/// `{type: "request", correlation_id?, payload: {action, ...}}` in, a response envelope out
/// (`correlation_id` echoed, `payload.action` the answer or `error` with `message`).
class ControlPlane {
 public:
  ControlPlane(supervisor::SessionManager& sessions, Role role, std::size_t max_config_bytes)
      : sessions_(sessions), role_(role), max_config_bytes_(max_config_bytes) {}

  /// Handles one message. Nothing to send for `tunenodeasync` (fire and forget).
  std::optional<nlohmann::json> handle(std::string_view message);

  [[nodiscard]] Role role() const { return role_; }

 private:
  nlohmann::json dispatch(const std::string& action, const nlohmann::json& payload,
                          bool& respond);

  supervisor::SessionManager& sessions_;
  Role role_;
  std::size_t max_config_bytes_;
};

}  // namespace skit::gateway
