// SPDX-License-Identifier: MPL-2.0
// The HTTP routes the gateway serves, as templates ("/api/v1/sessions/{id}") with the methods
// each accepts. Matching a request path gives the template (the `route` label of the request
// metrics, so that unknown or random paths cannot create series: they are all "other") and the
// methods for a 405's Allow header.
#pragma once

#include <ostream>  // before Beast: verb.hpp streams without including it

#include <boost/beast/http/verb.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace skit::gateway {

struct Route {
  std::string_view path;  // template: a "{name}" segment matches one non-empty segment
  std::vector<boost::beast::http::verb> methods;
};

/// Every route, in the order they are matched.
const std::vector<Route>& routes();

/// The route whose template matches `path` (no query string), or null.
const Route* match_route(std::string_view path);

/// "GET, POST" for an Allow header.
std::string allow_header(const Route& route);

/// The `route` label of a request: its template, or "other".
std::string_view route_label(const Route* route);

/// Whether `route` accepts `method`.
bool route_allows(const Route& route, boost::beast::http::verb method);

}  // namespace skit::gateway
