// SPDX-License-Identifier: MPL-2.0
#include "session_json.hpp"

#include "skit/core/ids.hpp"

namespace skit::gateway {

using nlohmann::json;

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

Result<json> pipeline_json(supervisor::SessionManager& sessions, std::string_view id_or_name) {
  return sessions.pipeline_json(id_or_name);
}

json event_payload(const supervisor::SessionEvent& event) { return event.payload; }

std::string event_name(const supervisor::SessionEvent& event) {
  return event.payload.is_object() ? event.payload.value("event", "") : "";
}

std::string event_timestamp(const supervisor::SessionEvent& event) {
  const auto& payload = event.payload;
  const auto ts = payload.is_object() ? payload.find("timestamp") : payload.end();
  return ts != payload.end() && ts->is_string() ? ts->get<std::string>() : rfc3339_now();
}

json event_envelope(const supervisor::SessionEvent& event) {
  return json{{"type", "event"}, {"payload", event_payload(event)}};
}

supervisor::BatchIssue unreadable_operation(std::size_t index, const json& operation,
                                            const Status& why) {
  supervisor::BatchIssue issue;
  issue.operation = index;
  issue.node_id = operation.is_object() ? operation.value("node_id", "") : "";
  issue.message = error_text(why);
  issue.code = why.code();
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

std::string batch_issues_text(const std::vector<supervisor::BatchIssue>& issues) {
  std::string all;
  for (const auto& i : issues) {
    all += (all.empty() ? "" : "\n") + std::string("operation ") + std::to_string(i.operation) +
           ": " + i.message;
  }
  return all;
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
