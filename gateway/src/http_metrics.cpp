// SPDX-License-Identifier: MPL-2.0
#include "http_metrics.hpp"

#include <sstream>

namespace skit::gateway {

void HttpMetrics::record(std::string_view route, unsigned status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(route), status}];
  auto it = durations_.find(route);
  if (it == durations_.end()) {
    it = durations_.emplace(std::string(route), std::pair<double, std::uint64_t>{0, 0}).first;
  }
  it->second.first += seconds;
  it->second.second += 1;
}

std::string HttpMetrics::render(const supervisor::EngineStats& e, std::size_t connections,
                                const supervisor::SessionManagerStats& sessions,
                                const ControlSockets& control) {
  std::ostringstream out;
  std::lock_guard lock(mutex_);
  out << "# HELP skit_http_requests_total HTTP requests by route and status.\n"
         "# TYPE skit_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out << "skit_http_requests_total{route=\"" << key.first << "\",code=\"" << key.second
        << "\"} " << n << '\n';
  }
  out << "# HELP skit_http_request_duration_seconds Time to serve requests by route.\n"
         "# TYPE skit_http_request_duration_seconds summary\n";
  for (const auto& [route, d] : durations_) {
    out << "skit_http_request_duration_seconds_sum{route=\"" << route << "\"} " << d.first << '\n'
        << "skit_http_request_duration_seconds_count{route=\"" << route << "\"} " << d.second
        << '\n';
  }
  out << "# HELP skit_http_connections Open HTTP connections.\n# TYPE skit_http_connections gauge\n"
      << "skit_http_connections " << connections << '\n'
      << "# HELP skit_oneshot_active Oneshot pipelines running.\n# TYPE skit_oneshot_active gauge\n"
      << "skit_oneshot_active " << e.active_oneshots << '\n'
      << "# HELP skit_oneshots_total Oneshot pipelines by result.\n# TYPE skit_oneshots_total counter\n"
      << "skit_oneshots_total{result=\"ok\"} " << e.oneshots_succeeded << '\n'
      << "skit_oneshots_total{result=\"error\"} " << e.oneshots_failed << '\n'
      << "skit_oneshots_total{result=\"rejected\"} " << e.oneshots_rejected << '\n'
      << "# HELP skit_oneshot_duration_seconds_total Wall time of finished oneshot pipelines.\n"
         "# TYPE skit_oneshot_duration_seconds_total counter\n"
      << "skit_oneshot_duration_seconds_total " << e.run_seconds_total << '\n'
      << "# HELP skit_workers_started_total Worker processes started.\n# TYPE skit_workers_started_total counter\n"
      << "skit_workers_started_total " << e.workers_started << '\n'
      << "# HELP skit_packets_total Packets produced by nodes of finished pipelines.\n# TYPE skit_packets_total counter\n"
      << "skit_packets_total " << e.packets << '\n'
      << "# HELP skit_dropped_packets_total Best-effort drops.\n# TYPE skit_dropped_packets_total counter\n"
      << "skit_dropped_packets_total " << e.dropped << '\n'
      << "# HELP skit_worker_restarts_total Worker restarts (session workers that crashed or hung).\n"
         "# TYPE skit_worker_restarts_total counter\n"
      << "skit_worker_restarts_total " << sessions.worker_restarts << '\n'
      << "# HELP skit_sessions_active Dynamic sessions.\n# TYPE skit_sessions_active gauge\n"
      << "skit_sessions_active " << sessions.sessions << '\n'
      << "# HELP skit_sessions_created_total Sessions created.\n# TYPE skit_sessions_created_total counter\n"
      << "skit_sessions_created_total " << sessions.sessions_created << '\n'
      << "# HELP skit_sessions_destroyed_total Sessions destroyed (by a client, the idle timeout or the shutdown).\n"
         "# TYPE skit_sessions_destroyed_total counter\n"
      << "skit_sessions_destroyed_total " << sessions.sessions_destroyed << '\n'
      << "# HELP skit_session_nodes Nodes of all sessions.\n# TYPE skit_session_nodes gauge\n"
      << "skit_session_nodes " << sessions.nodes << '\n'
      << "# HELP skit_session_workers Worker processes of all sessions.\n# TYPE skit_session_workers gauge\n"
      << "skit_session_workers " << sessions.workers << '\n'
      << "# HELP skit_session_worker_crashes_total Session workers that crashed, hung or passed their memory limit.\n"
         "# TYPE skit_session_worker_crashes_total counter\n"
      << "skit_session_worker_crashes_total " << sessions.worker_crashes << '\n'
      << "# HELP skit_session_nodes_failed_total Session nodes failed for good (restart limit).\n"
         "# TYPE skit_session_nodes_failed_total counter\n"
      << "skit_session_nodes_failed_total " << sessions.nodes_failed << '\n'
      << "# HELP skit_session_events_dropped_total Session events dropped for subscribers that lagged.\n"
         "# TYPE skit_session_events_dropped_total counter\n"
      << "skit_session_events_dropped_total " << sessions.events_dropped << '\n'
      << "# HELP skit_session_telemetry_events_total Node telemetry events received from session workers.\n"
         "# TYPE skit_session_telemetry_events_total counter\n"
      << "skit_session_telemetry_events_total " << sessions.telemetry_events << '\n'
      << "# HELP skit_websocket_connections Open WebSocket control connections.\n"
         "# TYPE skit_websocket_connections gauge\n"
      << "skit_websocket_connections " << control.active() << '\n'
      << "# HELP skit_websocket_events_sent_total Session events sent to WebSocket clients.\n"
         "# TYPE skit_websocket_events_sent_total counter\n"
      << "skit_websocket_events_sent_total " << control.events_sent() << '\n';
  return out.str();
}

}  // namespace skit::gateway
