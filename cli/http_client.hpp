// SPDX-License-Identifier: MPL-2.0
// A small blocking HTTP/1.1 and WebSocket client (Boost.Beast) for `skit client`: plain
// http:// URLs, a bearer token, JSON bodies, a streamed multipart upload, and trailers.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "skit/core/status.hpp"

namespace skit::cli {

struct ServerUrl {
  std::string host = "127.0.0.1";
  std::string port = "4545";
  std::string base;  // path prefix, without a trailing slash
};

/// "http://host[:port][/base]".
Result<ServerUrl> parse_server_url(const std::string& url);

struct HttpResult {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; trailers included
  std::string body;
};

class HttpClient {
 public:
  HttpClient(ServerUrl url, std::string token) : url_(std::move(url)), token_(std::move(token)) {}

  /// A request with an optional JSON body; the whole response.
  Result<HttpResult> request(const std::string& method, const std::string& path,
                             const std::optional<nlohmann::json>& body = std::nullopt);

  /// POST /api/v1/process: `yaml` as the config part, then `media_fd` (or none, -1) streamed
  /// as the media part; the response body is written to `out` as it arrives. `on_head`
  /// receives the status and headers before the body.
  Result<HttpResult> process(const std::string& yaml, int media_fd,
                             const std::function<Status(std::string_view)>& out,
                             const std::function<void(const HttpResult&)>& on_head);

  /// Opens the WebSocket control plane and calls `on_message` for each text message until it
  /// returns false or `cancel` is set. `first` (if not empty) is sent right after the upgrade.
  Status control(const std::string& first, const std::function<bool(const nlohmann::json&)>& on_message,
                 const std::atomic<bool>& cancel);

 private:
  ServerUrl url_;
  std::string token_;
};

}  // namespace skit::cli
