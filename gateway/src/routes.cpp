// SPDX-License-Identifier: MPL-2.0
#include "routes.hpp"

#include <cctype>

#include "http_routes.hpp"

namespace skit::gateway {

namespace http = boost::beast::http;

const std::vector<Route>& routes() {
  using V = http::verb;
  static const std::vector<Route> kRoutes = {
      // Health, metrics, configuration and schemas (http_info_routes.cpp).
      {.path = "/healthz", .methods = {V::get}, .handler = health, .open = true},
      {.path = "/health", .methods = {V::get}, .handler = health, .open = true},
      {.path = "/metrics", .methods = {V::get}, .handler = metrics},
      {.path = "/api/v1/config", .methods = {V::get}, .handler = server_config},
      {.path = "/api/v1/permissions", .methods = {V::get}, .handler = permissions},
      {.path = "/api/v1/schema/nodes", .methods = {V::get}, .handler = node_schema},
      {.path = "/api/v1/schema/packets", .methods = {V::get}, .handler = packet_schema},
      // Sessions: REST and the WebSocket control plane (http_session_routes.cpp).
      {.path = "/api/v1/control", .methods = {V::get}, .handler = control_upgrade},
      {.path = "/api/v1/sessions", .methods = {V::get, V::post}, .handler = sessions_collection},
      {.path = "/api/v1/sessions/{id}", .methods = {V::delete_}, .handler = session_delete},
      {.path = "/api/v1/sessions/{id}/pipeline", .methods = {V::get}, .handler = session_pipeline},
      // WebRTC signalling of a session's WHIP/WHEP nodes (http_webrtc_routes.cpp).
      {.path = "/whip/{session}/{endpoint}", .methods = {V::post}, .handler = whip_offer},
      {.path = "/whip/{session}/{endpoint}/{peer}", .methods = {V::delete_},
       .handler = whip_resource},
      {.path = "/whep/{session}/{endpoint}", .methods = {V::post}, .handler = whep_offer},
      {.path = "/whep/{session}/{endpoint}/{peer}", .methods = {V::delete_},
       .handler = whep_resource},
      // Native plugins (http_plugin_routes.cpp).
      {.path = "/api/v1/plugins", .methods = {V::get, V::post}, .handler = plugins_collection},
      {.path = "/api/v1/plugins/{kind}", .methods = {V::delete_}, .handler = plugin_delete},
      // Oneshot processing (http_oneshot.cpp).
      {.path = "/api/v1/process", .methods = {V::post}, .handler = process},
      {.path = "/api/v1/process/{id}", .methods = {V::get}, .handler = process_outcome},
      // The web UI's families: samples (ui_samples.cpp), audio assets (ui_assets.cpp),
      // validate (ui_validate.cpp), browser login (ui_login.cpp), the UI's files.
      {.path = "/api/v1/samples/oneshot", .methods = {V::get, V::post},
       .handler = oneshot_samples, .head = true},
      {.path = "/api/v1/samples/oneshot/{id*}", .methods = {V::get, V::delete_},
       .handler = oneshot_sample, .label = "/api/v1/samples/oneshot/{id}", .head = true},
      {.path = "/api/v1/samples/dynamic", .methods = {V::get}, .handler = dynamic_samples,
       .head = true},
      {.path = "/api/v1/samples/dynamic/{id*}", .methods = {V::get}, .handler = dynamic_sample,
       .label = "/api/v1/samples/dynamic/{id}", .head = true},
      {.path = "/api/v1/assets/audio", .methods = {V::get, V::post}, .handler = audio_assets,
       .head = true},
      {.path = "/api/v1/assets/audio/file/{path*}", .methods = {V::get},
       .handler = audio_asset_file, .label = "/api/v1/assets/audio/{id}", .head = true},
      {.path = "/api/v1/assets/audio/{id*}", .methods = {V::delete_},
       .handler = audio_asset_delete, .label = "/api/v1/assets/audio/{id}"},
      {.path = "/api/v1/validate", .methods = {V::post}, .handler = validate},
      {.path = "/api/v1/auth/login", .methods = {V::post}, .handler = login, .open = true},
      {.path = "/api/v1/auth/logout", .methods = {V::post}, .handler = logout, .open = true},
      {.path = "/api/v1/auth/me", .methods = {V::get}, .handler = me, .open = true, .head = true},
      {.path = "/", .methods = {V::get, V::head}, .handler = ui_file, .label = "ui", .open = true,
       .api = false},
      {.path = "/{path*}", .methods = {V::get, V::head}, .handler = ui_file, .label = "ui",
       .open = true, .api = false},
  };
  return kRoutes;
}

std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

namespace {

bool matches(std::string_view pattern, std::string_view path, std::vector<std::string>& params) {
  params.clear();
  while (!pattern.empty() && !path.empty()) {
    const std::size_t pe = pattern.find('/', 1);
    const std::size_t xe = path.find('/', 1);
    const std::string_view p = pattern.substr(0, pe);
    const std::string_view x = path.substr(0, xe);
    const bool param = p.size() > 3 && p[1] == '{' && p.back() == '}';
    if (param && p[p.size() - 2] == '*') {
      // The rest of the path, as sent ("user/my-boost").
      if (x.size() < 2) {
        return false;
      }
      params.emplace_back(path.substr(1));
      return true;
    }
    if (param ? x.size() < 2 : p != x) {
      return false;
    }
    if (param) {
      params.push_back(percent_decode(x.substr(1)));
    }
    pattern = pe == std::string_view::npos ? std::string_view() : pattern.substr(pe);
    path = xe == std::string_view::npos ? std::string_view() : path.substr(xe);
  }
  return pattern.empty() && (path.empty() || path == "/");
}

}  // namespace

RouteMatch match_route(std::string_view path) {
  RouteMatch m;
  const bool api = path.rfind("/api/", 0) == 0;
  for (const auto& r : routes()) {
    if ((r.api || !api) && matches(r.path, path, m.params)) {
      m.route = &r;
      return m;
    }
  }
  m.params.clear();
  return m;
}

std::string allow_header(const Route& route) {
  std::string out;
  for (const auto m : route.methods) {
    out += (out.empty() ? "" : ", ") + std::string(http::to_string(m));
  }
  return out;
}

std::string_view route_label(const Route* route) {
  if (route == nullptr) {
    return "other";
  }
  return route->label.empty() ? route->path : route->label;
}

bool route_allows(const Route& route, http::verb method) {
  for (const auto m : route.methods) {
    if (m == method || (route.head && method == http::verb::head && m == http::verb::get)) {
      return true;
    }
  }
  return false;
}

}  // namespace skit::gateway
