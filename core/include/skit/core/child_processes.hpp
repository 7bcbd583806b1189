// SPDX-License-Identifier: MPL-2.0
// Child processes a node started before the worker sandbox engaged (the script node's
// Node.js). The sandbox refuses kill(2) in general; it lets the worker signal exactly these
// processes, so that a node can stop a runaway child of its own.
#pragma once

#include <sys/types.h>

#include <vector>

namespace skit {

/// Registers `pid` as a child the worker may signal once sandboxed. Call before the sandbox.
void allow_signals_to(pid_t pid);
/// The registered children (read by the worker when it builds its sandbox).
std::vector<pid_t> signal_targets();

}  // namespace skit
