// SPDX-License-Identifier: MPL-2.0
// A child worker process: spawned with only stdio open and PR_SET_PDEATHSIG, watched via pidfd.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "skit/core/status.hpp"

namespace skit::supervisor {

class WorkerProcess {
 public:
  /// `stdout_fd` >= 0 becomes the child's stdout (a pipe the caller reads).
  static Result<WorkerProcess> spawn(const std::string& executable,
                                     const std::vector<std::string>& args, int stdout_fd = -1);

  WorkerProcess() = default;
  WorkerProcess(WorkerProcess&& other) noexcept;
  WorkerProcess& operator=(WorkerProcess&& other) noexcept;
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;
  /// Kills (SIGKILL) and reaps a worker that is still running.
  ~WorkerProcess();

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Readable when the process has exited (poll it with the control socket).
  [[nodiscard]] int pidfd() const { return pidfd_; }
  [[nodiscard]] bool running() const { return pid_ > 0 && !reaped_; }
  void kill(int signal) const;
  /// Non-blocking reap; true once the process has exited.
  bool try_reap();
  /// Waits up to `timeout_ms` for the exit, then SIGKILLs and reaps.
  void terminate(int timeout_ms);
  /// "exited with status 3", "killed by signal 9 (SIGKILL)".
  [[nodiscard]] std::string exit_description() const;
  [[nodiscard]] bool exited_cleanly() const { return reaped_ && exited_ && code_ == 0; }
  [[nodiscard]] bool signalled() const { return reaped_ && !exited_; }
  [[nodiscard]] int term_signal() const { return exited_ ? 0 : code_; }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool reaped_ = false;
  bool exited_ = false;
  int code_ = 0;  // exit status or signal
};

}  // namespace skit::supervisor
