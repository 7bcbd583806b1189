// SPDX-License-Identifier: MPL-2.0
// The endpoints the web UI needs beside the session and oneshot API, as StreamKit has them:
// samples (oneshot, dynamic, saving and deleting user pipelines and fragments), the audio
// asset library, POST /api/v1/validate, browser login (auth/login, logout, me) and the
// built UI itself at `/`. http_server.cpp hands a request here after the Origin guard and
// the authentication; each route checks the role's permission itself.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "auth_cookie.hpp"
#include "http_reply.hpp"
#include "multipart.hpp"
#include "skit/gateway/config.hpp"
#include "skit/supervisor/engine.hpp"
#include "static_files.hpp"

namespace skit::gateway {

struct UiRequest {
  std::string_view method;  // "GET", "POST", "DELETE", ...
  std::string_view path;    // without the query
  std::string_view query;
  Role role = Role::kAdmin;
  std::string_view authorization;  // the Authorization header
  std::string_view cookie;         // the Cookie header
  std::string_view content_type;
  std::optional<std::uint64_t> content_length;
  /// The request body, streamed (0 at its end). Never called for a request that has none.
  MultipartReader::Pull pull;
};

class UiRoutes {
 public:
  UiRoutes(const ServerConfig& config, supervisor::Engine& engine, BrowserSessions& browsers);

  /// The paths answered here: /api/v1/samples/*, /api/v1/assets/*, /api/v1/validate,
  /// /api/v1/auth/*, and every path outside /api/ and /metrics, /healthz (the UI's files).
  static bool owns(std::string_view path);
  /// Paths open without a token: the UI's files (the login form must load) and
  /// /api/v1/auth/* (which identify the caller themselves).
  static bool open_without_token(std::string_view path);
  /// The page that sent the request claims this server's own origin (Origin is http(s):// plus
  /// the Host it asked for): the web UI opened at whatever name the server has. The Origin
  /// guard lets it through only with authentication on: without tokens, a DNS-rebound name
  /// would pass too (its requests carry no login cookie, since cookies follow the name).
  static bool same_origin(std::string_view origin, std::string_view host);
  /// `path` without `server.base_path` ("/skit/api/v1/x" -> "/api/v1/x", "/skit" -> "/"):
  /// behind a proxy that keeps its prefix, the whole server answers under it too.
  static std::string strip_base_path(const ServerConfig& config, std::string path);
  /// The route label for metrics ("/api/v1/samples/oneshot/{id}", "ui", ...).
  static std::string route_of(std::string_view path);

  HttpReply handle(const UiRequest& req);

  [[nodiscard]] const StaticFiles& static_files() const { return static_files_; }

 private:
  HttpReply samples(const UiRequest& req, std::string_view rest, bool dynamic);
  HttpReply save_sample(const UiRequest& req);
  HttpReply delete_sample(const UiRequest& req, std::string id);
  HttpReply assets(const UiRequest& req, std::string_view rest);
  HttpReply upload_asset(const UiRequest& req);
  HttpReply validate(const UiRequest& req);
  HttpReply login(const UiRequest& req);
  HttpReply logout(const UiRequest& req);
  HttpReply me(const UiRequest& req);

  /// The whole body as text, at most `limit` bytes (413 beyond it, in `error`).
  std::optional<std::string> read_body(const UiRequest& req, std::uint64_t limit, HttpReply& error);

  [[nodiscard]] std::filesystem::path samples_root() const;
  [[nodiscard]] std::filesystem::path audio_root() const;

  const ServerConfig& config_;
  supervisor::Engine& engine_;
  BrowserSessions& browsers_;
  StaticFiles static_files_;
};

}  // namespace skit::gateway
