// SPDX-License-Identifier: MPL-2.0
// Spawning and sandboxing the Node.js child of a core::script node. The child is forked from
// the (not yet sandboxed) worker and, before execve(node), confines itself:
//   - no_new_privs, no core dumps, death with its parent;
//   - Landlock (when the kernel has it): execute only the node binary and its ELF interpreter,
//     read only the shared libraries and time zone data, write nothing;
//   - seccomp: no fork/vfork, clone only of threads, no sockets at all, no ptrace, no
//     signals but to itself, no mount/namespaces/bpf/keyrings/modules, no io_uring.
// Its only channel is one Unix socket pair (fd 3 and 4 in the child). The seccomp program is
// built by the parent once it knows the child's pid (libseccomp allocates, which a forked
// child of a threaded process must not) and handed to the child over a pipe.
#include "script_process.hpp"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sched.h>

#include "skit/core/child_processes.hpp"

extern "C" {
extern const char skit_script_runner_js[];
extern const unsigned long skit_script_runner_js_size;
}

namespace skit::nodes::script {

namespace {

using Clock = std::chrono::steady_clock;

Status errno_status(const std::string& what) {
  return Status(ErrorCode::kInternal, what + ": " + std::strerror(errno));
}

// ---- Landlock ---------------------------------------------------------------------------

int landlock_abi() {
#ifdef SYS_landlock_create_ruleset
  const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0,
                             LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
#else
  return 0;
#endif
}

constexpr std::uint64_t kFileRights =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE;

void add_rule(int ruleset, const std::string& path, std::uint64_t access) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!fd.valid()) {
    return;  // not on this system: nothing to grant
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return;
  }
  landlock_path_beneath_attr rule{};
  rule.allowed_access = S_ISDIR(st.st_mode) ? access : (access & kFileRights);
  rule.parent_fd = fd.get();
  ::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
}

/// A ruleset fd for the child, or an invalid fd when Landlock is unavailable.
UniqueFd make_landlock_ruleset(int abi, const std::string& node) {
  if (abi < 1) {
    return {};
  }
  std::uint64_t handled = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                          LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
                          LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                          LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
                          LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
                          LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                          LANDLOCK_ACCESS_FS_MAKE_SYM;
#ifdef LANDLOCK_ACCESS_FS_REFER
  if (abi >= 2) handled |= LANDLOCK_ACCESS_FS_REFER;
#endif
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
  if (abi >= 3) handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = handled;
  const long fd = ::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (fd < 0) {
    return {};
  }
  UniqueFd ruleset(static_cast<int>(fd));
  constexpr std::uint64_t kRead = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
  constexpr std::uint64_t kExec = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE;
  add_rule(ruleset.get(), node, kExec);
  // The ELF interpreter is opened for execution by the kernel during execve.
  for (const char* dir : {"/lib64", "/lib", "/usr/lib64", "/usr/lib"}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("ld-linux", 0) == 0) {
        add_rule(ruleset.get(), std::filesystem::canonical(e.path(), ec).string(), kExec);
      }
    }
  }
  for (const char* dir : {"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/share/zoneinfo",
                          "/etc/ld.so.cache", "/etc/localtime", "/dev/null", "/dev/urandom"}) {
    add_rule(ruleset.get(), dir, kRead);
  }
  return ruleset;
}

// ---- seccomp ----------------------------------------------------------------------------

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

Status deny(scmp_filter_ctx f, int nr, int err) {
  if (nr < 0) {
    return Status::ok();  // not a system call on this architecture
  }
  if (seccomp_rule_add(f, SCMP_ACT_ERRNO(static_cast<std::uint32_t>(err)), nr, 0) != 0) {
    return Status(ErrorCode::kInternal, "seccomp rule for syscall " + std::to_string(nr) + " failed");
  }
  return Status::ok();
}

/// The child's filter as raw BPF (struct sock_filter[]).
Result<std::string> build_child_filter(pid_t child) {
  std::unique_ptr<void, FilterDeleter> f(seccomp_init(SCMP_ACT_ALLOW));
  if (!f) {
    return Status(ErrorCode::kInternal, "seccomp_init failed");
  }
  for (int nr : {SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv),
                 SCMP_SYS(process_vm_writev), SCMP_SYS(kcmp), SCMP_SYS(mount), SCMP_SYS(umount2),
                 SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(unshare), SCMP_SYS(setns),
                 SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(keyctl), SCMP_SYS(add_key),
                 SCMP_SYS(request_key), SCMP_SYS(init_module), SCMP_SYS(finit_module),
                 SCMP_SYS(delete_module), SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load),
                 SCMP_SYS(reboot), SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(userfaultfd),
                 SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at), SCMP_SYS(acct),
                 SCMP_SYS(settimeofday), SCMP_SYS(clock_settime), SCMP_SYS(clock_adjtime),
                 SCMP_SYS(adjtimex), SCMP_SYS(syslog), SCMP_SYS(quotactl), SCMP_SYS(pidfd_open),
                 SCMP_SYS(pidfd_getfd), SCMP_SYS(pidfd_send_signal), SCMP_SYS(socket),
                 SCMP_SYS(socketpair), SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(listen),
                 SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(iopl), SCMP_SYS(ioperm),
                 SCMP_SYS(mknod), SCMP_SYS(mknodat)}) {
    SKIT_RETURN_IF_ERROR(deny(f.get(), nr, EPERM));
  }
  // Refused as missing, so that libuv and glibc fall back to what they did before.
  for (int nr : {SCMP_SYS(clone3), SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter),
                 SCMP_SYS(io_uring_register)}) {
    SKIT_RETURN_IF_ERROR(deny(f.get(), nr, ENOSYS));
  }
  const auto self = static_cast<scmp_datum_t>(child);
  bool ok = seccomp_rule_add(f.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)) == 0;
  for (int nr : {SCMP_SYS(kill), SCMP_SYS(tkill), SCMP_SYS(tgkill)}) {
    ok = ok && seccomp_rule_add(f.get(), SCMP_ACT_ERRNO(EPERM), nr, 1,
                                SCMP_A0(SCMP_CMP_NE, self)) == 0;
  }
  ok = ok && seccomp_rule_add(f.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_EQ, TIOCSTI)) == 0;
  if (!ok) {
    return Status(ErrorCode::kInternal, "seccomp argument rule failed");
  }
  // Export through a pipe: libseccomp 2.5 (Debian 12) exports to file descriptors only.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return errno_status("pipe2");
  }
  UniqueFd rd(fds[0]), wr(fds[1]);
  ::fcntl(wr.get(), F_SETPIPE_SZ, 1 << 20);
  if (seccomp_export_bpf(f.get(), wr.get()) != 0) {
    return Status(ErrorCode::kInternal, "seccomp_export_bpf failed");
  }
  wr.reset();
  std::string bpf;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(rd.get(), buf, sizeof buf)) > 0) {
    bpf.append(buf, static_cast<std::size_t>(n));
  }
  return bpf;
}

// ---- the child --------------------------------------------------------------------------

constexpr int kChildFd = 3;       // fd 3 and 4 in the child: the socket to the worker
constexpr int kFilterFd = 5;      // the seccomp program, then EOF
constexpr int kLandlockFd = 6;    // the ruleset, or absent
constexpr std::size_t kMaxFilterBytes = 64 * 1024;

[[noreturn]] void child_main(pid_t parent, int sock, int filter_rd, int ruleset, int devnull,
                             const char* path, char* const* argv, char* const* envp,
                             char* filter_buf) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) {
    ::_exit(126);
  }
  // Lift the fds we keep above every target first, so that no dup2 below clobbers another.
  const int hi_sock = ::fcntl(sock, F_DUPFD, 100);
  const int hi_filter = ::fcntl(filter_rd, F_DUPFD, 100);
  const int hi_ruleset = ruleset >= 0 ? ::fcntl(ruleset, F_DUPFD, 100) : -1;
  const int hi_null = ::fcntl(devnull, F_DUPFD, 100);
  if (hi_sock < 0 || hi_filter < 0 || hi_null < 0 || (ruleset >= 0 && hi_ruleset < 0)) {
    ::_exit(125);
  }
  ::dup2(hi_null, 0);
  ::dup2(STDERR_FILENO, 1);  // stray output of Node itself goes to the worker's log
  ::dup2(hi_sock, kChildFd);
  ::dup2(hi_sock, kChildFd + 1);
  ::dup2(hi_filter, kFilterFd);
  int ll = -1;
  if (hi_ruleset >= 0) {
    ::dup2(hi_ruleset, kLandlockFd);
    ll = kLandlockFd;
  }
  ::syscall(SYS_close_range, ll >= 0 ? kLandlockFd + 1 : kLandlockFd, ~0U, 0);
  rlimit zero{0, 0};
  ::setrlimit(RLIMIT_CORE, &zero);
  ::setrlimit(RLIMIT_FSIZE, &zero);
  std::size_t got = 0;
  while (got < kMaxFilterBytes) {
    const ssize_t n = ::read(kFilterFd, filter_buf + got, kMaxFilterBytes - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(kFilterFd);
  if (got == 0 || got % sizeof(sock_filter) != 0) {
    ::_exit(124);  // the parent could not build the filter: never run unconfined
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    ::_exit(123);
  }
  if (ll >= 0) {
    if (::syscall(SYS_landlock_restrict_self, ll, 0) != 0) {
      ::_exit(122);
    }
    ::close(ll);
  }
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(got / sizeof(sock_filter));
  prog.filter = reinterpret_cast<sock_filter*>(filter_buf);
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    ::_exit(121);
  }
  ::execve(path, argv, envp);
  ::_exit(127);
}

}  // namespace

std::string_view runner_source() {
  return {skit_script_runner_js, static_cast<std::size_t>(skit_script_runner_js_size)};
}

Result<std::string> find_node(const std::string& hint) {
  std::error_code ec;
  if (!hint.empty()) {
    auto p = std::filesystem::canonical(hint, ec);
    if (ec) {
      return Status(ErrorCode::kNotFound, "Node.js binary '" + hint + "' not found");
    }
    return p.string();
  }
  const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe)
  std::string_view rest = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    for (const char* name : {"node", "nodejs"}) {
      const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) {
        auto p = std::filesystem::canonical(candidate, ec);
        if (!ec) {
          return p.string();
        }
      }
    }
    if (colon == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(colon + 1);
  }
  return Status(ErrorCode::kFailedPrecondition,
                "core::script needs Node.js 18 or newer on PATH (Debian: apt-get install nodejs)");
}

ScriptProcess::~ScriptProcess() {
  if (pid_ > 0) {
    to_child_.reset();
    from_child_.reset();
    kill();
  }
}

Status ScriptProcess::spawn(const ProcessOptions& options, SandboxReport* report) {
  auto node = find_node(options.node_binary);
  if (!node) {
    return node.status();
  }
  const int abi = landlock_abi();
  if (report != nullptr) {
    report->landlock_abi = abi;
  }
  UniqueFd ruleset = make_landlock_ruleset(abi, *node);

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return errno_status("socketpair");
  }
  UniqueFd mine(sv[0]), theirs(sv[1]);
  int pf[2];
  if (::pipe2(pf, O_CLOEXEC) != 0) {
    return errno_status("pipe2");
  }
  UniqueFd filter_rd(pf[0]), filter_wr(pf[1]);
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  // Everything the child touches is made before fork: it may not allocate.
  std::vector<std::string> args = {*node,
                                   "--max-old-space-size=" + std::to_string(options.heap_limit_mb),
                                   "--disallow-code-generation-from-strings",
                                   "--no-addons", "--no-warnings"};
  if (options.extra_args.empty()) {
    args.emplace_back("-e");
    args.emplace_back(runner_source());
  } else {
    args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  }
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::string env_lang = "LANG=C.UTF-8";
  std::string env_tz = "TZ=UTC";
  std::string env_ssl = "OPENSSL_CONF=/dev/null";  // /etc/ssl is outside the Landlock grant
  std::array<char*, 4> envp = {env_lang.data(), env_tz.data(), env_ssl.data(), nullptr};
  auto filter_buf = std::make_unique<char[]>(kMaxFilterBytes);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    return errno_status("fork");
  }
  if (pid == 0) {
    child_main(parent, theirs.get(), filter_rd.get(), ruleset.get(), devnull.get(),
               args[0].c_str(), argv.data(), envp.data(), filter_buf.get());
  }
  pid_ = pid;
  alive_ = true;
  allow_signals_to(pid);
  theirs.reset();
  filter_rd.reset();
  auto bpf = build_child_filter(pid);
  if (!bpf) {
    filter_wr.reset();  // the child sees no filter and exits
    kill();
    return bpf.status();
  }
  std::size_t off = 0;
  while (off < bpf->size()) {
    const ssize_t n = ::write(filter_wr.get(), bpf->data() + off, bpf->size() - off);
    if (n <= 0) {
      kill();
      return errno_status("handing the sandbox to the Node.js child");
    }
    off += static_cast<std::size_t>(n);
  }
  filter_wr.reset();
  to_child_ = UniqueFd(::dup(mine.get()));
  from_child_ = std::move(mine);
  ::fcntl(from_child_.get(), F_SETFD, FD_CLOEXEC);
  ::fcntl(to_child_.get(), F_SETFD, FD_CLOEXEC);
  const std::string statm = "/proc/" + std::to_string(pid) + "/statm";
  statm_ = UniqueFd(::open(statm.c_str(), O_RDONLY | O_CLOEXEC));
  return Status::ok();
}

Status ScriptProcess::send(Frame type, std::string_view payload) {
  if (!alive_) {
    return Status(ErrorCode::kUnavailable, "the script process has ended");
  }
  std::array<char, 5> head{};
  const auto len = static_cast<std::uint32_t>(payload.size());
  std::memcpy(head.data(), &len, 4);  // little-endian hosts only (x86-64, arm64)
  head[4] = static_cast<char>(type);
  iovec iov[2] = {{head.data(), head.size()},
                  {const_cast<char*>(payload.data()), payload.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  std::size_t total = head.size() + payload.size();
  while (total > 0) {
    const ssize_t n = ::sendmsg(to_child_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      alive_ = false;
      return Status(ErrorCode::kUnavailable, std::string("the script process went away: ") +
                                                 std::strerror(errno));
    }
    total -= static_cast<std::size_t>(n);
    // Advance the iovecs past what was written.
    auto left = static_cast<std::size_t>(n);
    while (left > 0 && msg.msg_iovlen > 0) {
      if (left >= msg.msg_iov[0].iov_len) {
        left -= msg.msg_iov[0].iov_len;
        ++msg.msg_iov;
        --msg.msg_iovlen;
      } else {
        msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + left;
        msg.msg_iov[0].iov_len -= left;
        left = 0;
      }
    }
  }
  return Status::ok();
}

Status ScriptProcess::read_exact(char* out, std::size_t n, Clock::time_point deadline) {
  while (buffer_.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) {
      return Status(ErrorCode::kDeadlineExceeded, "no answer from the script process");
    }
    pollfd p{from_child_.get(), POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count() + 1, 1000)));
    if (rc < 0 && errno != EINTR) {
      return errno_status("poll");
    }
    if (rc <= 0) {
      continue;
    }
    char buf[65536];
    const ssize_t got = ::recv(from_child_.get(), buf, sizeof buf, 0);
    if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
      alive_ = false;
      return Status(ErrorCode::kUnavailable, "the script process ended");
    }
    if (got > 0) {
      buffer_.append(buf, static_cast<std::size_t>(got));
    }
  }
  std::memcpy(out, buffer_.data(), n);
  buffer_.erase(0, n);
  return Status::ok();
}

Result<ScriptProcess::Received> ScriptProcess::receive(Clock::time_point deadline) {
  if (!alive_) {
    return Status(ErrorCode::kUnavailable, "the script process has ended");
  }
  std::array<char, 5> head{};
  SKIT_RETURN_IF_ERROR(read_exact(head.data(), head.size(), deadline));
  std::uint32_t len = 0;
  std::memcpy(&len, head.data(), 4);
  Received r{static_cast<Frame>(head[4]), std::string(len, '\0')};
  if (len > 0) {
    // The header arrived: the rest follows at once; a generous deadline covers big frames.
    SKIT_RETURN_IF_ERROR(read_exact(r.payload.data(), len,
                                    std::max(deadline, Clock::now() + std::chrono::seconds(5))));
  }
  return r;
}

std::uint64_t ScriptProcess::rss_bytes() const {
  if (!statm_.valid()) {
    return 0;
  }
  char buf[128] = {};
  const ssize_t n = ::pread(statm_.get(), buf, sizeof buf - 1, 0);
  if (n <= 0) {
    return 0;
  }
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) {  // NOLINT(cert-err34-c)
    return 0;
  }
  static const long page = ::sysconf(_SC_PAGESIZE);
  return resident * static_cast<std::uint64_t>(page);
}

void ScriptProcess::kill() {
  if (pid_ > 0 && alive_) {
    ::kill(pid_, SIGKILL);
  }
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);  // wait4(pid) is allowed by the worker sandbox
    pid_ = -1;
  }
  alive_ = false;
}

}  // namespace skit::nodes::script
