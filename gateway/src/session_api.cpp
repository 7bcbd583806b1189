// SPDX-License-Identifier: MPL-2.0
#include "session_api.hpp"

namespace skit::gateway {

supervisor::SessionConfig session_config_for(const ServerConfig& config,
                                             const supervisor::Engine& engine) {
  supervisor::SessionConfig s = config.sessions;
  s.worker_executable = engine.config().worker_executable;
  s.sandbox = engine.config().sandbox;
  s.paths = engine.path_policy();  // the same allow-lists as oneshot pipelines
  return s;
}

Result<supervisor::SessionInfo> create_session(supervisor::SessionManager& sessions,
                                               const std::optional<std::string>& name,
                                               std::string_view yaml) {
  // The manager checks every node of the document against the node policy (path
  // allow-lists), all problems at once, each with its place.
  return sessions.create_session(name, yaml);
}

}  // namespace skit::gateway
