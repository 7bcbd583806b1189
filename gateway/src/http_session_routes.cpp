// SPDX-License-Identifier: MPL-2.0
// The session REST endpoints (GET/POST /api/v1/sessions, DELETE /api/v1/sessions/{id},
// GET /api/v1/sessions/{id}/pipeline) and the upgrade of GET /api/v1/control to StreamKit's
// WebSocket control plane (control_socket.cpp), on the connection that asked for it.
#include <boost/beast/core/string.hpp>
#include <nlohmann/json.hpp>

#include "authorization.hpp"
#include "control_socket.hpp"
#include "http_routes.hpp"
#include "session_api.hpp"
#include "skit/gateway/session_json.hpp"
#include "status_codes.hpp"

namespace skit::gateway {

namespace http = boost::beast::http;
using nlohmann::json;

namespace {

/// A session API error: its status from the one mapping, except that the session limits are
/// 429 (StreamKit's answer to max_concurrent_sessions) rather than 503.
HttpReply session_error(const Status& s) {
  return HttpReply::text(s.code() == ErrorCode::kResourceExhausted ? 429 : http_status_for(s),
                         error_text(s));
}

/// POST /api/v1/sessions: {name?, yaml} -> {session_id, name, created_at}.
HttpReply create_session(HttpContext& ctx, HttpExchange& ex) {
  // The body is read here: the connection may stay open afterwards. At most the config
  // limit plus room for JSON's escaping.
  const std::uint64_t limit = 2 * ctx.config.max_config_bytes + 64 * 1024;
  HttpReply error;
  auto text = ex.read_body(limit, error, " (limits.max_config_bytes of YAML)");
  if (!text) {
    return error;
  }
  const json body = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return HttpReply::text(400, "expected a JSON object {\"name\"?: string, \"yaml\": string}");
  }
  std::optional<std::string> name;
  std::string yaml;
  if (const auto it = body.find("name"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) {
      return HttpReply::text(400, "'name' must be a string");
    }
    name = it->get<std::string>();
  }
  if (const auto it = body.find("yaml"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) {
      return HttpReply::text(400, "'yaml' must be a string (the pipeline YAML)");
    }
    yaml = it->get<std::string>();
  }
  if (yaml.size() > ctx.config.max_config_bytes) {
    return HttpReply::text(413, "'yaml' is " + std::to_string(yaml.size()) +
                                    " bytes; limits.max_config_bytes is " +
                                    std::to_string(ctx.config.max_config_bytes));
  }
  auto info = gateway::create_session(ctx.sessions, name, yaml, ex.caller());
  if (!info) {
    return session_error(info.status());
  }
  return HttpReply::json(
      json{{"session_id", info->id}, {"name", info->name}, {"created_at", info->created_at}}
          .dump());
}

}  // namespace

HttpReply sessions_collection(HttpContext& ctx, HttpExchange& ex) {
  if (ex.head().method() == http::verb::post) {
    if (Status s = authorize(ex.role(), Permission::kCreateSessions, "create sessions");
        !s.is_ok()) {
      return error_reply(s);  // before the body is read: the connection closes
    }
    return create_session(ctx, ex);
  }
  json list = json::array();
  for (const auto& s : sessions_for(ctx.sessions, ex.caller())) {
    list.push_back(session_info_json(s));
  }
  return HttpReply::json(list.dump());
}

HttpReply session_delete(HttpContext& ctx, HttpExchange& ex) {
  if (Status s = authorize(ex.role(), Permission::kDestroySessions, "destroy sessions");
      !s.is_ok()) {
    return error_reply(s);
  }
  if (auto mine = find_session_for(ctx.sessions, ex.param(0), ex.caller()); !mine) {
    return session_error(mine.status());
  }
  auto info = ctx.sessions.destroy_session(ex.param(0));
  return info ? HttpReply::json(json{{"session_id", info->id}}.dump())
              : session_error(info.status());
}

HttpReply session_pipeline(HttpContext& ctx, HttpExchange& ex) {
  if (auto mine = find_session_for(ctx.sessions, ex.param(0), ex.caller()); !mine) {
    return session_error(mine.status());
  }
  auto p = ctx.sessions.pipeline(ex.param(0));
  return p ? HttpReply::json(pipeline_json(*p).dump()) : session_error(p.status());
}

HttpReply control_upgrade(HttpContext& ctx, HttpExchange& ex) {
  if (!boost::beast::iequals(ex.head()[http::field::upgrade], "websocket")) {
    HttpReply r = HttpReply::text(
        426, "GET /api/v1/control is a WebSocket endpoint (send Upgrade: websocket)");
    r.headers.emplace_back("Upgrade", "websocket");
    return r;
  }
  ex.answered(101);
  // The socket becomes the WebSocket's, which closes it; close_all() ends it on shutdown.
  ex.handing_over();
  if (!serve_control_socket(ex.socket(), ex.head(), ex.caller(), ctx.config, ctx.sessions,
                            ctx.control_sockets)) {
    ex.send(HttpReply::text(503, "the server is stopping"), false);
  }
  return {};
}

}  // namespace skit::gateway
