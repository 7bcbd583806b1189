// SPDX-License-Identifier: MPL-2.0
#include "control_plane.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "authorization.hpp"
#include "session_api.hpp"
#include "skit/core/registry.hpp"
#include "skit/gateway/session_json.hpp"
#include "status_codes.hpp"

namespace skit::gateway {

using nlohmann::json;

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

void require(Role role, Permission permission, const char* what) {
  if (Status s = authorize(role, permission, what); !s.is_ok()) {
    fail(s);
  }
}

/// The operations of a batch; those that cannot be read go to `unreadable`.
std::vector<supervisor::BatchOperation> parse_operations(
    const json& payload, std::vector<supervisor::BatchIssue>& unreadable) {
  const json& ops = field(payload, "operations");
  if (!ops.is_array()) {
    throw RequestError("'operations' is required (a list of BatchOperation)");
  }
  std::vector<supervisor::BatchOperation> out;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    auto op = batch_operation_from_json(ops[i]);
    if (!op) {
      unreadable.push_back(unreadable_operation(i, ops[i], op.status()));
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

std::string ControlPlane::accessible_session(const json& payload) {
  const std::string session = required_string(payload, "session_id");
  if (auto found = find_session_for(sessions_, session, caller_); !found) {
    fail(found.status());
  }
  return session;
}

json ControlPlane::dispatch(const std::string& action, const json& payload, bool& respond) {
  if (action == "getpermissions") {
    return json{{"action", "permissions"},
                {"role", role_name(role_)},
                {"permissions", permissions_of(role_)}};
  }
  if (action == "listnodes") {
    require(role_, Permission::kListNodes, "list node kinds");
    json nodes = json::array();
    for (const auto* d : NodeRegistry::builtin().all()) {
      nodes.push_back(d->to_json());
    }
    return json{{"action", "nodeslisted"}, {"nodes", std::move(nodes)}};
  }
  if (action == "listsessions") {
    require(role_, Permission::kListSessions, "list sessions");
    json list = json::array();
    for (const auto& s : sessions_for(sessions_, caller_)) {
      list.push_back(session_info_json(s));
    }
    return json{{"action", "sessionslisted"}, {"sessions", std::move(list)}};
  }
  if (action == "getpipeline") {
    require(role_, Permission::kListSessions, "read sessions");
    auto pipeline = sessions_.pipeline(accessible_session(payload));
    if (!pipeline) {
      fail(pipeline.status());
    }
    return json{{"action", "pipeline"}, {"pipeline", pipeline_json(*pipeline)}};
  }
  if (action == "createsession") {
    require(role_, Permission::kCreateSessions, "create sessions");
    const auto name = optional_string(payload, "name");
    const std::string yaml = optional_string(payload, "yaml").value_or("");
    if (yaml.size() > max_config_bytes_) {
      throw RequestError("'yaml' is " + std::to_string(yaml.size()) +
                         " bytes; limits.max_config_bytes is " + std::to_string(max_config_bytes_));
    }
    auto info = create_session(sessions_, name, yaml, caller_);
    if (!info) {
      fail(info.status());
    }
    return json{{"action", "sessioncreated"},
                {"session_id", info->id},
                {"name", info->name},
                {"created_at", info->created_at}};
  }
  if (action == "destroysession") {
    require(role_, Permission::kDestroySessions, "destroy sessions");
    auto info = sessions_.destroy_session(accessible_session(payload));
    if (!info) {
      fail(info.status());
    }
    return json{{"action", "sessiondestroyed"}, {"session_id", info->id}};
  }
  if (action == "addnode" || action == "removenode" || action == "connect" ||
      action == "disconnect") {
    require(role_, Permission::kModifySessions, "modify sessions");
    const std::string session = accessible_session(payload);
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
    require(role_, Permission::kTuneNodes, "tune nodes");
    const std::string session = accessible_session(payload);
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
    require(role_, Permission::kModifySessions, "modify sessions");
    const std::string session = accessible_session(payload);
    std::vector<supervisor::BatchIssue> unreadable;
    const auto ops = parse_operations(payload, unreadable);
    std::vector<supervisor::BatchIssue> issues;
    if (unreadable.empty()) {
      auto checked = sessions_.validate_batch(session, ops);
      if (!checked) {
        fail(checked.status());
      }
      issues = std::move(*checked);
    } else if (auto found = sessions_.find_session(session); !found) {
      fail(found.status());
    }
    return json{{"action", "validationresult"},
                {"errors", validation_errors_json(unreadable, issues)}};
  }
  if (action == "applybatch") {
    require(role_, Permission::kModifySessions, "modify sessions");
    const std::string session = accessible_session(payload);
    std::vector<supervisor::BatchIssue> issues;
    const auto ops = parse_operations(payload, issues);
    if (issues.empty()) {
      if (Status s = sessions_.apply_batch(session, ops, &issues); !s.is_ok() && issues.empty()) {
        // Not the batch's problem (the session went away meanwhile, shared memory): as it is.
        return json{{"action", "batchapplied"},
                    {"success", false},
                    {"errors", json::array({error_text(s)})}};
      }
    }
    return json{{"action", "batchapplied"},
                {"success", issues.empty()},
                {"errors", batch_errors_json(issues)}};
  }
  throw RequestError("unknown action '" + action +
                     "' (createsession, destroysession, listsessions, listnodes, getpipeline, "
                     "addnode, removenode, connect, disconnect, tunenode, tunenodeasync, "
                     "validatebatch, applybatch, getpermissions)");
}

}  // namespace skit::gateway
