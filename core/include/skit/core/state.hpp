// SPDX-License-Identifier: MPL-2.0
// Node lifecycle states and counters, as reported to the supervisor and the APIs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace skit {

enum class NodeState : std::uint8_t { kInitializing, kReady, kRunning, kStopped, kFailed };

std::string_view node_state_name(NodeState state);

/// Counters of one node; a snapshot of the runtime's atomics.
struct NodeStats {
  std::uint64_t packets_in = 0;
  std::uint64_t packets_out = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t dropped = 0;  // best-effort drops on this node's outputs
  // End (pts + duration, microseconds) of the latest timed packet received: how far through
  // the media the node is (progress lines); 0 until a timed packet arrives.
  std::int64_t media_time_us = 0;
  // Telemetry events of this node dropped by the runtime's per-node cap (or a full queue).
  std::uint64_t telemetry_dropped = 0;
};

}  // namespace skit
