// SPDX-License-Identifier: MPL-2.0
// GET /healthz (/health), /metrics, /api/v1/config, /api/v1/permissions,
// /api/v1/schema/nodes and /api/v1/schema/packets.
#include <nlohmann/json.hpp>

#include "authorization.hpp"
#include "http_routes.hpp"
#include "skit/core/packet_type.hpp"
#include "skit/core/registry.hpp"
#include "status_codes.hpp"

#ifndef SKIT_VERSION
#define SKIT_VERSION "0.0.0"
#endif

namespace skit::gateway {

using nlohmann::json;

HttpReply error_reply(const Status& s) {
  HttpReply r = HttpReply::text(http_status_for(s), s.to_string());
  if (r.status == 503) {
    r.headers.emplace_back("Retry-After", "1");
  }
  return r;
}

HttpReply health(HttpContext& ctx, HttpExchange& /*ex*/) {
  const auto sessions = ctx.sessions.stats();
  return HttpReply::json(json{{"status", "ok"},
                              {"version", SKIT_VERSION},
                              {"active_oneshots", ctx.engine.stats().active_oneshots},
                              {"sessions", sessions.sessions},
                              {"session_workers", sessions.workers},
                              {"websocket_connections", ctx.control_sockets.active()}}
                             .dump());
}

HttpReply metrics(HttpContext& ctx, HttpExchange& /*ex*/) {
  return HttpReply{200,
                   ctx.metrics.render(ctx.engine.stats(), ctx.open_connections(),
                                      ctx.sessions.stats(), ctx.control_sockets),
                   "text/plain; version=0.0.4",
                   {}};
}

HttpReply server_config(HttpContext& ctx, HttpExchange& /*ex*/) {
  return HttpReply::json(
      json{{"version", SKIT_VERSION},
           {"limits",
            {{"max_body_bytes", ctx.config.max_body_bytes},
             {"max_concurrent_oneshots", ctx.engine.config().max_concurrent_oneshots},
             {"max_sessions", ctx.sessions.config().max_sessions},
             {"max_nodes_per_session", ctx.sessions.config().max_nodes_per_session}}},
           {"placement", supervisor::placement_name(ctx.engine.config().placement)}}
          .dump());
}

HttpReply permissions(HttpContext& /*ctx*/, HttpExchange& ex) {
  return HttpReply::json(
      json{{"role", role_name(ex.role())}, {"permissions", permissions_of(ex.role())}}.dump());
}

HttpReply node_schema(HttpContext& /*ctx*/, HttpExchange& ex) {
  if (Status s = authorize(ex.role(), Permission::kListNodes, "list node kinds"); !s.is_ok()) {
    return error_reply(s);
  }
  json kinds = json::array();
  for (const auto* d : NodeRegistry::builtin().all()) {
    kinds.push_back(d->to_json());
  }
  return HttpReply::json(kinds.dump());
}

HttpReply packet_schema(HttpContext& /*ctx*/, HttpExchange& /*ex*/) {
  return HttpReply::json(packet_schema_json().dump());
}

}  // namespace skit::gateway
