// SPDX-License-Identifier: MPL-2.0
// A complete HTTP answer as the route files outside http_server.cpp produce it (the router
// turns it into its own reply type and sends it with the common headers).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace skit::gateway {

struct HttpReply {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpReply text(unsigned status, std::string message) {
    return HttpReply{status, std::move(message) + "\n", "text/plain; charset=utf-8", {}};
  }
  static HttpReply json(std::string body, unsigned status = 200) {
    return HttpReply{status, std::move(body), "application/json", {}};
  }
};

}  // namespace skit::gateway
