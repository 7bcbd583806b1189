// SPDX-License-Identifier: MPL-2.0
// What the session suites share beside tests/support's server, HTTP and WebSocket clients:
// a config with the three roles' tokens and gRPC on, process accounting (threads, fds, RSS),
// identifier checks and a dynamic pipeline to break.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "http_client.hpp"
#include "skit_server.hpp"
#include "ws_client.hpp"

namespace skit::testing {

using nlohmann::json;
using namespace std::chrono_literals;

/// A config with the three roles' tokens, gRPC on port 0, and `extra` appended (whole
/// sections, e.g. "sessions:\n  max_sessions: 2\n").
inline std::string session_config(const std::string& extra = "") {
  return "server:\n"
         "  log_format: json\n"
         "  grpc_listen: 127.0.0.1:0\n"
         "auth:\n"
         "  tokens:\n"
         "    - {name: ci, token: \"" + kOperatorToken + "\", role: operator}\n"
         "    - {name: dashboard, token: \"" + kViewerToken + "\", role: viewer}\n"
         "    - {name: root, token: \"" + kAdminToken + "\", role: admin}\n" + extra;
}

// ---------------------------------------------------------------------------------------------
// Process accounting

inline std::size_t count_dir(const std::string& path) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(path, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}
inline std::size_t thread_count(pid_t pid) { return count_dir("/proc/" + std::to_string(pid) + "/task"); }
inline std::size_t fd_count(pid_t pid) { return count_dir("/proc/" + std::to_string(pid) + "/fd"); }
inline long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

inline bool is_uuid_v4(const std::string& s) {
  static const std::regex re("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(s, re);
}

inline bool is_rfc3339(const std::string& s) {
  static const std::regex re(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$)");
  return std::regex_match(s, re);
}

/// The `nodestatechanged` event that says `node_id` of `session_id` stopped (for a writer: the
/// stream ended and the file is complete), or null after `timeout`.
inline json wait_node_stopped(WsClient& ws, const std::string& session_id, const std::string& node_id,
                              std::chrono::milliseconds timeout = 20s) {
  return ws.wait_event(
      [&](const json& p) {
        return p.value("event", "") == "nodestatechanged" &&
               p.value("session_id", "") == session_id && p.value("node_id", "") == node_id &&
               p["state"].is_object() && p["state"].contains("Stopped");
      },
      timeout);
}

/// A dynamic pipeline that reads speech.ogg, decodes it, applies a gain and discards it; `gain`
/// (line 16) is the param a test may break.
inline std::string decode_pipeline(const std::string& gain = "1.0") {
  return "mode: dynamic\n"                       // 1
         "nodes:\n"                              // 2
         "  src:\n"                              // 3
         "    kind: core::file_reader\n"         // 4
         "    params:\n"                         // 5
         "      path: samples/audio/speech.ogg\n"  // 6
         "  demux:\n"                            // 7
         "    kind: containers::ogg::demuxer\n"  // 8
         "    needs: src\n"                      // 9
         "  decode:\n"                           // 10
         "    kind: audio::opus::decoder\n"      // 11
         "    needs: demux\n"                    // 12
         "  loud:\n"                             // 13
         "    kind: audio::gain\n"               // 14
         "    params:\n"                         // 15
         "      gain: " + gain + "\n"            // 16
         "    needs: decode\n"                   // 17
         "  sink:\n"                             // 18
         "    kind: core::sink\n"                // 19
         "    needs: loud\n";                    // 20
}

}  // namespace skit::testing
