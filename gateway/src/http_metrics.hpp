// SPDX-License-Identifier: MPL-2.0
// GET /metrics: the HTTP requests by route template and status, and the engine's, sessions'
// and WebSocket counters, in Prometheus' text format.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "control_socket.hpp"
#include "skit/supervisor/engine.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

class HttpMetrics {
 public:
  /// One answered request; `route` is a template or "other" (never a raw path, so that
  /// clients cannot grow /metrics).
  void record(std::string_view route, unsigned status, double seconds);
  std::string render(const supervisor::EngineStats& engine, std::size_t connections,
                     const supervisor::SessionManagerStats& sessions,
                     const ControlSockets& control);

 private:
  std::mutex mutex_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::string, std::pair<double, std::uint64_t>, std::less<>> durations_;
};

}  // namespace skit::gateway
