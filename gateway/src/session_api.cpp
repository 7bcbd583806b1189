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
                                               std::string_view yaml, const Caller& caller) {
  // The manager checks every node of the document against the node policy (path
  // allow-lists), all problems at once, each with its place.
  return sessions.create_session(name, yaml, caller.token_name);
}

Result<supervisor::SessionInfo> find_session_for(supervisor::SessionManager& sessions,
                                                 std::string_view id_or_name, const Caller& caller) {
  auto info = sessions.find_session(id_or_name);
  if (info && !may_access_session(caller, info->owner)) {
    return Status(ErrorCode::kNotFound, "session '" + std::string(id_or_name) + "' not found");
  }
  return info;
}

std::vector<supervisor::SessionInfo> sessions_for(supervisor::SessionManager& sessions,
                                                  const Caller& caller) {
  std::vector<supervisor::SessionInfo> out;
  for (auto& s : sessions.list_sessions()) {
    if (may_access_session(caller, s.owner)) {
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace skit::gateway
