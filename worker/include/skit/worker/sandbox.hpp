// SPDX-License-Identifier: MPL-2.0
// The worker sandbox, first layer: rlimits, no new privileges and a seccomp allow-list,
// engaged after set-up (files opened, shared memory mapped, sockets bound).
#pragma once

#include <cstdint>

#include "skit/core/status.hpp"

namespace skit::worker {

struct SandboxPolicy {
  std::uint64_t address_space_bytes = 0;  // RLIMIT_AS; 0 = leave as is
  std::uint32_t max_open_files = 256;     // RLIMIT_NOFILE
  bool allow_network = false;             // AF_INET/AF_INET6 sockets
};

/// Engages the sandbox for the whole process (every thread). Irreversible.
Status apply_sandbox(const SandboxPolicy& policy);

}  // namespace skit::worker
