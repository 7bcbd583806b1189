// SPDX-License-Identifier: MPL-2.0
#include "worker_process.hpp"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace skit::supervisor {

namespace {
int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
}  // namespace

Result<WorkerProcess> WorkerProcess::spawn(const std::string& executable,
                                           const std::vector<std::string>& args) {
  std::vector<std::string> argv_storage;
  argv_storage.push_back(executable);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    return Status(ErrorCode::kResourceExhausted,
                  std::string("cannot fork a worker: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the supervisor
    if (::getppid() != parent) {
      ::_exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Only stdin/stdout/stderr survive: no control socket, shm or file of the parent leaks.
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  WorkerProcess proc;
  proc.pid_ = pid;
  proc.pidfd_ = pidfd_open(pid);
  if (proc.pidfd_ < 0) {
    return Status(ErrorCode::kInternal, std::string("pidfd_open failed: ") + std::strerror(errno));
  }
  return proc;
}

WorkerProcess::WorkerProcess(WorkerProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      reaped_(other.reaped_),
      exited_(other.exited_),
      code_(other.code_) {}

WorkerProcess& WorkerProcess::operator=(WorkerProcess&& other) noexcept {
  if (this != &other) {
    this->~WorkerProcess();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
    reaped_ = other.reaped_;
    exited_ = other.exited_;
    code_ = other.code_;
  }
  return *this;
}

WorkerProcess::~WorkerProcess() {
  if (running()) {
    kill(SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (pidfd_ >= 0) {
    ::close(pidfd_);
  }
}

void WorkerProcess::kill(int signal) const {
  if (running()) {
    ::syscall(SYS_pidfd_send_signal, pidfd_, signal, nullptr, 0);
  }
}

bool WorkerProcess::try_reap() {
  if (reaped_ || pid_ <= 0) {
    return reaped_;
  }
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r != pid_) {
    return false;
  }
  reaped_ = true;
  exited_ = WIFEXITED(status);
  code_ = exited_ ? WEXITSTATUS(status) : WTERMSIG(status);
  return true;
}

void WorkerProcess::terminate(int timeout_ms) {
  if (!running()) {
    return;
  }
  pollfd p{pidfd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) {
    kill(SIGKILL);
    ::poll(&p, 1, 5000);
  }
  while (!try_reap()) {
    ::poll(&p, 1, 10);
  }
}

std::string WorkerProcess::exit_description() const {
  if (!reaped_) {
    return "still running";
  }
  if (exited_) {
    return "exited with status " + std::to_string(code_);
  }
  std::string name = sigabbrev_np(code_) ? std::string("SIG") + sigabbrev_np(code_) : "?";
  std::string out = "killed by signal " + std::to_string(code_) + " (" + name + ")";
  if (code_ == SIGSYS) {
    out += ": it made a system call the worker sandbox forbids";
  }
  return out;
}

}  // namespace skit::supervisor
