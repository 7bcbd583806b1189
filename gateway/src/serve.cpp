// SPDX-License-Identifier: MPL-2.0
// `skit serve`: creates the session manager, starts the gRPC server (server.grpc_listen) and
// the HTTP gateway, tells systemd when it is ready, pings its watchdog, reloads the TLS
// certificate on SIGHUP, and on SIGINT/SIGTERM drains both APIs, then destroys every session.
#include <systemd/sd-daemon.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "session_api.hpp"
#include "grpc_service.hpp"
#include "skit/gateway/server.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

int serve_http(const ServerConfig& config, supervisor::Engine& engine,
               supervisor::SessionManager& sessions, const std::atomic<bool>& stop,
               const std::atomic<unsigned>* reloads,
               const std::function<void(unsigned short)>& on_listening);

namespace {
/// Relative paths resolve against paths.base_dir, the working directory by default: a server
/// started elsewhere finds no samples, and says so instead of serving empty lists.
void warn_about_paths(const ServerConfig& config, const supervisor::Engine& engine) {
  namespace fs = std::filesystem;
  const fs::path dir = engine.config().base_dir / config.samples_dir / "oneshot";
  std::error_code ec;
  std::size_t samples = 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    samples += e.path().extension() == ".yml" || e.path().extension() == ".yaml" ? 1 : 0;
  }
  if (samples == 0) {
    spdlog::warn("no sample pipelines in {} (paths.base_dir {} + paths.samples_dir {}): "
                 "GET /api/v1/samples/oneshot lists none; set paths.base_dir in the config",
                 dir.string(), engine.config().base_dir.string(), config.samples_dir);
  }
}
}  // namespace

int serve(const ServerConfig& config, supervisor::Engine& engine, const std::atomic<bool>& stop,
          const std::atomic<unsigned>* reloads) {
  if (Status s = check_listen_policy(config); !s.is_ok()) {
    spdlog::error("{}", s.message());
    return 2;
  }
  warn_about_paths(config, engine);
  std::atomic<bool> watchdog_stop{false};
  std::thread watchdog;
  std::uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    // Ping at half the interval, as systemd recommends; stops when the server stops.
    watchdog = std::thread([&, interval = std::chrono::microseconds(watchdog_usec / 2)] {
      while (!watchdog_stop.load()) {
        sd_notify(0, "WATCHDOG=1");
        std::this_thread::sleep_for(std::min<std::chrono::microseconds>(interval, std::chrono::seconds(1)));
      }
    });
  }
  // Dynamic sessions: one manager for both APIs, with the engine's workers, sandbox and file
  // path allow-lists. Destroyed last, after both APIs have drained: every session's workers
  // and shared memory go with it.
  auto sessions = std::make_unique<supervisor::SessionManager>(session_config_for(config, engine));
  // gRPC first, so that it is up when systemd hears READY (from the HTTP side).
  std::unique_ptr<GrpcServer> grpc;
  if (!config.grpc_listen.empty()) {
    auto started = GrpcServer::start(config, engine, *sessions);
    if (!started) {
      spdlog::error("{}", started.status().message());
      sessions.reset();
      watchdog_stop.store(true);
      if (watchdog.joinable()) {
        watchdog.join();
      }
      return 2;
    }
    grpc = std::move(*started);
    std::fprintf(stderr, "skit serve: grpc listening on %s:%u\n",
                 config.grpc_listen.substr(0, config.grpc_listen.rfind(':')).c_str(),
                 static_cast<unsigned>(grpc->port()));
    std::fflush(stderr);
  }
  // Drains gRPC as soon as a stop is asked for (or HTTP ends), alongside HTTP's own drain.
  std::atomic<bool> http_done{false};
  std::thread grpc_stopper;
  if (grpc) {
    grpc_stopper = std::thread([&] {
      while (!stop.load() && !http_done.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      grpc->shutdown();
    });
  }
  const int rc = serve_http(config, engine, *sessions, stop, reloads, [&](unsigned short port) {
    // Tests and scripts that pass port 0 learn the real one from this line.
    std::fprintf(stderr, "skit serve: listening on %s://%s:%u\n", config.tls ? "https" : "http",
                 config.listen.substr(0, config.listen.rfind(':')).c_str(), port);
    std::fflush(stderr);
    sd_notifyf(0, "READY=1\nSTATUS=listening on port %u", port);
  });
  http_done.store(true);
  if (grpc_stopper.joinable()) {
    grpc_stopper.join();
  }
  sd_notify(0, "STOPPING=1");
  const std::size_t open_sessions = sessions->stats().sessions;
  if (open_sessions > 0) {
    spdlog::info("destroying {} session(s)", open_sessions);
  }
  grpc.reset();
  sessions.reset();
  watchdog_stop.store(true);
  if (watchdog.joinable()) {
    watchdog.join();
  }
  return rc;
}

}  // namespace skit::gateway
