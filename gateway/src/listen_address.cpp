// SPDX-License-Identifier: MPL-2.0
#include "listen_address.hpp"

namespace skit::gateway {

std::string host_of(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

Result<Endpoint> parse_endpoint(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Status(ErrorCode::kInvalidArgument, "listen address must be HOST:PORT, got '" + listen + "'");
  }
  Endpoint e;
  e.host = host_of(listen);
  if (e.host == "localhost") {
    e.host = "127.0.0.1";
  }
  try {
    e.port = static_cast<unsigned short>(std::stoi(listen.substr(colon + 1)));
  } catch (const std::exception&) {
    return Status(ErrorCode::kInvalidArgument, "bad port in '" + listen + "'");
  }
  return e;
}

bool is_loopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Status check_loopback_policy(const ServerConfig& config, const std::string& listen,
                             std::string_view what) {
  if (config.tokens.empty() && !config.allow_insecure_non_loopback && !is_loopback(host_of(listen))) {
    return Status(ErrorCode::kInvalidArgument,
                  "refusing to " + std::string(what) + " " + listen +
                      " without authentication: listen on 127.0.0.1, configure auth.tokens, or "
                      "set server.allow_insecure_non_loopback: true");
  }
  return Status::ok();
}

}  // namespace skit::gateway
