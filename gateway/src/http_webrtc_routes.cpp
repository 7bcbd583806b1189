// SPDX-License-Identifier: MPL-2.0
// WebRTC signalling (RFC 9725 WHIP, and WHEP its mirror): POST /whip/{session}/{endpoint}
// with an SDP offer answers 201 with the SDP answer and the Location of the new peer; DELETE
// on that Location ends it. {endpoint} is the id of a transport::webrtc::whip (or ::whep)
// node of the session. The gateway only checks who may ask and forwards the exchange to the
// node's worker, where webrtcbin negotiates and carries the media; trickle ICE (PATCH) is not
// offered, so PATCH is refused with 405 as the RFC provides.
#include <chrono>

#include "session_api.hpp"
#include "authorization.hpp"
#include "http_routes.hpp"
#include "skit/core/registry.hpp"
#include "status_codes.hpp"

namespace skit::gateway {

namespace http = boost::beast::http;

namespace {

constexpr std::uint64_t kMaxOfferBytes = 64 * 1024;
constexpr auto kSignallingTimeout = std::chrono::seconds(10);

struct Family {
  std::string_view name;  // "whip": the path prefix and NodeDescriptor::http_endpoint
  std::string_view label;
  Permission needs;
  std::string_view what;  // for the refusal: "role 'viewer' may not <what>"
};

constexpr Family kWhip{"whip", "WHIP", Permission::kModifySessions, "publish to a session"};
constexpr Family kWhep{"whep", "WHEP", Permission::kListSessions, "play a session's stream"};

HttpReply signalling_error(const Status& s) { return HttpReply::text(http_status_for(s), error_text(s)); }

/// Checks the role and that {endpoint} is a node of the family in the session.
std::optional<HttpReply> check_endpoint(HttpContext& ctx, HttpExchange& ex, const Family& f) {
  if (Status s = authorize(ex.role(), f.needs, f.what); !s.is_ok()) {
    return error_reply(s);
  }
  if (auto mine = find_session_for(ctx.sessions, ex.param(0), ex.caller()); !mine) {
    return signalling_error(mine.status());
  }
  auto pipeline = ctx.sessions.pipeline(ex.param(0));
  if (!pipeline) {
    return signalling_error(pipeline.status());
  }
  for (const auto& n : pipeline->nodes) {
    if (n.id != ex.param(1)) {
      continue;
    }
    const NodeDescriptor* d = NodeRegistry::builtin().find(n.kind);
    if (d == nullptr || d->http_endpoint != f.name) {
      return HttpReply::text(404, "node '" + n.id + "' of session '" + ex.param(0) + "' is a " +
                                      n.kind + ", not a " + std::string(f.label) + " endpoint");
    }
    return std::nullopt;
  }
  return HttpReply::text(404, "session '" + ex.param(0) + "' has no node '" + ex.param(1) + "'");
}

HttpReply forward(HttpContext& ctx, HttpExchange& ex, const Family& f, NodeRequest request) {
  auto reply = ctx.sessions.node_request(ex.param(0), ex.param(1), std::move(request),
                                         kSignallingTimeout);
  if (!reply) {
    return signalling_error(reply.status());
  }
  HttpReply out{static_cast<unsigned>(reply->status), std::move(reply->body),
                reply->content_type.empty() ? "text/plain; charset=utf-8" : reply->content_type,
                {}};
  if (!reply->created_resource.empty()) {
    out.headers.emplace_back("Location", "/" + std::string(f.name) + "/" + ex.param(0) + "/" +
                                             ex.param(1) + "/" + reply->created_resource);
  }
  return out;
}

HttpReply offer(HttpContext& ctx, HttpExchange& ex, const Family& f) {
  if (auto refused = check_endpoint(ctx, ex, f)) {
    return *refused;
  }
  const auto type = ex.head()[http::field::content_type];
  if (!type.starts_with("application/sdp")) {
    return HttpReply::text(415, std::string(f.label) + " takes an SDP offer (Content-Type: application/sdp)");
  }
  HttpReply error;
  auto body = ex.read_body(kMaxOfferBytes, error, " (an SDP offer)");
  if (!body) {
    return error;
  }
  if (body->empty()) {
    return HttpReply::text(400, "the SDP offer is empty");
  }
  return forward(ctx, ex, f, NodeRequest{"POST", "", "application/sdp", std::move(*body)});
}

HttpReply end_peer(HttpContext& ctx, HttpExchange& ex, const Family& f) {
  if (auto refused = check_endpoint(ctx, ex, f)) {
    return *refused;
  }
  return forward(ctx, ex, f, NodeRequest{"DELETE", ex.param(2), "", ""});
}

}  // namespace

HttpReply whip_offer(HttpContext& ctx, HttpExchange& ex) { return offer(ctx, ex, kWhip); }
HttpReply whip_resource(HttpContext& ctx, HttpExchange& ex) { return end_peer(ctx, ex, kWhip); }
HttpReply whep_offer(HttpContext& ctx, HttpExchange& ex) { return offer(ctx, ex, kWhep); }
HttpReply whep_resource(HttpContext& ctx, HttpExchange& ex) { return end_peer(ctx, ex, kWhep); }

}  // namespace skit::gateway
