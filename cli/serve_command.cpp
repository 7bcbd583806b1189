// SPDX-License-Identifier: MPL-2.0
// skit serve (the server) and skit config (check a configuration file, print the defaults).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <spdlog/spdlog.h>

#include "cli_common.hpp"
#include "commands.hpp"
#include "skit/gateway/config.hpp"
#include "skit/gateway/server.hpp"
#include "skit/supervisor/engine.hpp"

namespace skit::cli {

namespace {

/// Prints every error of a configuration file as FILE:LINE:COLUMN (or FILE: when the problem
/// has no place, such as a listen policy).
void print_config_errors(const std::string& path, const std::vector<Status>& errors) {
  for (const auto& e : errors) {
    if (e.where().line > 0) {
      std::fprintf(stderr, "%s:%d:%d: error: %s\n", path.c_str(), e.where().line,
                   e.where().column, e.message().c_str());
    } else {
      std::fprintf(stderr, "%s: error: %s\n", path.c_str(), e.message().c_str());
    }
  }
}

Result<gateway::ServerConfig> load(const std::string& path) {
  std::vector<Status> errors;
  auto cfg = gateway::load_config(path, &errors);
  if (!cfg) {
    if (errors.empty()) {
      errors.push_back(cfg.status());
    }
    print_config_errors(path, errors);
    return cfg.status();
  }
  return cfg;
}

struct ServeArgs {
  std::string config;
  std::string listen;
  std::optional<std::string> grpc_listen;
  bool no_sandbox = false;
};

int serve(const ServeArgs& a) {
  gateway::ServerConfig cfg;
  if (!a.config.empty()) {
    auto loaded = load(a.config);
    if (!loaded) {
      return 2;
    }
    cfg = *loaded;
  }
  if (!a.listen.empty()) {
    cfg.listen = a.listen;
  }
  if (a.grpc_listen) {
    cfg.grpc_listen = *a.grpc_listen;
  }
  if (a.no_sandbox) {
    cfg.engine.sandbox.enabled = false;
  }
  set_log_format(cfg.log_format);
  if (!log_level_from_env()) {
    spdlog::set_level(spdlog::level::info);
  }
  cfg.engine.worker_executable = self_executable();
  // Workers inherit the environment: the script policy (names of secret variables, never
  // their values) reaches every core::script node this way, before any thread starts.
  ::setenv(ScriptPolicy::kEnvVar, cfg.script.to_json().dump().c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
  // And the URLs transport::http::fetcher may download, which it checks again after DNS.
  ::setenv(kFetchPolicyEnvVar, to_json(cfg.engine.allowed_fetch_urls).dump().c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
  supervisor::Engine engine(cfg.engine);
  // Each plugin is probed by a sandboxed worker; a broken one is logged and skipped.
  engine.load_plugins();
  // SIGHUP reloads (systemctl reload); only the server has anything to reload, so only it
  // catches the signal (a hung-up terminal still ends `skit run`).
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_reload.fetch_add(1); };
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a reload must not fail another thread's blocking read
  ::sigaction(SIGHUP, &sa, nullptr);
  return gateway::serve(cfg, engine, g_cancel, &g_reload);
}

}  // namespace

Command add_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Run the server: StreamKit's HTTP API, dynamic sessions, the WebSocket control "
               "plane, the gRPC API and the web UI at / (docs/ui.md)");
  cmd->add_option("-c,--config", args->config,
                  "Configuration file (YAML; every key in docs/configuration.md); defaults "
                  "apply without one");
  cmd->add_option("--listen", args->listen, "HTTP address HOST:PORT (default 127.0.0.1:4545)");
  cmd->add_option("--grpc-listen", args->grpc_listen,
                  "gRPC address HOST:PORT (default 127.0.0.1:4546; \"\" disables gRPC)");
  cmd->add_flag("--no-sandbox", args->no_sandbox,
                "Do not confine workers (debugging, sanitizer builds)");
  cmd->footer(
      "The web UI is served at / (paths.ui_dir; docs/ui.md).\n"
      "HTTP: GET /healthz, /metrics, /api/v1/config, /api/v1/permissions,\n"
      "/api/v1/schema/nodes, /api/v1/schema/packets, /api/v1/samples/oneshot[/{id}],\n"
      "POST /api/v1/process (GET /api/v1/process/{request-id}: a recent request's outcome),\n"
      "sessions (POST/GET /api/v1/sessions, GET /api/v1/sessions/{id}/pipeline,\n"
      "DELETE /api/v1/sessions/{id}; docs/sessions.md), the WebSocket control plane\n"
      "GET /api/v1/control, and the gRPC API (skit.v1.Control, grpc.health.v1.Health,\n"
      "reflection; docs/grpc.md). Port 0 picks a free port; the chosen ones are printed on\n"
      "stderr (\"skit serve: listening on http://HOST:PORT\", \"skit serve: grpc listening on\n"
      "HOST:PORT\"; https:// with server.tls). SIGINT/SIGTERM stop accepting, cancel running\n"
      "pipelines, close WebSocket clients, destroy every session and exit. SIGHUP reads the\n"
      "TLS certificate and key again (server.cert_path, server.key_path; a bad pair keeps\n"
      "the one in use).");
  return [args] { return serve(*args); };
}

Command add_config_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("config", "Check a server configuration, or print the defaults");
  cmd->require_subcommand(1);
  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* check = cmd->add_subcommand(
      "check", "Check configuration files: every error with its line, all at once");
  check->add_option("files", *files, "Configuration files (YAML)")->required();
  check->footer("Exit status: 0 valid, 2 invalid.");
  CLI::App* defaults = cmd->add_subcommand(
      "default", "Print the full default configuration, every key with a comment");
  return [check, defaults, files]() -> int {
    if (defaults->parsed()) {
      std::fputs(std::string(gateway::default_config_yaml()).c_str(), stdout);
      return 0;
    }
    int code = 0;
    for (const auto& path : *files) {
      auto cfg = load(path);
      if (!cfg) {
        code = 2;
        continue;
      }
      if (auto s = gateway::check_listen_policy(*cfg); !s.is_ok()) {
        print_config_errors(path, {s});
        code = 2;
        continue;
      }
      std::printf("%s: valid (listen %s, %zu token(s), placement %s)\n", path.c_str(),
                  cfg->listen.c_str(), cfg->tokens.size(),
                  std::string(supervisor::placement_name(cfg->engine.placement)).c_str());
    }
    (void)check;
    return code;
  };
}

}  // namespace skit::cli
