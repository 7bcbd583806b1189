// SPDX-License-Identifier: MPL-2.0
// Listen addresses (server.listen, server.grpc_listen) and the policy that keeps a server
// without authentication on loopback.
#pragma once

#include <string>
#include <string_view>

#include "skit/core/status.hpp"
#include "skit/gateway/config.hpp"

namespace skit::gateway {

struct Endpoint {
  std::string host;  // without IPv6 brackets; "localhost" as 127.0.0.1
  unsigned short port = 0;
};

/// "HOST:PORT" (HOST may be "[::1]"); the port must be a number.
Result<Endpoint> parse_endpoint(const std::string& listen);

/// The host part of "HOST:PORT", without IPv6 brackets.
std::string host_of(const std::string& listen);

/// 127.0.0.0/8, ::1 and localhost.
bool is_loopback(std::string_view host);

/// Without auth tokens a server listens on loopback only, unless
/// server.allow_insecure_non_loopback says otherwise. `what`: "listen on", "serve gRPC on".
Status check_loopback_policy(const ServerConfig& config, const std::string& listen,
                             std::string_view what);

}  // namespace skit::gateway
