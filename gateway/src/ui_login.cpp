// SPDX-License-Identifier: MPL-2.0
// Browser login (auth_cookie.hpp): POST /api/v1/auth/login trades a configured token for the
// session cookie, POST /api/v1/auth/logout ends it, GET /api/v1/auth/me tells who is logged
// in. Open without a token: they identify the caller themselves.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "authorization.hpp"
#include "http_routes.hpp"

namespace skit::gateway {

namespace http = boost::beast::http;
using nlohmann::json;

namespace {
constexpr std::uint64_t kMaxLoginBody = 4096;
}  // namespace

HttpReply login(HttpContext& ctx, HttpExchange& ex) {
  HttpReply error;
  auto body_text = ex.read_body(kMaxLoginBody, error);
  if (!body_text) {
    return error;
  }
  if (ctx.config.tokens.empty()) {
    return HttpReply::text(400, "authentication is not enabled on this server (no auth.tokens)");
  }
  const json body = json::parse(*body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("token") ||
      !body["token"].is_string()) {
    return HttpReply::text(400, "expected a JSON object {\"token\": string}");
  }
  const TokenConfig* who = find_token(ctx.config.tokens, body["token"].get<std::string>());
  if (who == nullptr) {
    spdlog::info("browser login refused: unknown token");
    return HttpReply::text(401, "invalid token");
  }
  const std::string id = ctx.browsers.create(*who);
  spdlog::info("browser login: token '{}' ({})", who->name, role_name(who->role));
  HttpReply r = HttpReply::json(json{{"auth_enabled", true},
                                     {"name", who->name},
                                     {"role", role_name(who->role)},
                                     {"permissions", permissions_of(who->role)}}
                                    .dump());
  r.headers.emplace_back("Set-Cookie", session_cookie(id, ctx.config.tls));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpReply logout(HttpContext& ctx, HttpExchange& ex) {
  HttpReply error;
  if (!ex.read_body(kMaxLoginBody, error)) {
    return error;
  }
  const std::string id = cookie_value(ex.header(http::field::cookie), kSessionCookie);
  if (!id.empty()) {
    ctx.browsers.remove(id);
  }
  HttpReply r = HttpReply::json(json{{"logged_out", !id.empty()}}.dump());
  r.headers.emplace_back("Set-Cookie", session_cookie("", ctx.config.tls));
  return r;
}

HttpReply me(HttpContext& ctx, HttpExchange& ex) {
  if (ctx.config.tokens.empty()) {
    return HttpReply::json(json{{"auth_enabled", false},
                                {"name", nullptr},
                                {"role", "admin"},
                                {"permissions", permissions_of(Role::kAdmin)}}
                               .dump());
  }
  const std::string authorization = ex.header(http::field::authorization);
  const std::string cookie = ex.header(http::field::cookie);
  const Identity who = identify(ctx.config, ctx.browsers, authorization, cookie);
  if (who.token == nullptr) {
    return HttpReply::text(401, authorization.empty() && cookie.empty()
                                    ? "not logged in"
                                    : "not logged in (unknown or expired token or session)");
  }
  return HttpReply::json(json{{"auth_enabled", true},
                              {"name", who.token->name},
                              {"role", role_name(who.token->role)},
                              {"via", who.via_cookie ? "cookie" : "bearer"},
                              {"permissions", permissions_of(who.token->role)}}
                             .dump());
}

}  // namespace skit::gateway
