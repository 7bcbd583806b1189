// SPDX-License-Identifier: MPL-2.0
#include "skit/gateway/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace skit::gateway {

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kViewer: return "viewer";
    case Role::kOperator: return "operator";
    case Role::kAdmin: return "admin";
  }
  return "viewer";
}

namespace {

struct Parser {
  std::vector<Status> errors;

  static SourceLocation place(const YAML::Node& at) {
    const auto mark = at.Mark();
    return SourceLocation{"", "", mark.is_null() ? 0 : mark.line + 1,
                          mark.is_null() ? 0 : mark.column + 1};
  }

  void error(const YAML::Node& at, std::string message) {
    errors.emplace_back(ErrorCode::kInvalidArgument, std::move(message), place(at));
  }

  using Handler = std::function<void(const YAML::Node& key, const YAML::Node& value)>;

  /// Walks a mapping, dispatching known keys and reporting unknown ones.
  void section(const YAML::Node& node, const std::string& name,
               const std::map<std::string, Handler>& handlers) {
    if (!node.IsMap()) {
      error(node, "'" + name + "' must be a mapping");
      return;
    }
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      auto it = handlers.find(key);
      if (it == handlers.end()) {
        std::string known;
        for (const auto& [k, h] : handlers) {
          known += (known.empty() ? "" : ", ") + k;
        }
        error(kv.first, "unknown key '" + (name.empty() ? key : name + "." + key) +
                            "' (known: " + known + ")");
        continue;
      }
      it->second(kv.first, kv.second);
    }
  }

  template <typename T>
  bool scalar(const YAML::Node& v, const std::string& key, T& out) {
    try {
      out = v.as<T>();
      return true;
    } catch (const YAML::Exception&) {
      error(v, "'" + key + "' has the wrong type");
      return false;
    }
  }

  bool strings(const YAML::Node& v, const std::string& key, std::vector<std::string>& out) {
    if (!v.IsSequence()) {
      error(v, "'" + key + "' must be a list of strings");
      return false;
    }
    out.clear();
    for (const auto& item : v) {
      std::string s;
      if (scalar(item, key, s)) {
        out.push_back(s);
      }
    }
    return true;
  }
};

}  // namespace

std::string_view default_config_yaml() {
  // Kept equal to a default-constructed ServerConfig by a unit test (config_test.cpp), so that
  // it cannot drift from what the server does without a file.
  return R"(# skit serve configuration: every key with its default (docs/configuration.md).
server:
  listen: 127.0.0.1:4545          # HTTP address; port 0 picks a free port (printed on stderr)
  grpc_listen: 127.0.0.1:4546     # gRPC address (docs/grpc.md); "" disables gRPC
  allow_insecure_non_loopback: false  # listen beyond loopback without auth.tokens
  tls: false                      # HTTPS and WSS on server.listen (browsers allow the microphone
  cert_path: ""                   #   only on secure origins); PEM certificate chain and key,
  key_path: ""                    #   read again on SIGHUP (docs/configuration.md#tls)
  log_format: auto                # auto: text on a terminal, JSON lines otherwise; text; json
  cors:
    # A mutating /api request or a WebSocket upgrade from another Origin gets 403.
    allowed_origins: ["http://localhost:*", "https://localhost:*", "http://127.0.0.1:*", "https://127.0.0.1:*"]
auth:
  tokens: []                      # [{name, token (16+ characters), role: admin|operator|viewer}]
limits:
  max_body_bytes: 536870912       # upload size limit (413 beyond it)
  max_config_bytes: 1048576       # size limit of the 'config' part and of session YAML
  max_header_bytes: 16384         # request header limit (431 beyond it)
  max_connections: 256            # concurrent HTTP connections (503 beyond it)
  max_concurrent_oneshots: 16     # running oneshot pipelines (503 + Retry-After beyond it)
  request_timeout_ms: 600000      # a oneshot pipeline running longer fails (504)
engine:
  placement: grouped              # grouped: one worker per pipeline; per-node: one per node
  sandbox: true                   # seccomp allow-list, rlimits, no new privileges for workers
  worker_memory_bytes: 4294967296 # RLIMIT_AS of each worker
  ring_depth: 32                  # packets buffered per connection
sessions:                         # dynamic sessions (docs/sessions.md)
  placement: grouped              # workers of a session's initial nodes: grouped | per-node
  ring_capacity: 16               # packets per connection (16 x 20 ms = 320 ms of audio)
  max_sessions: 64                # 429 (gRPC RESOURCE_EXHAUSTED) beyond it
  max_nodes_per_session: 64
  idle_timeout_seconds: 0         # destroy sessions idle this long; 0 = never
  max_restarts: 5                 # crashes within restart_window_seconds before nodes fail
  restart_window_seconds: 60
  backoff_initial_ms: 100         # restart delay, doubling up to backoff_max_ms
  backoff_max_ms: 5000
  worker_memory_limit_mb: 1024    # resident memory a session worker may use; 0 = no watch
  event_queue_capacity: 1024      # events queued per subscriber before the oldest are dropped
  heartbeat_timeout_ms: 3000      # a worker silent this long is killed as hung
plugins:                          # native plugins (docs/plugins.md)
  directory: .plugins             # <directory>/native/*.so load at start (relative: base_dir)
  allow_http_management: false    # POST/DELETE /api/v1/plugins and gRPC for admin tokens
  native_call_timeout_secs: 0     # one plugin call longer than this fails its node; 0: 30 s
security:
  allowed_file_paths: ["samples/**"]  # files nodes may read (globs, relative to base_dir)
  allowed_write_paths: []             # files nodes may write; empty: writing denied
  # URLs transport::http::fetcher may download and SRT listeners transport::srt::caller may
  # call: patterns ("https://media.example.com/*", "srt://encoder.example:9000") or
  # {url, allow_private}; loopback/private/link-local addresses need the entry to name them
  # or allow_private. Empty: both are refused
  allowed_fetch_urls: []
transports:
  # Ports transport::rtmp::listen / transport::srt::listen may use ("19000-19099"); empty: none
  listen_ports: ""
script:                           # core::script nodes (docs/scripts.md)
  default_timeout_ms: 100         # process() time limit of nodes that set no timeout_ms
  default_memory_limit_mb: 64     # heap limit of nodes that set no memory_limit_mb
  fetch_max_inflight: 16          # fetch() requests in flight per worker
  fetch_timeout_ms: 10000         # one fetch(), connect to last byte
  fetch_max_response_bytes: 8388608
  # [{url: "https://api.example.com/v1/*", methods: [GET, POST], allow_private: false}];
  # empty: fetch() is refused
  global_fetch_allowlist: []
  secrets: {}                     # NAME: {env: VAR, type, description, allowed_fetch_urls: [...]}
paths:
  base_dir: .                     # where relative paths resolve: the working directory
  samples_dir: samples/pipelines  # GET /api/v1/samples/oneshot lists samples_dir/oneshot/*.yml
  ui_dir: ""                      # a built web UI to serve at /; "": none
)";
}

Result<ServerConfig> parse_config(std::string_view yaml, std::vector<Status>* all_errors) {
  ServerConfig cfg;
  Parser p;
  // A URL allow-list: entries are a URL pattern, or {url, methods?, allow_private?}.
  const auto url_rules = [&p](const YAML::Node& x, const std::string& key, bool with_methods,
                              std::vector<UrlRule>& out) {
    if (!x.IsSequence()) {
      p.error(x, "'" + key + "' must be a list of URL patterns or {url, " +
                     (with_methods ? "methods, " : "") + "allow_private}");
      return;
    }
    out.clear();
    for (const auto& item : x) {
      UrlRule rule;
      if (item.IsScalar()) {
        rule.url = item.Scalar();
      } else {
        std::map<std::string, std::function<void(const YAML::Node&, const YAML::Node&)>> fields = {
            {"url", [&](const YAML::Node&, const YAML::Node& y) { p.scalar(y, key + "[].url", rule.url); }},
            {"allow_private", [&](const YAML::Node&, const YAML::Node& y) {
               p.scalar(y, key + "[].allow_private", rule.allow_private); }},
        };
        if (with_methods) {
          fields["methods"] = [&](const YAML::Node&, const YAML::Node& y) {
            p.strings(y, key + "[].methods", rule.methods);
          };
        }
        p.section(item, key + "[]", fields);
      }
      if (rule.url.empty()) {
        p.error(item, "a " + key + " entry needs a url");
        continue;
      }
      const std::span<const std::string_view> schemes =
          key == kFetchPolicyKey ? std::span<const std::string_view>(kFetchSchemes)
                                 : std::span<const std::string_view>(kHttpSchemes);
      if (auto checked = UrlPolicy::make({rule}, key, schemes); !checked) {
        p.error(item, key + ": " + checked.status().message());
        continue;
      }
      out.push_back(std::move(rule));
    }
  };
  SourceLocation listen_at;       // where server.listen / grpc_listen were given, for the
  SourceLocation grpc_listen_at;  // checks that need the whole file
  SourceLocation tls_at;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    p.errors.emplace_back(ErrorCode::kInvalidArgument, "YAML syntax error: " + e.msg,
                          SourceLocation{"", "", e.mark.line + 1, e.mark.column + 1});
  }
  if (p.errors.empty() && !root.IsNull()) {
    auto u64 = [&](const char* key, std::uint64_t& out) {
      return [&p, key, &out](const YAML::Node&, const YAML::Node& v) { p.scalar(v, key, out); };
    };
    p.section(root, "", {
        {"server", [&](const YAML::Node&, const YAML::Node& v) {
           p.section(v, "server", {
               {"listen", [&](const YAML::Node&, const YAML::Node& x) {
                  listen_at = p.place(x);
                  p.scalar(x, "server.listen", cfg.listen); }},
               {"grpc_listen", [&](const YAML::Node&, const YAML::Node& x) {
                  grpc_listen_at = p.place(x);
                  p.scalar(x, "server.grpc_listen", cfg.grpc_listen); }},
               {"tls", [&](const YAML::Node&, const YAML::Node& x) {
                  tls_at = p.place(x);
                  p.scalar(x, "server.tls", cfg.tls); }},
               {"cert_path", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "server.cert_path", cfg.cert_path); }},
               {"key_path", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "server.key_path", cfg.key_path); }},
               {"grpc_tls_cert", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "server.grpc_tls_cert", cfg.grpc_tls_cert); }},
               {"grpc_tls_key", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "server.grpc_tls_key", cfg.grpc_tls_key); }},
               {"base_path", [&](const YAML::Node&, const YAML::Node& x) {
                  if (!p.scalar(x, "server.base_path", cfg.base_path)) return;
                  while (cfg.base_path.size() > 1 && cfg.base_path.back() == '/') cfg.base_path.pop_back();
                  if (cfg.base_path == "/") cfg.base_path.clear();
                  if (!cfg.base_path.empty() &&
                      (cfg.base_path.front() != '/' || cfg.base_path.find_first_of("?#% \"") != std::string::npos)) {
                    p.error(x, "server.base_path must be a path like /skit (got '" + cfg.base_path + "')");
                  } }},
               {"allow_insecure_non_loopback", [&](const YAML::Node&, const YAML::Node& x) {
                  p.scalar(x, "server.allow_insecure_non_loopback", cfg.allow_insecure_non_loopback); }},
               {"log_format", [&](const YAML::Node&, const YAML::Node& x) {
                  if (p.scalar(x, "server.log_format", cfg.log_format) && cfg.log_format != "auto" &&
                      cfg.log_format != "text" && cfg.log_format != "json") {
                    p.error(x, "server.log_format must be auto, text or json");
                  } }},
               {"cors", [&](const YAML::Node&, const YAML::Node& x) {
                  p.section(x, "server.cors", {
                      {"allowed_origins", [&](const YAML::Node&, const YAML::Node& y) {
                         p.strings(y, "server.cors.allowed_origins", cfg.allowed_origins); }}}); }},
           });
         }},
        {"auth", [&](const YAML::Node&, const YAML::Node& v) {
           p.section(v, "auth", {
               {"tokens", [&](const YAML::Node&, const YAML::Node& list) {
                  if (!list.IsSequence()) {
                    p.error(list, "auth.tokens must be a list of {name, token, role}");
                    return;
                  }
                  for (const auto& item : list) {
                    TokenConfig t;
                    std::string role = "viewer";
                    p.section(item, "auth.tokens[]", {
                        {"name", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "name", t.name); }},
                        {"token", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "token", t.token); }},
                        {"role", [&](const YAML::Node&, const YAML::Node& x) {
                           p.scalar(x, "role", role);
                           if (role == "admin") t.role = Role::kAdmin;
                           else if (role == "operator") t.role = Role::kOperator;
                           else if (role == "viewer") t.role = Role::kViewer;
                           else p.error(x, "role must be admin, operator or viewer (got '" + role + "')"); }},
                    });
                    if (t.token.size() < 16) {
                      p.error(item, "auth token '" + t.name + "' must be at least 16 characters");
                    }
                    cfg.tokens.push_back(t);
                  }
                }}});
         }},
        {"limits", [&](const YAML::Node&, const YAML::Node& v) {
           p.section(v, "limits", {
               {"max_body_bytes", u64("limits.max_body_bytes", cfg.max_body_bytes)},
               {"max_config_bytes", u64("limits.max_config_bytes", cfg.max_config_bytes)},
               {"max_header_bytes", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "limits.max_header_bytes", cfg.max_header_bytes); }},
               {"max_connections", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "limits.max_connections", cfg.max_connections); }},
               {"max_concurrent_oneshots", [&](const YAML::Node&, const YAML::Node& x) {
                  p.scalar(x, "limits.max_concurrent_oneshots", cfg.engine.max_concurrent_oneshots); }},
               {"grpc_streams_per_connection", [&](const YAML::Node&, const YAML::Node& x) {
                  p.scalar(x, "limits.grpc_streams_per_connection", cfg.grpc_streams_per_connection); }},
               {"grpc_streams_per_token", [&](const YAML::Node&, const YAML::Node& x) {
                  p.scalar(x, "limits.grpc_streams_per_token", cfg.grpc_streams_per_token); }},
               {"grpc_max_streams", [&](const YAML::Node&, const YAML::Node& x) {
                  p.scalar(x, "limits.grpc_max_streams", cfg.grpc_max_streams); }},
               {"grpc_keepalive_ms", [&](const YAML::Node&, const YAML::Node& x) {
                  std::uint64_t ms = 0;
                  if (p.scalar(x, "limits.grpc_keepalive_ms", ms)) cfg.grpc_keepalive = std::chrono::milliseconds(ms); }},
               {"grpc_keepalive_timeout_ms", [&](const YAML::Node&, const YAML::Node& x) {
                  std::uint64_t ms = 0;
                  if (p.scalar(x, "limits.grpc_keepalive_timeout_ms", ms)) cfg.grpc_keepalive_timeout = std::chrono::milliseconds(ms); }},
               {"grpc_idle_timeout_ms", [&](const YAML::Node&, const YAML::Node& x) {
                  std::uint64_t ms = 0;
                  if (p.scalar(x, "limits.grpc_idle_timeout_ms", ms)) cfg.grpc_idle_timeout = std::chrono::milliseconds(ms); }},
               {"request_timeout_ms", [&](const YAML::Node&, const YAML::Node& x) {
                  std::uint64_t ms = 0;
                  if (p.scalar(x, "limits.request_timeout_ms", ms)) {
                    cfg.request_timeout = std::chrono::milliseconds(ms);
                    cfg.engine.oneshot_timeout = cfg.request_timeout;
                  } }},
           });
         }},
        {"engine", [&](const YAML::Node&, const YAML::Node& v) {
           p.section(v, "engine", {
               {"placement", [&](const YAML::Node&, const YAML::Node& x) {
                  std::string s;
                  if (p.scalar(x, "engine.placement", s)) {
                    auto pl = supervisor::parse_placement(s);
                    if (pl) cfg.engine.placement = *pl; else p.error(x, pl.status().message());
                  } }},
               {"sandbox", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "engine.sandbox", cfg.engine.sandbox.enabled); }},
               {"worker_memory_bytes", [&](const YAML::Node&, const YAML::Node& x) {
                  p.scalar(x, "engine.worker_memory_bytes", cfg.engine.sandbox.address_space_bytes); }},
               {"ring_depth", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "engine.ring_depth", cfg.engine.ring_capacity); }},
           });
         }},
        {"sessions", [&](const YAML::Node&, const YAML::Node& v) {
           auto& s = cfg.sessions;
           // A whole number in [min, max] (an error naming the key and the range otherwise).
           auto ranged = [&p](const char* key, std::uint64_t min, std::uint64_t max,
                              std::function<void(std::uint64_t)> set) {
             return [&p, key, min, max, set](const YAML::Node&, const YAML::Node& x) {
               std::uint64_t n = 0;
               if (!p.scalar(x, key, n)) return;
               if (n < min || n > max) {
                 p.error(x, std::string(key) + " must be between " + std::to_string(min) +
                                " and " + std::to_string(max) + " (got " + std::to_string(n) + ")");
                 return;
               }
               set(n);
             };
           };
           using std::chrono::milliseconds;
           using std::chrono::seconds;
           p.section(v, "sessions", {
               {"placement", [&](const YAML::Node&, const YAML::Node& x) {
                  std::string name;
                  if (p.scalar(x, "sessions.placement", name)) {
                    auto pl = supervisor::parse_placement(name);
                    if (pl) s.placement = *pl; else p.error(x, pl.status().message());
                  } }},
               {"ring_capacity", ranged("sessions.ring_capacity", 2, 4096,
                                        [&](std::uint64_t n) { s.ring_capacity = static_cast<std::uint32_t>(n); })},
               {"max_sessions", ranged("sessions.max_sessions", 1, 100000,
                                       [&](std::uint64_t n) { s.max_sessions = n; })},
               {"max_nodes_per_session", ranged("sessions.max_nodes_per_session", 1, 10000,
                                                [&](std::uint64_t n) { s.max_nodes_per_session = n; })},
               {"idle_timeout_seconds", ranged("sessions.idle_timeout_seconds", 0, 365ULL * 24 * 3600,
                                               [&](std::uint64_t n) { s.idle_timeout = seconds(n); })},
               {"max_restarts", ranged("sessions.max_restarts", 0, 1000,
                                       [&](std::uint64_t n) { s.max_restarts = static_cast<std::uint32_t>(n); })},
               {"restart_window_seconds", ranged("sessions.restart_window_seconds", 1, 24 * 3600,
                                                 [&](std::uint64_t n) { s.restart_window = seconds(n); })},
               {"backoff_initial_ms", ranged("sessions.backoff_initial_ms", 1, 3600 * 1000,
                                             [&](std::uint64_t n) { s.backoff_initial = milliseconds(n); })},
               {"backoff_max_ms", ranged("sessions.backoff_max_ms", 1, 3600 * 1000,
                                         [&](std::uint64_t n) { s.backoff_max = milliseconds(n); })},
               {"worker_memory_limit_mb", ranged("sessions.worker_memory_limit_mb", 0, 1ULL << 30,
                                                 [&](std::uint64_t n) { s.worker_memory_limit_bytes = n << 20; })},
               {"event_queue_capacity", ranged("sessions.event_queue_capacity", 1, 1ULL << 20,
                                               [&](std::uint64_t n) { s.event_queue_capacity = n; })},
               {"heartbeat_timeout_ms", ranged("sessions.heartbeat_timeout_ms", 500, 3600 * 1000,
                                               [&](std::uint64_t n) { s.heartbeat_timeout = milliseconds(n); })},
           });
           if (s.backoff_initial > s.backoff_max) {
             p.error(v, "sessions.backoff_initial_ms (" + std::to_string(s.backoff_initial.count()) +
                            ") must not exceed sessions.backoff_max_ms (" +
                            std::to_string(s.backoff_max.count()) + ")");
           }
         }},
        {"transports", [&](const YAML::Node&, const YAML::Node& v) {
           p.section(v, "transports", {
               {"listen_ports", [&](const YAML::Node&, const YAML::Node& x) {
                  // "19000-19099", or a single port; empty: no listening transport.
                  std::string range;
                  if (!p.scalar(x, "transports.listen_ports", range)) return;
                  int first = 0, last = 0;
                  char dash = 0, extra = 0;
                  const int n = std::sscanf(range.c_str(), "%d%c%d%c", &first, &dash, &last, &extra);
                  if (range.empty()) {
                    first = last = 0;
                  } else if (n == 1) {
                    last = first;
                  } else if (n != 3 || dash != '-') {
                    p.error(x, "transports.listen_ports must be a port or a range FIRST-LAST, not '" + range + "'");
                    return;
                  }
                  if (!range.empty() && (first < 1024 || last > 65535 || first > last)) {
                    p.error(x, "transports.listen_ports must lie within 1024-65535, first <= last ('" + range + "')");
                    return;
                  }
                  cfg.engine.listen_port_first = first;
                  cfg.engine.listen_port_last = last;
                }},
           });
         }},
        {"plugins", [&](const YAML::Node&, const YAML::Node& v) {
           p.section(v, "plugins", {
               {"directory", [&](const YAML::Node&, const YAML::Node& x) {
                  std::string s;
                  if (p.scalar(x, "plugins.directory", s)) cfg.engine.plugins_dir = s; }},
               {"allow_http_management", [&](const YAML::Node&, const YAML::Node& x) {
                  p.scalar(x, "plugins.allow_http_management", cfg.engine.allow_plugin_management); }},
               {"native_call_timeout_secs", [&](const YAML::Node&, const YAML::Node& x) {
                  std::uint64_t secs = 0;
                  if (p.scalar(x, "plugins.native_call_timeout_secs", secs)) {
                    if (secs > 3600) {
                      p.error(x, "plugins.native_call_timeout_secs must be at most 3600 (got " +
                                     std::to_string(secs) + ")");
                    } else {
                      cfg.engine.plugin_call_timeout = std::chrono::seconds(secs);
                    }
                  } }},
           });
         }},
        {"security", [&](const YAML::Node&, const YAML::Node& v) {
           p.section(v, "security", {
               {"allowed_file_paths", [&](const YAML::Node&, const YAML::Node& x) {
                  p.strings(x, "security.allowed_file_paths", cfg.engine.allowed_file_paths); }},
               {"allowed_write_paths", [&](const YAML::Node&, const YAML::Node& x) {
                  p.strings(x, "security.allowed_write_paths", cfg.engine.allowed_write_paths); }},
               {"allowed_fetch_urls", [&](const YAML::Node&, const YAML::Node& x) {
                  url_rules(x, "security.allowed_fetch_urls", /*with_methods=*/false,
                            cfg.engine.allowed_fetch_urls); }},
           });
         }},
        {"script", [&](const YAML::Node&, const YAML::Node& v) {
           auto& sc = cfg.script;
           const auto u32 = [&](const char* key, std::uint64_t lo, std::uint64_t hi, std::uint32_t& out) {
             return [&p, key, lo, hi, &out](const YAML::Node&, const YAML::Node& x) {
               std::uint64_t n = 0;
               if (!p.scalar(x, key, n)) return;
               if (n < lo || n > hi) {
                 p.error(x, std::string("'") + key + "' must be between " + std::to_string(lo) +
                                " and " + std::to_string(hi));
                 return;
               }
               out = static_cast<std::uint32_t>(n);
             };
           };
           p.section(v, "script", {
               {"default_timeout_ms", u32("script.default_timeout_ms", 1, 600000, sc.default_timeout_ms)},
               {"default_memory_limit_mb", u32("script.default_memory_limit_mb", 8, 16384, sc.default_memory_limit_mb)},
               {"fetch_max_inflight", u32("script.fetch_max_inflight", 1, 1024, sc.fetch_max_inflight)},
               {"fetch_timeout_ms", u32("script.fetch_timeout_ms", 100, 600000, sc.fetch_timeout_ms)},
               {"fetch_max_response_bytes", [&](const YAML::Node&, const YAML::Node& x) {
                  p.scalar(x, "script.fetch_max_response_bytes", sc.fetch_max_response_bytes); }},
               {"global_fetch_allowlist", [&](const YAML::Node&, const YAML::Node& x) {
                  url_rules(x, "script.global_fetch_allowlist", /*with_methods=*/true,
                            sc.fetch_allowlist);
                }},
               {"secrets", [&](const YAML::Node&, const YAML::Node& x) {
                  if (!x.IsMap()) {
                    p.error(x, "'script.secrets' must be a mapping of NAME: {env, ...}");
                    return;
                  }
                  for (const auto& kv : x) {
                    const std::string name = kv.first.Scalar();
                    const std::string key = "script.secrets." + name;
                    ScriptSecret secret;
                    p.section(kv.second, key, {
                        {"env", [&](const YAML::Node&, const YAML::Node& y) { p.scalar(y, key + ".env", secret.env); }},
                        {"type", [&](const YAML::Node&, const YAML::Node& y) {
                           if (p.scalar(y, key + ".type", secret.type) && secret.type != "url" &&
                               secret.type != "token" && secret.type != "apikey" && secret.type != "string") {
                             p.error(y, "'" + key + ".type' must be url, token, apikey or string");
                           } }},
                        {"description", [&](const YAML::Node&, const YAML::Node& y) {
                           p.scalar(y, key + ".description", secret.description); }},
                        {"allowed_fetch_urls", [&](const YAML::Node&, const YAML::Node& y) {
                           p.strings(y, key + ".allowed_fetch_urls", secret.allowed_fetch_urls); }},
                    });
                    if (secret.env.empty()) {
                      p.error(kv.first, "'" + key + "' needs env: the environment variable holding it");
                    }
                    std::vector<UrlRule> scope;
                    for (const auto& u : secret.allowed_fetch_urls) scope.push_back({.url = u});
                    if (auto checked = UrlPolicy::make(std::move(scope)); !checked) {
                      p.error(kv.first, key + ".allowed_fetch_urls: " + checked.status().message());
                    }
                    sc.secrets[name] = std::move(secret);
                  }
                }},
           });
         }},
        {"paths", [&](const YAML::Node&, const YAML::Node& v) {
           p.section(v, "paths", {
               {"base_dir", [&](const YAML::Node&, const YAML::Node& x) {
                  std::string s;
                  if (p.scalar(x, "paths.base_dir", s)) cfg.engine.base_dir = s; }},
               {"samples_dir", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "paths.samples_dir", cfg.samples_dir); }},
               {"audio_dir", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "paths.audio_dir", cfg.audio_dir); }},
               {"ui_dir", [&](const YAML::Node&, const YAML::Node& x) { p.scalar(x, "paths.ui_dir", cfg.ui_dir); }},
           });
         }},
    });
  }
  const auto address_ok = [&](const char* key, const std::string& listen,
                              const SourceLocation& at) {
    const auto colon = listen.rfind(':');
    const std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
    if (colon == std::string::npos || colon == 0 || port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
      p.errors.emplace_back(ErrorCode::kInvalidArgument,
                            std::string(key) + " must be HOST:PORT (got '" + listen + "')", at);
      return false;
    }
    return true;
  };
  if (p.errors.empty() && cfg.tls && (cfg.cert_path.empty() || cfg.key_path.empty())) {
    p.errors.emplace_back(ErrorCode::kInvalidArgument,
                          "server.tls is on but server." +
                              std::string(cfg.cert_path.empty() ? "cert_path" : "key_path") +
                              " is not set (TLS needs a PEM certificate chain and its key)",
                          tls_at);
  }
  if (p.errors.empty()) {
    const bool listen_ok = address_ok("server.listen", cfg.listen, listen_at);
    const bool grpc_ok =
        cfg.grpc_listen.empty() || address_ok("server.grpc_listen", cfg.grpc_listen, grpc_listen_at);
    if (listen_ok && grpc_ok && cfg.tokens.empty() && !cfg.allow_insecure_non_loopback) {
      const auto check = [&](const char* key, const std::string& listen, const SourceLocation& at) {
        const std::string host = listen.substr(0, listen.rfind(':'));
        if (host != "127.0.0.1" && host != "localhost" && host != "[::1]" && host != "::1") {
          p.errors.emplace_back(ErrorCode::kInvalidArgument,
                                std::string(key) + " is " + listen +
                                    " but no auth tokens are configured: listen on loopback, add "
                                    "auth.tokens, or set server.allow_insecure_non_loopback: true",
                                at);
        }
      };
      check("server.listen", cfg.listen, listen_at);
      if (!cfg.grpc_listen.empty()) {
        check("server.grpc_listen", cfg.grpc_listen, grpc_listen_at);
      }
    }
  }
  if (!p.errors.empty()) {
    Status first = p.errors.front();
    if (all_errors != nullptr) {
      *all_errors = std::move(p.errors);
    }
    return first;
  }
  return cfg;
}

Result<ServerConfig> load_config(const std::string& path, std::vector<Status>* errors) {
  std::ifstream in(path);
  if (!in) {
    return Status(ErrorCode::kNotFound, "cannot read config '" + path + "'");
  }
  std::ostringstream s;
  s << in.rdbuf();
  return parse_config(s.str(), errors);
}

}  // namespace skit::gateway
