// SPDX-License-Identifier: MPL-2.0
// StreamKit's JSON shapes of the session API, in one place for every front end that speaks
// them (REST, the WebSocket control plane, gRPC's *_json fields and Structs): SessionInfo,
// the live pipeline, session events, batch problems (validationresult / batchapplied), and
// errors as a client reads them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "skit/core/status.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

/// An error as a client reads it: the message with its place (line, node, param), once,
/// without a trailing newline.
std::string error_text(const Status& s);

/// {id, name, created_at}: StreamKit's SessionInfo.
nlohmann::json session_info_json(const supervisor::SessionInfo& info);

/// StreamKit's Pipeline JSON with live state: {name, description, mode, nodes: {id: {kind,
/// params, state, stats, worker_pid, restarts}}, connections: [...]}.
Result<nlohmann::json> pipeline_json(supervisor::SessionManager& sessions,
                                     std::string_view id_or_name);

/// An event's payload as StreamKit's WebSocket sends it (`event` the lower-case name:
/// nodestatechanged, nodeadded, sessiondestroyed, ...).
nlohmann::json event_payload(const supervisor::SessionEvent& event);
/// Its name ("nodestatechanged") and when it happened (RFC 3339).
std::string event_name(const supervisor::SessionEvent& event);
std::string event_timestamp(const supervisor::SessionEvent& event);
/// The WebSocket message of an event: {type: "event", payload}.
nlohmann::json event_envelope(const supervisor::SessionEvent& event);

/// A batch operation that could not be read (bad JSON shape): operation `index`, the node id
/// it names if any, and the reason.
supervisor::BatchIssue unreadable_operation(std::size_t index, const nlohmann::json& operation,
                                            const Status& why);

/// validationresult's `errors`: [{error_type: "error", message, operation?, node_id?}]. The
/// unreadable operations say their index in the message ("operation 1: ..."); the session's
/// checks in `operation`.
nlohmann::json validation_errors_json(const std::vector<supervisor::BatchIssue>& unreadable,
                                      const std::vector<supervisor::BatchIssue>& issues);

/// batchapplied's `errors`: one "operation N: message" per problem.
nlohmann::json batch_errors_json(const std::vector<supervisor::BatchIssue>& issues);

/// Every problem of a batch in one message, one "operation N: message" per line.
std::string batch_issues_text(const std::vector<supervisor::BatchIssue>& issues);

/// The `UpdateParams` object of a StreamKit NodeControlMessage
/// (`{"UpdateParams": {...}}`); kInvalidArgument for anything else ("Start", "Shutdown").
Result<nlohmann::json> update_params_of(const nlohmann::json& message);

}  // namespace skit::gateway
