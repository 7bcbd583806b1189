// SPDX-License-Identifier: MPL-2.0
// File path allow-lists, with StreamKit's keys (security.allowed_file_paths,
// security.allowed_write_paths), for every param that a node kind declares as a file path
// (ParamFieldRef::file_path): the policy knows no kind by name. Paths are canonicalized first
// (symlinks and '..' resolved, relative ones against the base directory), then matched against
// glob patterns relative to the base directory: '*' matches within one path segment, '**'
// across segments. A checked path is written back into the params as that canonical absolute
// path, which the worker opens following no symbolic link: the node opens exactly what was
// checked, whatever the server's working directory.
//
// The same pass checks every param declared as a URL the node downloads
// (ParamFieldRef::fetch_url) against security.allowed_fetch_urls, so that a refused URL is
// reported with its node and YAML place before any worker starts; and every param declared as
// a port the node listens on (ParamFieldRef::listen_port) against transports.listen_ports.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "skit/core/registry.hpp"
#include "skit/core/status.hpp"
#include "skit/core/url_policy.hpp"
#include "skit/v1/pipeline.pb.h"

namespace skit::supervisor {

/// True when `path` (relative, '/'-separated) matches `pattern`.
bool glob_match(std::string_view pattern, std::string_view path);

class PathPolicy {
 public:
  PathPolicy(std::filesystem::path base_dir, std::vector<std::string> read_patterns,
             std::vector<std::string> write_patterns,
             UrlPolicy fetch_urls = UrlPolicy(kFetchPolicyKey));

  /// Resolves `path` and checks it against the read or write list (the error names the path
  /// and the list it is not in, kPermissionDenied), then that a file to read exists and a file
  /// to write has an existing directory (kInvalidParam). Returns the canonical absolute path.
  Result<std::filesystem::path> check(const std::string& path, bool write) const;

  /// Checks every file-path param that `descriptor` declares, in `params` (a JSON object), and
  /// rewrites each to the canonical absolute path that passed. Every problem is returned, with
  /// SourceLocation::param set.
  std::vector<Status> confine(const NodeDescriptor& descriptor, Json& params) const;

  /// The same for one node of a pipeline (its params_json is rewritten); errors carry node id,
  /// param and YAML position. Unknown kinds pass (the compiler names them).
  std::vector<Status> confine_node(v1::NodeSpec& node) const;

  /// Every node of `pipeline`.
  std::vector<Status> confine_pipeline(v1::Pipeline& pipeline) const;

  /// Ports that listening nodes may use (transports.listen_ports); none by default.
  void set_listen_ports(int first, int last) {
    first_port_ = first;
    last_port_ = last;
  }

  [[nodiscard]] const std::filesystem::path& base_dir() const { return base_; }

 private:
  std::filesystem::path base_;
  std::vector<std::string> read_;
  std::vector<std::string> write_;
  UrlPolicy fetch_;
  int first_port_ = 0;  // 0: no port may be listened on
  int last_port_ = 0;
};

}  // namespace skit::supervisor
