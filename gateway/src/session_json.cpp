// SPDX-License-Identifier: MPL-2.0
#include "skit/gateway/session_json.hpp"

#include "status_codes.hpp"

namespace skit::gateway {

using nlohmann::json;
using supervisor::BatchOperation;
using supervisor::NodeStatus;
using supervisor::SessionEvent;

json session_info_json(const supervisor::SessionInfo& info) {
  return json{{"id", info.id}, {"name", info.name}, {"created_at", info.created_at}};
}

json node_state_json(const NodeStatus& status) {
  switch (status.kind) {
    case NodeStatus::Kind::kInitializing: return "Initializing";
    case NodeStatus::Kind::kReady: return "Ready";
    case NodeStatus::Kind::kRunning: return "Running";
    case NodeStatus::Kind::kRecovering: {
      json r{{"reason", status.reason}};
      if (!status.details.is_null()) {
        r["details"] = status.details;
      }
      return json{{"Recovering", r}};
    }
    case NodeStatus::Kind::kStopped: return json{{"Stopped", {{"reason", status.reason}}}};
    case NodeStatus::Kind::kFailed: return json{{"Failed", {{"reason", status.reason}}}};
  }
  return "Initializing";
}

json node_stats_json(const NodeStats& stats, double running_seconds, bool failed) {
  return json{{"received", stats.packets_in},   {"sent", stats.packets_out},
              {"discarded", stats.dropped},     {"errored", failed ? 1 : 0},
              {"duration_secs", running_seconds}, {"bytes_in", stats.bytes_in},
              {"bytes_out", stats.bytes_out}, {"telemetry_dropped", stats.telemetry_dropped}};
}

namespace {
json connection_json(const supervisor::ConnectionView& c) {
  json j{{"from_node", c.from_node}, {"from_pin", c.from_pin}, {"to_node", c.to_node},
         {"to_pin", c.to_pin}};
  if (c.mode == ConnectionMode::kBestEffort) {
    j["mode"] = "best_effort";
  }
  return j;
}
}  // namespace

json pipeline_json(const supervisor::PipelineView& pipeline) {
  json nodes = json::object();
  for (const auto& n : pipeline.nodes) {
    nodes[n.id] = json{{"kind", n.kind},
                       {"params", n.params},
                       {"state", node_state_json(n.status)},
                       {"stats", node_stats_json(n.stats, n.running_seconds,
                                                 n.status.kind == NodeStatus::Kind::kFailed)},
                       {"worker_pid", n.worker_pid},
                       {"restarts", n.restarts}};
  }
  json connections = json::array();
  for (const auto& c : pipeline.connections) {
    connections.push_back(connection_json(c));
  }
  return json{{"name", pipeline.name},
              {"description", pipeline.description},
              {"mode", "dynamic"},
              {"nodes", nodes},
              {"connections", connections}};
}

std::string_view event_name(SessionEvent::Kind kind) {
  switch (kind) {
    case SessionEvent::Kind::kSessionCreated: return "sessioncreated";
    case SessionEvent::Kind::kSessionDestroyed: return "sessiondestroyed";
    case SessionEvent::Kind::kNodeAdded: return "nodeadded";
    case SessionEvent::Kind::kNodeRemoved: return "noderemoved";
    case SessionEvent::Kind::kConnectionAdded: return "connectionadded";
    case SessionEvent::Kind::kConnectionRemoved: return "connectionremoved";
    case SessionEvent::Kind::kNodeStateChanged: return "nodestatechanged";
    case SessionEvent::Kind::kNodeStatsUpdated: return "nodestatsupdated";
    case SessionEvent::Kind::kNodeParamsChanged: return "nodeparamschanged";
    case SessionEvent::Kind::kNodeTelemetry: return "nodetelemetry";
  }
  return "unknown";
}

json event_json(const SessionEvent& e) {
  json j{{"event", event_name(e.kind)}, {"session_id", e.session_id}};
  switch (e.kind) {
    case SessionEvent::Kind::kSessionCreated:
      j["name"] = e.name;
      j["created_at"] = e.created_at;
      break;
    case SessionEvent::Kind::kSessionDestroyed:
      break;
    case SessionEvent::Kind::kNodeAdded:
      j["node_id"] = e.node_id;
      j["kind"] = e.node_kind;
      j["params"] = e.params;
      break;
    case SessionEvent::Kind::kNodeRemoved:
      j["node_id"] = e.node_id;
      break;
    case SessionEvent::Kind::kConnectionAdded:
    case SessionEvent::Kind::kConnectionRemoved: {
      json c = connection_json(e.connection);
      c.erase("mode");  // StreamKit's connection events name the pins only
      j.update(c);
      break;
    }
    case SessionEvent::Kind::kNodeStateChanged:
      j["node_id"] = e.node_id;
      j["state"] = node_state_json(e.status);
      // Beyond StreamKit: the node's worker and its restarts, so that a client sees a
      // restarted worker as it happens.
      j["worker_pid"] = e.worker_pid;
      j["restarts"] = e.restarts;
      j["timestamp"] = e.timestamp;
      break;
    case SessionEvent::Kind::kNodeStatsUpdated:
      j["node_id"] = e.node_id;
      j["stats"] = node_stats_json(e.stats, e.running_seconds,
                                   e.status.kind == NodeStatus::Kind::kFailed);
      j["timestamp"] = e.timestamp;
      break;
    case SessionEvent::Kind::kNodeParamsChanged:
      j["node_id"] = e.node_id;
      j["params"] = e.params;
      break;
    case SessionEvent::Kind::kNodeTelemetry:
      // StreamKit's shape: the event is a Custom packet of type core::telemetry/event@1.
      j["node_id"] = e.node_id;
      j["type_id"] = "core::telemetry/event@1";
      j["data"] = e.telemetry;
      if (e.timestamp_us >= 0) {
        j["timestamp_us"] = e.timestamp_us;
      }
      j["timestamp"] = e.timestamp;
      break;
  }
  return j;
}

Result<BatchOperation> batch_operation_from_json(const json& op_json) {
  if (!op_json.is_object()) {
    return Status(ErrorCode::kInvalidArgument, "a batch operation must be an object");
  }
  auto text = [&](const char* key, bool required, std::string& out) -> Status {
    auto it = op_json.find(key);
    if (it == op_json.end() || it->is_null()) {
      return required ? Status(ErrorCode::kInvalidArgument,
                               std::string("operation is missing '") + key + "'")
                      : Status::ok();
    }
    if (!it->is_string()) {
      return Status(ErrorCode::kInvalidArgument, std::string("'") + key + "' must be a string");
    }
    out = it->get<std::string>();
    return Status::ok();
  };
  std::string action;
  SKIT_RETURN_IF_ERROR(text("action", true, action));
  BatchOperation op;
  if (action == "addnode") {
    op.action = BatchOperation::Action::kAddNode;
    SKIT_RETURN_IF_ERROR(text("node_id", true, op.node_id));
    SKIT_RETURN_IF_ERROR(text("kind", true, op.kind));
    if (auto it = op_json.find("params"); it != op_json.end()) {
      if (!it->is_null() && !it->is_object()) {
        return Status(ErrorCode::kInvalidParam, "'params' must be an object",
                      {.node_id = op.node_id});
      }
      op.params = *it;
    }
  } else if (action == "removenode") {
    op.action = BatchOperation::Action::kRemoveNode;
    SKIT_RETURN_IF_ERROR(text("node_id", true, op.node_id));
  } else if (action == "connect" || action == "disconnect") {
    op.action = action == "connect" ? BatchOperation::Action::kConnect
                                    : BatchOperation::Action::kDisconnect;
    SKIT_RETURN_IF_ERROR(text("from_node", true, op.from_node));
    SKIT_RETURN_IF_ERROR(text("from_pin", true, op.from_pin));
    SKIT_RETURN_IF_ERROR(text("to_node", true, op.to_node));
    SKIT_RETURN_IF_ERROR(text("to_pin", true, op.to_pin));
    std::string mode;
    SKIT_RETURN_IF_ERROR(text("mode", false, mode));
    if (mode.empty() || mode == "reliable") {
      op.mode = ConnectionMode::kReliable;
    } else if (mode == "best_effort") {
      op.mode = ConnectionMode::kBestEffort;
    } else {
      return Status(ErrorCode::kInvalidArgument,
                    "unknown connection mode '" + mode + "' (reliable or best_effort)");
    }
  } else {
    return Status(ErrorCode::kInvalidArgument,
                  "unknown batch action '" + action +
                      "' (addnode, removenode, connect or disconnect)");
  }
  return op;
}

supervisor::BatchIssue unreadable_operation(std::size_t index, const json& operation,
                                            const Status& why) {
  supervisor::BatchIssue issue;
  issue.operation = index;
  issue.node_id = operation.is_object() ? operation.value("node_id", "") : "";
  issue.message = error_text(why);
  issue.code = why.code();
  issue.param = why.where().param;
  return issue;
}

json validation_errors_json(const std::vector<supervisor::BatchIssue>& unreadable,
                            const std::vector<supervisor::BatchIssue>& issues) {
  json errors = json::array();
  for (const auto& i : unreadable) {
    json e{{"error_type", "error"},
           {"message", "operation " + std::to_string(i.operation) + ": " + i.message}};
    if (!i.node_id.empty()) {
      e["node_id"] = i.node_id;
    }
    errors.push_back(std::move(e));
  }
  for (const auto& i : issues) {
    json e{{"error_type", "error"}, {"message", i.message}, {"operation", i.operation}};
    if (!i.node_id.empty()) {
      e["node_id"] = i.node_id;
    }
    errors.push_back(std::move(e));
  }
  return errors;
}

json batch_errors_json(const std::vector<supervisor::BatchIssue>& issues) {
  json errors = json::array();
  for (const auto& i : issues) {
    errors.push_back("operation " + std::to_string(i.operation) + ": " + i.message);
  }
  return errors;
}

Result<json> update_params_of(const json& message) {
  if (message.is_object() && message.size() == 1 && message.contains("UpdateParams")) {
    const json& params = message["UpdateParams"];
    if (!params.is_object()) {
      return Status(ErrorCode::kInvalidArgument, "UpdateParams must be an object of params");
    }
    return params;
  }
  if (message.is_string()) {
    return Status(ErrorCode::kInvalidArgument,
                  "'" + message.get<std::string>() +
                      "' is not supported: skit nodes start with their session and stop when "
                      "removed; send {\"UpdateParams\": {...}}");
  }
  return Status(ErrorCode::kInvalidArgument,
                "'message' must be a NodeControlMessage: {\"UpdateParams\": {...}}");
}

}  // namespace skit::gateway
