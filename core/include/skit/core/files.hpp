// SPDX-License-Identifier: MPL-2.0
// Files that nodes open. A node declares which of its params are file paths (and whether it
// reads or writes them, ParamFieldRef::file_path), so that the supervisor can check them
// against the server's allow-lists without knowing the kind; the node then opens the path
// through its NodeContext, which in a confined run refuses every symbolic link, so that the
// file opened is exactly the canonical path that was checked (no window between the check and
// the open for a symlink swapped in).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "skit/core/status.hpp"

namespace skit {

enum class FileAccess : std::uint8_t {
  kNone,   // not a file path
  kRead,   // read by the node: security.allowed_file_paths
  kWrite,  // created or truncated by the node: security.allowed_write_paths
};

/// Owns a file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }
  void reset(int fd = -1);
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

/// Opens `path` for `access` (read: O_RDONLY; write: O_WRONLY|O_CREAT|O_TRUNC, mode 0644),
/// close-on-exec. `confined`: `path` must be absolute, and no component of it may be a
/// symbolic link (openat2 RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, or a component walk
/// with O_NOFOLLOW where openat2 is unavailable). Errors name the path: kNotFound for a missing
/// file to read, kPermissionDenied for a link or a refused open.
Result<UniqueFd> open_file(const std::string& path, FileAccess access, bool confined);

}  // namespace skit
