// SPDX-License-Identifier: MPL-2.0
#include "routes.hpp"

namespace skit::gateway {

namespace http = boost::beast::http;

// The web UI's families (samples, assets, validate, browser login, static files) route
// themselves: ui_routes.cpp.
const std::vector<Route>& routes() {
  using V = http::verb;
  static const std::vector<Route> kRoutes = {
      {"/healthz", {V::get}},
      {"/health", {V::get}},
      {"/metrics", {V::get}},
      {"/api/v1/config", {V::get}},
      {"/api/v1/permissions", {V::get}},
      {"/api/v1/schema/nodes", {V::get}},
      {"/api/v1/schema/packets", {V::get}},
      {"/api/v1/control", {V::get}},
      {"/api/v1/sessions", {V::get, V::post}},
      {"/api/v1/sessions/{id}", {V::delete_}},
      {"/api/v1/sessions/{id}/pipeline", {V::get}},
      {"/api/v1/process", {V::post}},
      {"/api/v1/process/{id}", {V::get}},
  };
  return kRoutes;
}

namespace {
bool matches(std::string_view pattern, std::string_view path) {
  while (!pattern.empty() && !path.empty()) {
    const std::size_t pe = pattern.find('/', 1);
    const std::size_t xe = path.find('/', 1);
    const std::string_view p = pattern.substr(0, pe);
    const std::string_view x = path.substr(0, xe);
    const bool param = p.size() > 3 && p[1] == '{' && p.back() == '}';
    if (param ? x.size() < 2 : p != x) {
      return false;
    }
    pattern = pe == std::string_view::npos ? std::string_view() : pattern.substr(pe);
    path = xe == std::string_view::npos ? std::string_view() : path.substr(xe);
  }
  return pattern.empty() && (path.empty() || path == "/");
}
}  // namespace

const Route* match_route(std::string_view path) {
  for (const auto& r : routes()) {
    if (matches(r.path, path)) {
      return &r;
    }
  }
  return nullptr;
}

std::string allow_header(const Route& route) {
  std::string out;
  for (const auto m : route.methods) {
    out += (out.empty() ? "" : ", ") + std::string(http::to_string(m));
  }
  return out;
}

std::string_view route_label(const Route* route) {
  return route != nullptr ? route->path : std::string_view("other");
}

bool route_allows(const Route& route, http::verb method) {
  for (const auto m : route.methods) {
    if (m == method) {
      return true;
    }
  }
  return false;
}

}  // namespace skit::gateway
