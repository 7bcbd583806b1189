// SPDX-License-Identifier: MPL-2.0
#include "control_plane.hpp"

#include "skit/gateway/session_json.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "skit/core/registry.hpp"

namespace skit::gateway {

using nlohmann::json;

json permissions_of(Role role) {
  const bool op = role != Role::kViewer;
  // What the server really does: every role sees every session (no per-token ownership yet),
  // and there are no plugin endpoints yet, so nobody may load or delete plugins.
  constexpr bool kNoEndpointYet = false;
  return json{{"create_sessions", op},          {"destroy_sessions", op},
              {"list_sessions", true},          {"modify_sessions", op},
              {"tune_nodes", op},               {"load_plugins", kNoEndpointYet},
              {"delete_plugins", kNoEndpointYet}, {"list_nodes", true},
              {"list_samples", true},           {"read_samples", true},
              {"write_samples", op},            {"delete_samples", op},
              {"access_all_sessions", true},    {"upload_assets", op},
              {"delete_assets", op},            {"process_oneshot", op}};
}

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

std::string error_text(const Status& s) {
  std::string text = s.message();
  const auto& where = s.where();
  const bool placed = text.find('\n') != std::string::npos || text.rfind("error: ", 0) == 0 ||
                      text.rfind("operation ", 0) == 0 || text.rfind("line ", 0) == 0 ||
                      (!where.node_id.empty() &&
                       text.find("node '" + where.node_id + "'") != std::string::npos);
  if (!placed) {
    text = s.to_string();
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

json session_info_json(const supervisor::SessionInfo& info) {
  return json{{"id", info.id}, {"name", info.name}, {"created_at", info.created_at}};
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

namespace {

/// A request that cannot be served; becomes `{action: "error", message}`.
struct RequestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const Status& s) { throw RequestError(error_text(s)); }

const json& field(const json& payload, const char* key) {
  static const json kNull;
  const auto it = payload.find(key);
  return it == payload.end() ? kNull : *it;
}

std::string required_string(const json& payload, const char* key) {
  const json& v = field(payload, key);
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
    throw RequestError(std::string("'") + key + "' is required (a non-empty string)");
  }
  return v.get<std::string>();
}

std::optional<std::string> optional_string(const json& payload, const char* key) {
  const json& v = field(payload, key);
  if (v.is_null()) {
    return std::nullopt;
  }
  if (!v.is_string()) {
    throw RequestError(std::string("'") + key + "' must be a string");
  }
  return v.get<std::string>();
}

void require(Role role, Role needed, const char* what) {
  if (static_cast<int>(role) < static_cast<int>(needed)) {
    throw RequestError("role '" + std::string(role_name(role)) + "' may not " + what +
                       " (needs " + std::string(role_name(needed)) + ")");
  }
}

/// The operations of a batch; problems of parsing, one per bad operation.
std::vector<supervisor::BatchOperation> parse_operations(const json& payload,
                                                         std::vector<std::string>& problems,
                                                         std::vector<std::string>& node_ids) {
  const json& ops = field(payload, "operations");
  if (!ops.is_array()) {
    throw RequestError("'operations' is required (a list of BatchOperation)");
  }
  std::vector<supervisor::BatchOperation> out;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    auto op = batch_operation_from_json(ops[i]);
    if (!op) {
      problems.push_back("operation " + std::to_string(i) + ": " + error_text(op.status()));
      node_ids.push_back(ops[i].is_object() ? ops[i].value("node_id", "") : "");
      continue;
    }
    out.push_back(std::move(*op));
  }
  return out;
}

json error_payload(const std::string& message) {
  return json{{"action", "error"}, {"message", message}};
}

}  // namespace

std::optional<json> ControlPlane::handle(std::string_view message) {
  json response{{"type", "response"}};
  const json request = json::parse(message, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object()) {
    response["payload"] = error_payload("a message must be a JSON object (StreamKit's envelope: "
                                        "{type, correlation_id?, payload: {action, ...}})");
    return response;
  }
  const json& cid = field(request, "correlation_id");
  if (cid.is_string()) {
    response["correlation_id"] = cid;
  }
  const json& type = field(request, "type");
  const json& payload = field(request, "payload");
  if (type != "request") {
    response["payload"] = error_payload("'type' must be \"request\"");
    return response;
  }
  if (!payload.is_object() || !field(payload, "action").is_string()) {
    response["payload"] = error_payload("'payload' must be an object with an 'action'");
    return response;
  }
  const std::string action = payload["action"].get<std::string>();
  bool respond = true;
  try {
    response["payload"] = dispatch(action, payload, respond);
  } catch (const RequestError& e) {
    response["payload"] = error_payload(e.what());
  } catch (const json::exception& e) {
    response["payload"] = error_payload(std::string("bad request: ") + e.what());
  }
  if (!respond) {
    return std::nullopt;
  }
  return response;
}

json ControlPlane::dispatch(const std::string& action, const json& payload, bool& respond) {
  if (action == "getpermissions") {
    return json{{"action", "permissions"},
                {"role", role_name(role_)},
                {"permissions", permissions_of(role_)}};
  }
  if (action == "listnodes") {
    json nodes = json::array();
    for (const auto* d : NodeRegistry::builtin().all()) {
      nodes.push_back(d->to_json());
    }
    return json{{"action", "nodeslisted"}, {"nodes", std::move(nodes)}};
  }
  if (action == "listsessions") {
    json list = json::array();
    for (const auto& s : sessions_.list_sessions()) {
      list.push_back(session_info_json(s));
    }
    return json{{"action", "sessionslisted"}, {"sessions", std::move(list)}};
  }
  if (action == "getpipeline") {
    auto pipeline = sessions_.pipeline(required_string(payload, "session_id"));
    if (!pipeline) {
      fail(pipeline.status());
    }
    return json{{"action", "pipeline"}, {"pipeline", pipeline_json(*pipeline)}};
  }
  if (action == "createsession") {
    require(role_, Role::kOperator, "create sessions");
    const auto name = optional_string(payload, "name");
    const std::string yaml = optional_string(payload, "yaml").value_or("");
    if (yaml.size() > max_config_bytes_) {
      throw RequestError("'yaml' is " + std::to_string(yaml.size()) +
                         " bytes; limits.max_config_bytes is " + std::to_string(max_config_bytes_));
    }
    auto info = create_session(sessions_, name, yaml);
    if (!info) {
      fail(info.status());
    }
    return json{{"action", "sessioncreated"},
                {"session_id", info->id},
                {"name", info->name},
                {"created_at", info->created_at}};
  }
  if (action == "destroysession") {
    require(role_, Role::kOperator, "destroy sessions");
    auto info = sessions_.destroy_session(required_string(payload, "session_id"));
    if (!info) {
      fail(info.status());
    }
    return json{{"action", "sessiondestroyed"}, {"session_id", info->id}};
  }
  if (action == "addnode" || action == "removenode" || action == "connect" ||
      action == "disconnect") {
    require(role_, Role::kOperator, "modify sessions");
    const std::string session = required_string(payload, "session_id");
    json op = payload;  // the payload is a BatchOperation plus the session
    op.erase("session_id");
    auto parsed = batch_operation_from_json(op);
    if (!parsed) {
      fail(parsed.status());
    }
    if (Status s = sessions_.apply_batch(session, {*parsed}); !s.is_ok()) {
      fail(s);
    }
    return json{{"action", "success"}};
  }
  if (action == "tunenode" || action == "tunenodeasync") {
    const bool wait = action == "tunenode";
    respond = wait;  // tunenodeasync: fire and forget, no response (StreamKit)
    require(role_, Role::kOperator, "tune nodes");
    const std::string session = required_string(payload, "session_id");
    const std::string node_id = required_string(payload, "node_id");
    auto patch = update_params_of(field(payload, "message"));
    if (!patch) {
      fail(patch.status());
    }
    // The manager checks a tuned file path against the allow-lists too.
    Status s = sessions_.tune_node(session, node_id, *patch, wait);
    if (!s.is_ok()) {
      if (!wait) {
        spdlog::info("tunenodeasync of node '{}' in session '{}' failed: {}", node_id, session,
                     error_text(s));
      }
      fail(s);
    }
    return json{{"action", "success"}};
  }
  if (action == "validatebatch") {
    require(role_, Role::kOperator, "modify sessions");
    const std::string session = required_string(payload, "session_id");
    std::vector<std::string> problems;
    std::vector<std::string> node_ids;
    const auto ops = parse_operations(payload, problems, node_ids);
    json errors = json::array();
    for (std::size_t i = 0; i < problems.size(); ++i) {
      json e{{"error_type", "error"}, {"message", problems[i]}};
      if (!node_ids[i].empty()) {
        e["node_id"] = node_ids[i];
      }
      errors.push_back(std::move(e));
    }
    if (problems.empty()) {
      auto issues = sessions_.validate_batch(session, ops);
      if (!issues) {
        fail(issues.status());
      }
      for (const auto& issue : *issues) {
        json e{{"error_type", "error"}, {"message", issue.message}, {"operation", issue.operation}};
        if (!issue.node_id.empty()) {
          e["node_id"] = issue.node_id;
        }
        errors.push_back(std::move(e));
      }
    } else if (auto found = sessions_.find_session(session); !found) {
      fail(found.status());
    }
    return json{{"action", "validationresult"}, {"errors", std::move(errors)}};
  }
  if (action == "applybatch") {
    require(role_, Role::kOperator, "modify sessions");
    const std::string session = required_string(payload, "session_id");
    if (auto found = sessions_.find_session(session); !found) {
      fail(found.status());
    }
    std::vector<std::string> problems;
    std::vector<std::string> node_ids;
    const auto ops = parse_operations(payload, problems, node_ids);
    if (problems.empty()) {
      std::vector<supervisor::BatchIssue> issues;
      if (Status s = sessions_.apply_batch(session, ops, &issues); !s.is_ok()) {
        if (issues.empty()) {
          problems.push_back(error_text(s));  // not the batch's: the session, shared memory
        }
        for (const auto& issue : issues) {
          problems.push_back("operation " + std::to_string(issue.operation) + ": " + issue.message);
        }
      }
    }
    return json{{"action", "batchapplied"}, {"success", problems.empty()}, {"errors", problems}};
  }
  throw RequestError("unknown action '" + action +
                     "' (createsession, destroysession, listsessions, listnodes, getpipeline, "
                     "addnode, removenode, connect, disconnect, tunenode, tunenodeasync, "
                     "validatebatch, applybatch, getpermissions)");
}

}  // namespace skit::gateway
