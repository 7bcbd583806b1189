// SPDX-License-Identifier: MPL-2.0
#include "output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace skit::cli {

Status OutputFile::open(const std::string& path) {
  path_ = path;
  if (path == "-") {
    stdout_ = true;
    fd_ = STDOUT_FILENO;
    return Status::ok();
  }
  const std::filesystem::path dest(path);
  const std::filesystem::path dir = dest.has_parent_path() ? dest.parent_path() : ".";
  std::string pattern = (dir / ("." + dest.filename().string() + ".skit-XXXXXX")).string();
  fd_ = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd_ < 0) {
    return Status(ErrorCode::kPermissionDenied,
                  "cannot create output '" + path + "': " + std::strerror(errno));
  }
  ::fchmod(fd_, 0644 & ~[] {
    const mode_t m = ::umask(0);
    ::umask(m);
    return m;
  }());
  temp_ = pattern;
  return Status::ok();
}

Status OutputFile::commit() {
  if (stdout_ || fd_ < 0) {
    return Status::ok();
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    ::unlink(temp_.c_str());
    return Status(ErrorCode::kUnavailable, "writing '" + path_ + "': " + std::strerror(errno));
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_.c_str());
    return Status(ErrorCode::kPermissionDenied,
                  "cannot move the output to '" + path_ + "': " + std::strerror(err));
  }
  temp_.clear();
  return Status::ok();
}

OutputFile::~OutputFile() {
  if (!stdout_ && fd_ >= 0) {
    ::close(fd_);
  }
  if (!temp_.empty()) {
    ::unlink(temp_.c_str());
  }
}

}  // namespace skit::cli
