// SPDX-License-Identifier: MPL-2.0
// StreamKit's JSON shapes of dynamic sessions, rendered from the session manager's typed
// views and parsed into its typed operations: the pipeline with live state, the event
// payloads, batch operations and issues. One place for the REST, WebSocket and gRPC front ends.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

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

}  // namespace skit::gateway
