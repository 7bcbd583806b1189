// SPDX-License-Identifier: MPL-2.0
// The --output of `skit run`: written under a temporary name beside the destination and renamed
// over it only when the run succeeds, so that a failed or interrupted run leaves no empty or
// partial file and never clobbers an earlier good one ('-' is standard output, written as it
// comes).
#pragma once

#include <string>

#include "skit/core/status.hpp"

namespace skit::cli {

class OutputFile {
 public:
  OutputFile() = default;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();  // not committed: the temporary file is removed

  /// Creates the temporary file for `path` (or takes stdout for "-").
  Status open(const std::string& path);
  [[nodiscard]] int fd() const { return fd_; }
  /// Flushes and renames the temporary file to the destination.
  Status commit();

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
  bool stdout_ = false;
};

}  // namespace skit::cli
