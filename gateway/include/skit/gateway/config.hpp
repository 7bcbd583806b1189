// SPDX-License-Identifier: MPL-2.0
// `skit serve` configuration: a YAML file with server, auth, limits, engine, sessions,
// security and paths sections. Every key is documented in docs/configuration.md; an unknown
// key is an error that names its line.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "skit/core/script_policy.hpp"
#include "skit/core/status.hpp"
#include "skit/supervisor/engine.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

enum class Role : std::uint8_t { kViewer, kOperator, kAdmin };
std::string_view role_name(Role role);

struct TokenConfig {
  std::string name;  // who it belongs to (logs, /api/v1/permissions)
  std::string token;
  Role role = Role::kViewer;
};

struct ServerConfig {
  // server
  std::string listen = "127.0.0.1:4545";
  std::string grpc_listen = "127.0.0.1:4546";  // empty: no gRPC
  bool tls = false;           // HTTPS/WSS on `listen` with cert_path + key_path (PEM)
  std::string cert_path;      // read at start and again on SIGHUP
  std::string key_path;
  std::string grpc_tls_cert;  // PEM certificate chain; with grpc_tls_key: gRPC over TLS
  std::string grpc_tls_key;   // PEM private key
  bool allow_insecure_non_loopback = false;    // listen beyond loopback without auth
  std::vector<std::string> allowed_origins = {"http://localhost:*", "https://localhost:*",
                                              "http://127.0.0.1:*", "https://127.0.0.1:*"};
  std::string log_format = "auto";  // auto (text on a terminal, JSON otherwise), text, json
  std::string base_path;  // "/skit": everything also answered under this prefix (a proxy's)
  // auth
  std::vector<TokenConfig> tokens;  // empty: no authentication (loopback only by default)
  // limits
  std::uint64_t max_body_bytes = 512ULL << 20;
  std::uint64_t max_config_bytes = 1ULL << 20;
  std::uint32_t max_header_bytes = 16 * 1024;
  std::uint32_t max_connections = 256;
  std::chrono::milliseconds request_timeout{10 * 60 * 1000};
  // gRPC long-lived streams (WatchEvents, Process, reflection, health Watch): more are refused
  // with RESOURCE_EXHAUSTED; unary calls never count.
  std::size_t grpc_streams_per_connection = 32;
  std::size_t grpc_streams_per_token = 128;
  std::size_t grpc_max_streams = 1024;
  // gRPC connections: the server pings one that has been silent this long and closes it
  // when the ping is not answered within the timeout (0: no pings); a connection without
  // calls for grpc_idle_timeout is closed (GOAWAY; clients reconnect on their next call).
  std::chrono::milliseconds grpc_keepalive{60 * 1000};
  std::chrono::milliseconds grpc_keepalive_timeout{20 * 1000};
  std::chrono::milliseconds grpc_idle_timeout{30 * 60 * 1000};
  // engine + security + paths
  supervisor::EngineConfig engine;
  // sessions: dynamic sessions (worker_executable, sandbox and paths are filled in by
  // `skit serve` from the engine's)
  supervisor::SessionConfig sessions;
  std::string samples_dir = "samples/pipelines";
  std::string audio_dir = "samples/audio";  // the audio asset library (user uploads in user/)
  std::string ui_dir;  // the built web UI; empty: the installed one, else ui/dist
  // script: core::script defaults, the fetch() allow-list and named secrets (docs/scripts.md);
  // handed to workers in the environment (ScriptPolicy::kEnvVar) by `skit serve`.
  ScriptPolicy script;
};

/// The full default configuration as a commented YAML document (`skit config default`).
std::string_view default_config_yaml();

/// Parses a config document; all errors at once, each with its line.
Result<ServerConfig> parse_config(std::string_view yaml, std::vector<Status>* errors = nullptr);
Result<ServerConfig> load_config(const std::string& path, std::vector<Status>* errors = nullptr);

}  // namespace skit::gateway
