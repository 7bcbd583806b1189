// SPDX-License-Identifier: MPL-2.0
#include "skit/core/files.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace skit {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

namespace {

int open_flags(FileAccess access) {
  return access == FileAccess::kWrite ? (O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)
                                      : (O_RDONLY | O_CLOEXEC);
}

Status open_error(const std::string& path, FileAccess access, int err) {
  const std::string what = access == FileAccess::kWrite ? "cannot create" : "cannot open";
  if (err == ELOOP) {
    return Status(ErrorCode::kPermissionDenied,
                  what + " '" + path + "': a symbolic link in the path (only the checked, "
                                       "canonical path may be opened)");
  }
  const ErrorCode code = err == ENOENT && access == FileAccess::kRead
                             ? ErrorCode::kNotFound
                             : ErrorCode::kPermissionDenied;
  return Status(code, what + " '" + path + "': " + std::strerror(err));
}

int retry_eintr(auto&& call) {
  int r = 0;
  do {
    r = call();
  } while (r < 0 && errno == EINTR);
  return r;
}

/// The fallback of a kernel without openat2 (or a container that filters it): one openat per
/// component, each with O_NOFOLLOW, so that a link anywhere in the path fails with ELOOP.
int open_walk_nofollow(const std::string& path, int flags) {
  UniqueFd dir(retry_eintr([] { return ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC); }));
  if (!dir.valid()) {
    return -1;
  }
  std::string_view rest(path);
  while (!rest.empty() && rest.front() == '/') {
    rest.remove_prefix(1);
  }
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string part(rest.substr(0, slash));
    if (slash == std::string_view::npos) {
      return retry_eintr(
          [&] { return ::openat(dir.get(), part.c_str(), flags | O_NOFOLLOW, 0644); });
    }
    rest.remove_prefix(slash + 1);
    while (!rest.empty() && rest.front() == '/') {
      rest.remove_prefix(1);
    }
    if (part.empty() || part == "." || part == "..") {
      errno = EINVAL;
      return -1;
    }
    UniqueFd next(retry_eintr([&] {
      return ::openat(dir.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }));
    if (!next.valid()) {
      // O_PATH|O_NOFOLLOW opens a link itself; O_DIRECTORY then fails with ENOTDIR.
      if (errno == ENOTDIR) {
        struct stat st {};
        if (::fstatat(dir.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode)) {
          errno = ELOOP;
        }
      }
      return -1;
    }
    dir = std::move(next);
  }
}

}  // namespace

Result<UniqueFd> open_file(const std::string& path, FileAccess access, bool confined) {
  if (path.empty()) {
    return Status(ErrorCode::kInvalidParam, "empty file path");
  }
  const int flags = open_flags(access);
  if (!confined) {
    const int fd = retry_eintr([&] { return ::open(path.c_str(), flags, 0644); });
    if (fd < 0) {
      return open_error(path, access, errno);
    }
    return UniqueFd(fd);
  }
  if (path.front() != '/') {
    return Status(ErrorCode::kPermissionDenied,
                  "cannot open '" + path + "': not a checked absolute path");
  }
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags);
  how.mode = (flags & O_CREAT) != 0 ? 0644 : 0;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = retry_eintr([&] {
    return static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how));
  });
  if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
    fd = open_walk_nofollow(path, flags);
  }
  if (fd < 0) {
    return open_error(path, access, errno);
  }
  return UniqueFd(fd);
}

}  // namespace skit
