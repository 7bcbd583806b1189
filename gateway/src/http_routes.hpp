// SPDX-License-Identifier: MPL-2.0
// The handlers of the route table (routes.cpp), by family. Each gets the request past the
// Origin guard and the token check, with a method its route accepts, and checks the role's
// permission itself (authorization.hpp).
#pragma once

#include "http_context.hpp"
#include "http_exchange.hpp"
#include "http_reply.hpp"

namespace skit::gateway {

// Health, metrics, configuration, permissions and schemas (http_info_routes.cpp).
HttpReply health(HttpContext& ctx, HttpExchange& ex);
HttpReply metrics(HttpContext& ctx, HttpExchange& ex);
HttpReply server_config(HttpContext& ctx, HttpExchange& ex);
HttpReply permissions(HttpContext& ctx, HttpExchange& ex);
HttpReply node_schema(HttpContext& ctx, HttpExchange& ex);
HttpReply packet_schema(HttpContext& ctx, HttpExchange& ex);

// Sessions (http_session_routes.cpp): REST, and the WebSocket upgrade to the control plane.
HttpReply control_upgrade(HttpContext& ctx, HttpExchange& ex);
HttpReply sessions_collection(HttpContext& ctx, HttpExchange& ex);
HttpReply session_delete(HttpContext& ctx, HttpExchange& ex);
HttpReply session_pipeline(HttpContext& ctx, HttpExchange& ex);

// WebRTC signalling, WHIP and WHEP (http_webrtc_routes.cpp).
HttpReply whip_offer(HttpContext& ctx, HttpExchange& ex);
HttpReply whip_resource(HttpContext& ctx, HttpExchange& ex);
HttpReply whep_offer(HttpContext& ctx, HttpExchange& ex);
HttpReply whep_resource(HttpContext& ctx, HttpExchange& ex);

// Native plugins (http_plugin_routes.cpp).
HttpReply plugins_collection(HttpContext& ctx, HttpExchange& ex);
HttpReply plugin_delete(HttpContext& ctx, HttpExchange& ex);

// Oneshot processing (http_oneshot.cpp).
HttpReply process(HttpContext& ctx, HttpExchange& ex);
HttpReply process_outcome(HttpContext& ctx, HttpExchange& ex);

// Samples (ui_samples.cpp).
HttpReply oneshot_samples(HttpContext& ctx, HttpExchange& ex);
HttpReply oneshot_sample(HttpContext& ctx, HttpExchange& ex);
HttpReply dynamic_samples(HttpContext& ctx, HttpExchange& ex);
HttpReply dynamic_sample(HttpContext& ctx, HttpExchange& ex);

// The audio asset library (ui_assets.cpp).
HttpReply audio_assets(HttpContext& ctx, HttpExchange& ex);
HttpReply audio_asset_file(HttpContext& ctx, HttpExchange& ex);
HttpReply audio_asset_delete(HttpContext& ctx, HttpExchange& ex);

// POST /api/v1/validate (ui_validate.cpp).
HttpReply validate(HttpContext& ctx, HttpExchange& ex);

// Browser login (ui_login.cpp).
HttpReply login(HttpContext& ctx, HttpExchange& ex);
HttpReply logout(HttpContext& ctx, HttpExchange& ex);
HttpReply me(HttpContext& ctx, HttpExchange& ex);

// The built web UI (static_files.cpp).
HttpReply ui_file(HttpContext& ctx, HttpExchange& ex);

/// A permission refusal or an engine/session error as a plain-text answer, its status from
/// the one mapping (status_codes.hpp).
HttpReply error_reply(const Status& s);

}  // namespace skit::gateway
