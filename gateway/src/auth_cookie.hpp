// SPDX-License-Identifier: MPL-2.0
// Browser login: POST /api/v1/auth/login trades one of the configured tokens for a random
// session id in an HttpOnly, SameSite=Strict cookie, so that the web UI never keeps the token
// in JavaScript. REST requests and the WebSocket upgrade accept that cookie as they accept a
// bearer token (both name a configured token, whose role applies).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "skit/gateway/config.hpp"

namespace skit::gateway {

inline constexpr std::string_view kSessionCookie = "skit_session";

/// The value of cookie `name` in a Cookie header ("a=1; skit_session=x"), or empty.
std::string cookie_value(std::string_view cookie_header, std::string_view name);

/// Logged-in browsers: session id -> the token it was created from (by name, so a token
/// removed from the config no longer logs anyone in after a restart). Bounded: past
/// kMaxSessions the oldest login is dropped.
class BrowserSessions {
 public:
  static constexpr std::size_t kMaxSessions = 4096;
  static constexpr std::chrono::hours kLifetime{24 * 7};

  /// A new session for `token`; returns its id (64 hex characters from the system's CSPRNG).
  std::string create(const TokenConfig& token);
  /// The token a live session id was created from (looked up in `config` again).
  const TokenConfig* find(const ServerConfig& config, std::string_view id);
  void remove(std::string_view id);
  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    std::string token_name;
    Role role = Role::kViewer;
    std::chrono::steady_clock::time_point expires;
    std::uint64_t serial = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> sessions_;
  std::uint64_t serial_ = 0;
};

/// Who sent a request: a bearer token (`Authorization: Bearer ...`) or the login cookie.
struct Identity {
  const TokenConfig* token = nullptr;  // null: neither (or an unknown one)
  bool via_cookie = false;
};
Identity identify(const ServerConfig& config, BrowserSessions& browsers,
                  std::string_view authorization, std::string_view cookie_header);

/// The Set-Cookie value that logs a browser in (`id`) or out (empty `id`).
std::string session_cookie(std::string_view id, bool secure);

}  // namespace skit::gateway
