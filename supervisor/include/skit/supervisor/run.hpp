// SPDX-License-Identifier: MPL-2.0
// Running a compiled pipeline: placement into worker processes, shared-memory set-up,
// spawning and watching workers, host-side nodes, teardown and the run report.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/state.hpp"
#include "skit/core/status.hpp"
#include "skit/v1/pipeline.pb.h"

namespace skit::supervisor {

enum class PlacementPolicy : std::uint8_t {
  kPerNode,  // every node in a worker process of its own
  kGrouped,  // a pipeline's nodes share one worker (except `isolation: dedicated` nodes)
};

std::string_view placement_name(PlacementPolicy policy);
Result<PlacementPolicy> parse_placement(std::string_view name);

struct SandboxOptions {
  bool enabled = true;
  std::uint64_t address_space_bytes = 4ULL << 30;  // RLIMIT_AS per worker
  std::uint32_t max_open_files = 4096;
  // File params were confined by a PathPolicy (canonical checked paths): workers open them
  // following no symbolic link. Set by the server; `skit run` opens paths as given.
  bool confined_files = false;
};

struct RunProgress {
  double elapsed_seconds = 0;
  std::uint64_t bytes_in = 0;   // consumed by host inputs (upload / --input)
  std::uint64_t bytes_out = 0;  // produced to host outputs (response / --output)
  std::size_t workers = 0;
  double media_seconds = 0;  // furthest media time any node has received (0: untimed data)
};

struct RunOptions {
  PlacementPolicy placement = PlacementPolicy::kGrouped;
  SandboxOptions sandbox;
  std::string worker_executable;  // the skit binary, re-executed as `skit worker`
  std::uint32_t ring_capacity = 32;
  std::chrono::milliseconds heartbeat_interval{250};
  std::chrono::milliseconds heartbeat_timeout{5000};
  std::chrono::milliseconds start_timeout{10000};
  /// A node inside one call for longer than this, without calling into the runtime, is
  /// declared hung and its worker killed.
  std::chrono::milliseconds node_timeout{30000};
  HostByteSource* input = nullptr;  // for streamkit::http_input
  HostByteSink* output = nullptr;   // for streamkit::http_output
  const std::atomic<bool>* cancel = nullptr;
  /// The run fails with kDeadlineExceeded past this point (default: none).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::function<void(const RunProgress&)> on_progress;  // called about every 200 ms
};

struct NodeReport {
  std::string id;
  std::string kind;
  int worker_pid = 0;  // the supervisor's pid for host-side nodes
  NodeState state = NodeState::kInitializing;
  std::string message;
  NodeStats stats;
};

struct PoolReport {
  std::string node_id;
  std::string pin;
  std::uint32_t slot_count = 0;
  std::uint32_t slot_size = 0;
  std::size_t consumers = 0;
};

struct RunReport {
  Status status;
  std::vector<NodeReport> nodes;
  std::vector<PoolReport> pools;
  std::size_t worker_count = 0;
  double wall_seconds = 0;
  PlacementPolicy placement = PlacementPolicy::kGrouped;

  [[nodiscard]] std::string to_json(const std::string& pipeline_name) const;
};

/// Runs `pipeline` to completion (end of stream everywhere), failure or cancellation.
/// Always tears everything down: no worker process or shared-memory segment outlives it.
RunReport run_pipeline(const v1::Pipeline& pipeline, const RunOptions& options);

}  // namespace skit::supervisor
