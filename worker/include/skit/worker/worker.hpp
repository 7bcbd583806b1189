// SPDX-License-Identifier: MPL-2.0
// The worker process: `skit worker --control ENDPOINT --worker-id N`. It receives its nodes
// from the supervisor, maps their rings and pools, engages the sandbox and runs them.
#pragma once

#include <string>

namespace skit::worker {

struct WorkerArgs {
  std::string control_endpoint;
  unsigned worker_id = 0;
};

/// Runs a worker to completion; returns the process exit code.
int run_worker(const WorkerArgs& args);

}  // namespace skit::worker

namespace skit::worker {

/// `skit worker --probe-plugin PATH`: engages the sandbox, loads the plugin library, checks it
/// and writes one JSON line to stdout: {"ok":true,"metadata":{...}} or {"ok":false,"error":...}.
/// The plugin's own output goes to stderr. Returns the exit code (0 = a valid plugin).
int probe_plugin(const std::string& path, unsigned long long address_space_bytes);

}  // namespace skit::worker
