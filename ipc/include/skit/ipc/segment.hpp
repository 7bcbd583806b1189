// SPDX-License-Identifier: MPL-2.0
// A named POSIX shared-memory segment (Boost.Interprocess), mapped read-write.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "skit/core/status.hpp"

namespace skit::ipc {

/// RAII mapping of a segment. The creator owns the name and unlinks it on destruction;
/// openers only unmap.
class SharedSegment {
 public:
  static Result<SharedSegment> create(const std::string& name, std::size_t bytes);
  static Result<SharedSegment> open(const std::string& name);

  SharedSegment(SharedSegment&&) noexcept;
  SharedSegment& operator=(SharedSegment&&) noexcept;
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
  ~SharedSegment();

  [[nodiscard]] void* data() const;
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] const std::string& name() const { return name_; }
  /// Unlinks the name now (existing mappings stay valid).
  void unlink();

 private:
  struct Impl;
  SharedSegment(std::string name, std::unique_ptr<Impl> impl, bool owner);
  std::string name_;
  std::unique_ptr<Impl> impl_;
  bool owner_ = false;
};

/// Names of segments in /dev/shm that start with `prefix`.
std::vector<std::string> list_segments(const std::string& prefix);

/// Removes segments left by skit processes that no longer exist ("skit-<pid>-...").
/// Returns how many were removed.
std::size_t remove_stale_segments();

}  // namespace skit::ipc
