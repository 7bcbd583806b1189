// SPDX-License-Identifier: MPL-2.0
// The WebSocket control plane's request handling (StreamKit's envelope and actions),
// independent of the transport (control_socket.cpp carries it over Beast's WebSocket).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skit/core/status.hpp"
#include "authorization.hpp"
#include "skit/gateway/config.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

/// The largest WebSocket message a client may send (StreamKit's default).
inline constexpr std::size_t kMaxControlMessageBytes = 1 << 20;

/// One WebSocket client's requests: StreamKit's envelope
/// `{type: "request", correlation_id?, payload: {action, ...}}` in, a response envelope out
/// (`correlation_id` echoed, `payload.action` the answer or `error` with `message`).
class ControlPlane {
 public:
  ControlPlane(supervisor::SessionManager& sessions, Caller caller, std::size_t max_config_bytes)
      : sessions_(sessions), caller_(std::move(caller)), role_(caller_.role),
        max_config_bytes_(max_config_bytes) {}

  /// Handles one message. Nothing to send for `tunenodeasync` (fire and forget).
  std::optional<nlohmann::json> handle(std::string_view message);

  [[nodiscard]] Role role() const { return role_; }

 private:
  nlohmann::json dispatch(const std::string& action, const nlohmann::json& payload,
                          bool& respond);
  /// The payload's session_id, once the caller may act on that session (else a request
  /// error: not found).
  std::string accessible_session(const nlohmann::json& payload);

  supervisor::SessionManager& sessions_;
  Caller caller_;
  Role role_;
  std::size_t max_config_bytes_;
};

}  // namespace skit::gateway
