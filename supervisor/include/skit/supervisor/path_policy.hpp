// SPDX-License-Identifier: MPL-2.0
// File path allow-lists for core::file_reader / core::file_writer, with StreamKit's keys
// (security.allowed_file_paths, security.allowed_write_paths). Paths are canonicalized first
// (symlinks and '..' resolved), then matched against glob patterns relative to a base
// directory: '*' matches within one path segment, '**' across segments.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "skit/core/status.hpp"
#include "skit/v1/pipeline.pb.h"

namespace skit::supervisor {

/// True when `path` (relative, '/'-separated) matches `pattern`.
bool glob_match(std::string_view pattern, std::string_view path);

class PathPolicy {
 public:
  PathPolicy(std::filesystem::path base_dir, std::vector<std::string> read_patterns,
             std::vector<std::string> write_patterns);

  /// Resolves `path` and checks it against the read or write list; the error names the path
  /// and the list it is not in.
  Result<std::filesystem::path> check(const std::string& path, bool write) const;

  /// Checks one node: the `path` of a core::file_reader (read list) or core::file_writer
  /// (write list); other kinds pass. The error carries node id, param and YAML position.
  [[nodiscard]] Status check_node(const v1::NodeSpec& node) const;

  /// Checks every file node of `pipeline`; errors carry node id, param and YAML position.
  std::vector<Status> check_pipeline(const v1::Pipeline& pipeline) const;

  [[nodiscard]] const std::filesystem::path& base_dir() const { return base_; }

 private:
  std::filesystem::path base_;
  std::vector<std::string> read_;
  std::vector<std::string> write_;
};

}  // namespace skit::supervisor
