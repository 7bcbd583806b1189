// SPDX-License-Identifier: MPL-2.0
// The route table: every HTTP route the gateway serves, as a template
// ("/api/v1/sessions/{id}", "/api/v1/samples/oneshot/{id*}") with the methods it accepts and
// the handler of its family. Matching a request path gives the route, its parameters, the
// `route` label of the request metrics (so that unknown or random paths cannot create series:
// they are all "other") and the methods for a 405's Allow header.
#pragma once

#include <ostream>  // before Beast: verb.hpp streams without including it

#include <boost/beast/http/verb.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "http_reply.hpp"

namespace skit::gateway {

struct HttpContext;
class HttpExchange;

/// Answers a request of its route (the method is one the route accepts).
using RouteHandler = HttpReply (*)(HttpContext& context, HttpExchange& exchange);

struct Route {
  /// A "{name}" segment matches one non-empty segment (percent-decoded); a last "{name*}" the
  /// rest of the path (one or more segments, as sent).
  std::string_view path;
  std::vector<boost::beast::http::verb> methods;
  RouteHandler handler = nullptr;
  std::string_view label = {};  // the metrics label; empty: `path`
  bool open = false;            // served without a token (health, the UI's files, login)
  bool head = false;            // HEAD is answered as GET without the body (not in Allow)
  bool api = true;              // false: never matches a path under /api/ (the UI's files)
};

struct RouteMatch {
  const Route* route = nullptr;  // null: no route
  std::vector<std::string> params;
};

/// Every route, in the order they are matched.
const std::vector<Route>& routes();

/// The first route whose template matches `path` (no query string).
RouteMatch match_route(std::string_view path);

/// "GET, POST" for an Allow header.
std::string allow_header(const Route& route);

/// The `route` label of a request: its route's label, or "other".
std::string_view route_label(const Route* route);

/// Whether `route` accepts `method` (HEAD too where `head` is set and GET is accepted).
bool route_allows(const Route& route, boost::beast::http::verb method);

/// "%2F" -> "/"; malformed escapes stay as they are.
std::string percent_decode(std::string_view in);

}  // namespace skit::gateway
