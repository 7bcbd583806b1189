// SPDX-License-Identifier: MPL-2.0
// StreamKit's JSON shapes of dynamic sessions, rendered from the session manager's typed
// views and parsed into its typed operations: the pipeline with live state, the event
// payloads, batch operations and issues. One place for the REST, WebSocket and gRPC front ends.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

/// {id, name, created_at}: StreamKit's SessionInfo.
nlohmann::json session_info_json(const supervisor::SessionInfo& info);

/// {name, description, mode: "dynamic", nodes: {id: {kind, params, state, stats, worker_pid,
/// restarts}}, connections: [{from_node, from_pin, to_node, to_pin, mode?}]}.
nlohmann::json pipeline_json(const supervisor::PipelineView& pipeline);
/// StreamKit's NodeState: "Running", {"Recovering": {reason, details?}}, ...
nlohmann::json node_state_json(const supervisor::NodeStatus& status);
/// {received, sent, discarded, errored, duration_secs, bytes_in, bytes_out}.
nlohmann::json node_stats_json(const NodeStats& stats, double running_seconds, bool failed);

/// The event's lower-case name: nodestatechanged, nodestatsupdated, ...
std::string_view event_name(supervisor::SessionEvent::Kind kind);
/// The WebSocket event payload ({"event": name, "session_id", ...}, StreamKit's fields).
nlohmann::json event_json(const supervisor::SessionEvent& event);

/// Parses `{"action":"addnode","node_id":...}` (and the other three actions).
Result<supervisor::BatchOperation> batch_operation_from_json(const nlohmann::json& json);

/// A batch operation that could not be read (bad JSON shape): operation `index`, the node id
/// it names if any, and the reason (as error_text() puts it).
supervisor::BatchIssue unreadable_operation(std::size_t index, const nlohmann::json& operation,
                                            const Status& why);

/// validationresult's `errors`: [{error_type: "error", message, operation?, node_id?}]. The
/// unreadable operations say their index in the message ("operation 1: ..."); the session's
/// checks in `operation`.
nlohmann::json validation_errors_json(const std::vector<supervisor::BatchIssue>& unreadable,
                                      const std::vector<supervisor::BatchIssue>& issues);

/// batchapplied's `errors`: one "operation N: message" per problem.
nlohmann::json batch_errors_json(const std::vector<supervisor::BatchIssue>& issues);

/// The `UpdateParams` object of a StreamKit NodeControlMessage
/// (`{"UpdateParams": {...}}`); kInvalidArgument for anything else ("Start", "Shutdown").
Result<nlohmann::json> update_params_of(const nlohmann::json& message);

}  // namespace skit::gateway
