// SPDX-License-Identifier: MPL-2.0
// skit worker: internal, started by the supervisor. Parsed by hand before anything else, so
// that a worker never pays for building the command line of the whole CLI.
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "skit/worker/worker.hpp"

namespace skit::cli {

namespace {
constexpr const char* kWorkerHelp = R"(Usage: skit worker --control ENDPOINT --worker-id N --parent PID
       skit worker --probe-plugin LIBRARY [--address-space BYTES] --parent PID

Internal: the supervisor starts workers with this command. A worker receives
its nodes over ZeroMQ, maps their shared-memory rings, engages its sandbox and
runs them. With --probe-plugin it loads a native plugin inside the sandbox and
prints its metadata as one JSON line (the server never loads a plugin itself).
)";
}  // namespace

int run_worker_command(int argc, char** argv) {
  worker::WorkerArgs wa;
  std::string probe;
  unsigned long long address_space = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kWorkerHelp, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      break;
    }
    if (a == "--parent") {
      // Never outlive the supervisor: armed here (the supervisor spawns without fork), then
      // checked, in case the supervisor died before this line.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != static_cast<pid_t>(std::atol(argv[i + 1]))) {
        return 127;
      }
      ++i;
    } else if (a == "--control") {
      wa.control_endpoint = argv[++i];
    } else if (a == "--worker-id") {
      wa.worker_id = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (a == "--probe-plugin") {
      probe = argv[++i];
    } else if (a == "--address-space") {
      address_space = std::strtoull(argv[++i], nullptr, 10);
    }
  }
  if (!probe.empty()) {
    return worker::probe_plugin(probe, address_space);
  }
  if (wa.control_endpoint.empty()) {
    std::fputs(kWorkerHelp, stderr);
    return 2;
  }
  return worker::run_worker(wa);
}

}  // namespace skit::cli
