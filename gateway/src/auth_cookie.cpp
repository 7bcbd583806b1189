// SPDX-License-Identifier: MPL-2.0
#include "auth_cookie.hpp"

#include <algorithm>
#include <random>

#include "authorization.hpp"

namespace skit::gateway {

std::string cookie_value(std::string_view header, std::string_view name) {
  std::size_t at = 0;
  while (at < header.size()) {
    std::size_t end = header.find(';', at);
    if (end == std::string_view::npos)
      end = header.size();
    std::string_view pair = header.substr(at, end - at);
    while (!pair.empty() && pair.front() == ' ')
      pair.remove_prefix(1);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      std::string_view value = pair.substr(eq + 1);
      while (!value.empty() && value.back() == ' ')
        value.remove_suffix(1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return std::string(value);
    }
    at = end + 1;
  }
  return {};
}

std::string BrowserSessions::create(const TokenConfig& token) {
  std::random_device rd;  // /dev/urandom on Linux (libstdc++)
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(64);
  for (int i = 0; i < 8; ++i) {
    std::uint32_t v = rd();
    for (int k = 0; k < 8; ++k) {
      id.push_back(kHex[v & 0xF]);
      v >>= 4;
    }
  }
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(sessions_, [&](const auto& kv) { return kv.second.expires <= now; });
  if (sessions_.size() >= kMaxSessions) {
    auto oldest = std::min_element(
        sessions_.begin(), sessions_.end(),
        [](const auto& a, const auto& b) { return a.second.serial < b.second.serial; });
    sessions_.erase(oldest);
  }
  sessions_[id] = Entry{token.name, token.role, now + kLifetime, ++serial_};
  return id;
}

const TokenConfig* BrowserSessions::find(const ServerConfig& config, std::string_view id) {
  if (id.size() != 64) {
    return nullptr;
  }
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    return nullptr;
  }
  if (it->second.expires <= std::chrono::steady_clock::now()) {
    sessions_.erase(it);
    return nullptr;
  }
  for (const auto& t : config.tokens) {
    if (t.name == it->second.token_name && t.role == it->second.role) {
      return &t;
    }
  }
  return nullptr;
}

void BrowserSessions::remove(std::string_view id) {
  std::lock_guard lock(mutex_);
  if (const auto it = sessions_.find(id); it != sessions_.end()) {
    sessions_.erase(it);
  }
}

std::size_t BrowserSessions::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

Identity identify(const ServerConfig& config, BrowserSessions& browsers,
                  std::string_view authorization, std::string_view cookie_header) {
  if (const auto token = bearer_token(authorization)) {
    return {find_token(config.tokens, *token), false};
  }
  if (!authorization.empty()) {
    return {};
  }
  const std::string id = cookie_value(cookie_header, kSessionCookie);
  if (id.empty()) {
    return {};
  }
  return {browsers.find(config, id), true};
}

std::string session_cookie(std::string_view id, bool secure) {
  // `Secure` only over server.tls: over plain HTTP a browser would drop the cookie (behind a
  // TLS proxy, the proxy may add it).
  std::string c =
      std::string(kSessionCookie) + "=" + std::string(id) + "; Path=/; HttpOnly; SameSite=Strict";
  if (secure) {
    c += "; Secure";
  }
  c += id.empty() ? "; Max-Age=0"
                  : "; Max-Age=" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                      BrowserSessions::kLifetime)
                                                      .count());
  return c;
}

}  // namespace skit::gateway
