// SPDX-License-Identifier: MPL-2.0
#include "skit/worker/sandbox.hpp"

#include <sched.h>
#include <linux/netlink.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "skit/core/child_processes.hpp"

namespace skit::worker {

namespace {

Status set_limit(int resource, rlim_t value, const char* name) {
  rlimit current{};
  ::getrlimit(resource, &current);
  rlimit next{value, value};
  if (current.rlim_max != RLIM_INFINITY && current.rlim_max < value) {
    next.rlim_cur = next.rlim_max = current.rlim_max;
  }
  if (::setrlimit(resource, &next) != 0) {
    return Status(ErrorCode::kInternal,
                  std::string("setrlimit(") + name + ") failed: " + std::strerror(errno));
  }
  return Status::ok();
}

struct FilterDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

// What a worker needs once set up: memory, threads, futexes, time, reading and writing the
// descriptors it already holds, and ZeroMQ's Unix-socket signalling. Notably absent: execve,
// fork/clone of processes, ptrace, mount, and network sockets (unless allowed).
constexpr int kAllowed[] = {
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
    SCMP_SYS(pwrite64), SCMP_SYS(lseek), SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
    SCMP_SYS(statx),
    // The legacy stat calls: prebuilt libraries (onnxruntime in sherpa-onnx) still make them.
    SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(openat), SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(dup3),
    SCMP_SYS(ioctl), SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
    SCMP_SYS(getdents64), SCMP_SYS(unlink), SCMP_SYS(readlink),
    SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
    SCMP_SYS(brk), SCMP_SYS(mincore),
    // An anonymous memory file, no more than mmap gives (libpulse makes its memory pool so
    // when espeak-ng creates its unused audio device object).
    SCMP_SYS(memfd_create),
    SCMP_SYS(futex), SCMP_SYS(set_robust_list),
    SCMP_SYS(get_robust_list), SCMP_SYS(rseq), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
    SCMP_SYS(sched_setaffinity), SCMP_SYS(set_tid_address), SCMP_SYS(gettid), SCMP_SYS(getpid),
    SCMP_SYS(getppid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
    SCMP_SYS(tgkill), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack), SCMP_SYS(prctl), SCMP_SYS(getrandom), SCMP_SYS(uname),
    SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(getrusage), SCMP_SYS(sysinfo),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(times),
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(eventfd2),
    SCMP_SYS(pipe2),
    SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(sendto),
    SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(getsockopt),
    SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(shutdown),
    SCMP_SYS(socketpair), SCMP_SYS(dup2), SCMP_SYS(access), SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2), SCMP_SYS(getcwd), SCMP_SYS(fstatfs), SCMP_SYS(statfs),
    SCMP_SYS(sched_getparam), SCMP_SYS(sched_getscheduler), SCMP_SYS(sched_get_priority_min),
    SCMP_SYS(sched_get_priority_max), SCMP_SYS(getpriority), SCMP_SYS(membarrier),
    SCMP_SYS(sched_getattr),  // GLib copies a thread's scheduling settings to the threads it makes
};

// Harmless to refuse, so refused with EPERM instead of killing: libraries probe them and
// carry on when told no.
constexpr int kRefused[] = {
    SCMP_SYS(sched_setparam), SCMP_SYS(setpriority), SCMP_SYS(sched_setattr),
};

// Names of system calls, resolved before the filter engages: the SIGSYS handler may not
// allocate.
constexpr int kMaxSyscall = 512;
std::array<std::array<char, 32>, kMaxSyscall> g_syscall_names{};

void fill_syscall_names() {
  for (int nr = 0; nr < kMaxSyscall; ++nr) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (name != nullptr) {
      std::strncpy(g_syscall_names[static_cast<std::size_t>(nr)].data(), name, 31);
      std::free(name);  // NOLINT(cppcoreguidelines-no-malloc): libseccomp's allocation
    }
  }
}

void append(char* buf, std::size_t& len, std::size_t cap, const char* s) {
  while (*s != '\0' && len + 1 < cap) {
    buf[len++] = *s++;
  }
}

void append_number(char* buf, std::size_t& len, std::size_t cap, long v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && n < 23);
  while (n > 0 && len + 1 < cap) {
    buf[len++] = digits[--n];
  }
}

/// Says which system call broke the rules, then dies of SIGSYS as the filter intends.
void on_sigsys(int /*sig*/, siginfo_t* info, void* /*context*/) {
  char msg[160];
  std::size_t len = 0;
  append(msg, len, sizeof msg, "skit worker ");
  append_number(msg, len, sizeof msg, static_cast<long>(::getpid()));
  append(msg, len, sizeof msg, ": sandbox violation: system call ");
  const int nr = info->si_syscall;
  append_number(msg, len, sizeof msg, nr);
  if (nr >= 0 && nr < kMaxSyscall && g_syscall_names[static_cast<std::size_t>(nr)][0] != '\0') {
    append(msg, len, sizeof msg, " (");
    append(msg, len, sizeof msg, g_syscall_names[static_cast<std::size_t>(nr)].data());
    append(msg, len, sizeof msg, ")");
  }
  append(msg, len, sizeof msg, "\n");
  [[maybe_unused]] const auto written = ::write(STDERR_FILENO, msg, len);
  ::signal(SIGSYS, SIG_DFL);
  ::raise(SIGSYS);  // delivered when the handler returns: the process ends with SIGSYS
}

}  // namespace

Status apply_sandbox(const SandboxPolicy& policy) {
  SKIT_RETURN_IF_ERROR(set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE"));
  SKIT_RETURN_IF_ERROR(set_limit(RLIMIT_NOFILE, policy.max_open_files, "RLIMIT_NOFILE"));
  if (policy.address_space_bytes > 0) {
    SKIT_RETURN_IF_ERROR(set_limit(RLIMIT_AS, policy.address_space_bytes, "RLIMIT_AS"));
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return Status(ErrorCode::kInternal,
                  std::string("PR_SET_NO_NEW_PRIVS failed: ") + std::strerror(errno));
  }
  fill_syscall_names();
  struct sigaction sa {};
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGSYS, &sa, nullptr);
  // TRAP rather than KILL so the handler above can name the call; the process still dies.
  std::unique_ptr<void, FilterDeleter> filter(seccomp_init(SCMP_ACT_TRAP));
  if (!filter) {
    return Status(ErrorCode::kInternal, "seccomp_init failed");
  }
  for (int nr : kAllowed) {
    if (seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, nr, 0) != 0) {
      return Status(ErrorCode::kInternal, "seccomp_rule_add failed for syscall " +
                                              std::to_string(nr));
    }
  }
  for (int nr : kRefused) {
    if (seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(EPERM), nr, 0) != 0) {
      return Status(ErrorCode::kInternal, "seccomp_rule_add failed for syscall " +
                                              std::to_string(nr));
    }
  }
  // ZeroMQ threads re-apply their (default) scheduling policy when they start, possibly after
  // the filter engaged, and abort if refused: allow SCHED_OTHER only, never real-time.
  if (seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(sched_setscheduler), 1,
                       SCMP_A1(SCMP_CMP_EQ, SCHED_OTHER)) != 0 ||
      seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(sched_setscheduler), 1,
                       SCMP_A1(SCMP_CMP_NE, SCHED_OTHER)) != 0) {
    return Status(ErrorCode::kInternal, "seccomp scheduler rule failed");
  }
#if defined(__x86_64__)
  // arch_prctl: the queries, and asking for the AMX tile state (onnxruntime does before its
  // AMX kernels, on CPUs that have them); setting cpuid faulting or FS/GS stays forbidden.
  for (const unsigned long op : {0x1003UL /* ARCH_GET_FS */, 0x1004UL /* ARCH_GET_GS */,
                                 0x1011UL /* ARCH_GET_CPUID */, 0x1021UL /* ARCH_GET_XCOMP_SUPP */,
                                 0x1022UL /* ARCH_GET_XCOMP_PERM */, 0x1023UL /* ARCH_REQ_XCOMP_PERM */,
                                 0x3001UL /* ARCH_CET_STATUS */}) {
    if (seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(arch_prctl), 1,
                         SCMP_A0(SCMP_CMP_EQ, op)) != 0) {
      return Status(ErrorCode::kInternal, "seccomp arch_prctl rule failed");
    }
  }
#endif
  // Threads yes, processes no: clone only with CLONE_THREAD; clone3 hides its flags in
  // memory, so it reports ENOSYS and glibc falls back to clone.
  if (seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) != 0 ||
      seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0) {
    return Status(ErrorCode::kInternal, "seccomp clone rule failed");
  }
  // Sockets: Unix domain always (ZeroMQ doorbells reconnect lazily); IP only if allowed.
  int rc = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                            SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
  if (rc == 0 && policy.allow_network) {
    rc = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                          SCMP_A0(SCMP_CMP_EQ, AF_INET));
    if (rc == 0) {
      rc = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                            SCMP_A0(SCMP_CMP_EQ, AF_INET6));
    }
    // Route netlink only: getifaddrs(), how ICE (libnice) lists the local addresses.
    if (rc == 0) {
      rc = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                            SCMP_A0(SCMP_CMP_EQ, AF_NETLINK), SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE));
    }
  }
  if (rc != 0) {
    return Status(ErrorCode::kInternal, "seccomp socket rule failed");
  }
  // Signals only to the node-owned children registered before the sandbox (a script node's
  // Node.js), so that a runaway child can be stopped; never to any other process.
  for (pid_t child : signal_targets()) {
    if (seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                         SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(child))) != 0) {
      return Status(ErrorCode::kInternal, "seccomp kill rule failed");
    }
    if (seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(wait4), 1,
                         SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(child))) != 0) {
      return Status(ErrorCode::kInternal, "seccomp wait4 rule failed");
    }
  }
  // Apply to every thread, including ZeroMQ's I/O thread started earlier.
  if (seccomp_attr_set(filter.get(), SCMP_FLTATR_CTL_TSYNC, 1) != 0) {
    return Status(ErrorCode::kInternal, "seccomp TSYNC unsupported");
  }
  if (seccomp_load(filter.get()) != 0) {
    return Status(ErrorCode::kInternal, std::string("seccomp_load failed: ") + std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace skit::worker
