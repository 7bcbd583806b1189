// SPDX-License-Identifier: MPL-2.0
// `skit serve`: starts the HTTP gateway, tells systemd when it is ready, pings its watchdog,
// and drains on SIGINT/SIGTERM.
#include <systemd/sd-daemon.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "skit/gateway/server.hpp"

namespace skit::gateway {

int serve_http(const ServerConfig& config, supervisor::Engine& engine,
               const std::atomic<bool>& stop, std::function<void(unsigned short)> on_listening);

int serve(const ServerConfig& config, supervisor::Engine& engine, const std::atomic<bool>& stop) {
  if (Status s = check_listen_policy(config); !s.is_ok()) {
    spdlog::error("{}", s.message());
    return 2;
  }
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
  const int rc = serve_http(config, engine, stop, [&](unsigned short port) {
    // Tests and scripts that pass port 0 learn the real one from this line.
    std::fprintf(stderr, "skit serve: listening on http://%s:%u\n",
                 config.listen.substr(0, config.listen.rfind(':')).c_str(), port);
    std::fflush(stderr);
    sd_notifyf(0, "READY=1\nSTATUS=listening on port %u", port);
  });
  sd_notify(0, "STOPPING=1");
  watchdog_stop.store(true);
  if (watchdog.joinable()) {
    watchdog.join();
  }
  return rc;
}

}  // namespace skit::gateway
