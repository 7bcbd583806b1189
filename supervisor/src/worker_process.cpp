// SPDX-License-Identifier: MPL-2.0
#include "worker_process.hpp"

#include <poll.h>
#include <spawn.h>
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
                                           const std::vector<std::string>& args, int stdout_fd) {
  std::vector<std::string> argv_storage;
  argv_storage.push_back(executable);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  // The worker arms PR_SET_PDEATHSIG itself and checks that we are still its parent.
  argv_storage.emplace_back("--parent");
  argv_storage.push_back(std::to_string(::getpid()));
  std::vector<char*> argv;
  for (auto& a : argv_storage) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  // posix_spawn (clone with CLONE_VM|CLONE_VFORK in glibc) instead of fork: a server with
  // many threads and every session's shared memory mapped would otherwise copy its page
  // tables and take its mmap lock for each worker (seen: 0.8 s per spawn under load).
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  }
  // Only stdin/stdout/stderr survive: no control socket, shm or file of the parent leaks.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2}) {
    sigaddset(&defaults, sig);
  }
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return Status(ErrorCode::kResourceExhausted,
                  std::string("cannot start a worker: ") + std::strerror(rc));
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
