// SPDX-License-Identifier: MPL-2.0
#include "skit/core/child_processes.hpp"

#include <mutex>

namespace skit {

namespace {
std::mutex g_mutex;
std::vector<pid_t>& targets() {
  static std::vector<pid_t> list;
  return list;
}
}  // namespace

void allow_signals_to(pid_t pid) {
  std::lock_guard lock(g_mutex);
  targets().push_back(pid);
}

std::vector<pid_t> signal_targets() {
  std::lock_guard lock(g_mutex);
  return targets();
}

}  // namespace skit
