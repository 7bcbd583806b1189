// SPDX-License-Identifier: MPL-2.0
#include "session_api.hpp"

#include "session_json.hpp"

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

Status apply_batch(supervisor::SessionManager& sessions, std::string_view id_or_name,
                   const std::vector<supervisor::BatchOperation>& operations,
                   std::vector<supervisor::BatchIssue>& issues) {
  issues.clear();
  // The session's checks first, for their structured issues; the manager checks again as it
  // applies (a concurrent edit may have changed the session since).
  auto checked = sessions.validate_batch(id_or_name, operations);
  if (!checked) {
    return checked.status();
  }
  if (!checked->empty()) {
    issues = std::move(*checked);
    // The first problem's kind decides the code (a path escape is not a syntax error).
    return Status(issues.front().code, batch_issues_text(issues),
                  {.node_id = issues.front().node_id});
  }
  return sessions.apply_batch(id_or_name, operations);
}

}  // namespace skit::gateway
