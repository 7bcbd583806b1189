// SPDX-License-Identifier: MPL-2.0
#include "skit/supervisor/path_policy.hpp"

#include <nlohmann/json.hpp>

namespace skit::supervisor {

namespace fs = std::filesystem;

bool glob_match(std::string_view pattern, std::string_view path) {
  if (pattern.empty()) {
    return path.empty();
  }
  if (pattern.substr(0, 2) == "**") {
    std::string_view rest = pattern.substr(2);
    if (!rest.empty() && rest[0] == '/' && glob_match(rest.substr(1), path)) {
      return true;  // "**/" also matches no directory at all
    }
    for (std::size_t i = 0; i <= path.size(); ++i) {
      if (glob_match(rest, path.substr(i))) {
        return true;
      }
    }
    return false;
  }
  if (pattern[0] == '*') {
    for (std::size_t i = 0; i <= path.size(); ++i) {
      if (glob_match(pattern.substr(1), path.substr(i))) {
        return true;
      }
      if (i < path.size() && path[i] == '/') {
        break;  // a single '*' stays within one segment
      }
    }
    return false;
  }
  if (path.empty()) {
    return false;
  }
  if (pattern[0] == '?' ? path[0] != '/' : pattern[0] == path[0]) {
    return glob_match(pattern.substr(1), path.substr(1));
  }
  return false;
}

PathPolicy::PathPolicy(fs::path base_dir, std::vector<std::string> read_patterns,
                       std::vector<std::string> write_patterns)
    : base_(fs::weakly_canonical(base_dir)),
      read_(std::move(read_patterns)),
      write_(std::move(write_patterns)) {}

Result<fs::path> PathPolicy::check(const std::string& path, bool write) const {
  const auto& patterns = write ? write_ : read_;
  const char* key = write ? "security.allowed_write_paths" : "security.allowed_file_paths";
  if (path.empty()) {
    return Status(ErrorCode::kInvalidParam, "empty path");
  }
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(base_ / path, ec);
  if (ec) {
    return Status(ErrorCode::kPermissionDenied, "cannot resolve path '" + path + "'");
  }
  const fs::path relative = resolved.lexically_relative(base_);
  const bool inside = !relative.empty() && *relative.begin() != "..";
  for (const auto& pattern : patterns) {
    const bool absolute_pattern = !pattern.empty() && pattern[0] == '/';
    const std::string subject = absolute_pattern ? resolved.string() : relative.string();
    if ((absolute_pattern || inside) && glob_match(pattern, subject)) {
      return resolved;
    }
  }
  std::string allowed;
  for (const auto& p : patterns) {
    allowed += (allowed.empty() ? "" : ", ") + p;
  }
  return Status(ErrorCode::kPermissionDenied,
                std::string(write ? "writing" : "reading") + " '" + path + "' is not allowed" +
                    (resolved.string() != path ? " (resolves to " + resolved.string() + ")" : "") +
                    "; " + key + " is [" + allowed + "]");
}

Status PathPolicy::check_node(const v1::NodeSpec& node) const {
  const bool reader = node.kind() == "core::file_reader";
  const bool writer = node.kind() == "core::file_writer";
  if (!reader && !writer) {
    return Status::ok();
  }
  const auto params = nlohmann::json::parse(node.params_json(), nullptr, false);
  const std::string path = params.is_object() && params.contains("path") && params["path"].is_string()
                               ? params["path"].get<std::string>()
                               : std::string();
  auto r = check(path, writer);
  if (r) {
    return Status::ok();
  }
  Status s = r.status();
  s.where().node_id = node.id();
  s.where().param = "path";
  s.where().line = node.position().line();
  s.where().column = node.position().column();
  return s;
}

std::vector<Status> PathPolicy::check_pipeline(const v1::Pipeline& pipeline) const {
  std::vector<Status> errors;
  for (const auto& node : pipeline.nodes()) {
    if (Status s = check_node(node); !s.is_ok()) {
      errors.push_back(std::move(s));
    }
  }
  return errors;
}

}  // namespace skit::supervisor
