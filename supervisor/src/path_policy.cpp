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
                       std::vector<std::string> write_patterns, UrlPolicy fetch_urls)
    : base_(fs::weakly_canonical(base_dir)),
      read_(std::move(read_patterns)),
      write_(std::move(write_patterns)),
      fetch_(std::move(fetch_urls)) {}

namespace {
/// An allowed path still has to name something usable: found before any worker starts, with
/// the node and param named, instead of a worker failing in prepare().
Result<fs::path> exists_as_needed(const std::string& path, const fs::path& resolved, bool write) {
  std::error_code ec;
  if (write) {
    const fs::path dir = resolved.parent_path();
    if (!fs::is_directory(dir, ec)) {
      return Status(ErrorCode::kInvalidParam,
                    "cannot write '" + path + "': directory " + dir.string() + " does not exist");
    }
    if (fs::is_directory(resolved, ec)) {
      return Status(ErrorCode::kInvalidParam,
                    "cannot write '" + path + "': " + resolved.string() + " is a directory");
    }
    return resolved;
  }
  const auto status = fs::status(resolved, ec);
  if (!fs::exists(status)) {
    return Status(ErrorCode::kInvalidParam,
                  "file '" + path + "' does not exist" +
                      (resolved.string() != path ? " (resolves to " + resolved.string() + ")" : ""));
  }
  if (fs::is_directory(status)) {
    return Status(ErrorCode::kInvalidParam, "'" + path + "' is a directory, not a file");
  }
  return resolved;
}
}  // namespace

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
      return exists_as_needed(path, resolved, write);
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

std::vector<Status> PathPolicy::confine(const NodeDescriptor& descriptor, Json& params) const {
  std::vector<Status> errors;
  if (descriptor.params == nullptr || !params.is_object()) {
    return errors;
  }
  for (const auto& field : descriptor.params->fields()) {
    if (field.listen_port) {
      auto it = params.find(field.name);
      if (it == params.end() || !it->is_number_integer()) {
        continue;  // absent or mistyped: the params schema names the problem
      }
      const auto port = it->get<std::int64_t>();
      if (first_port_ == 0 || port < first_port_ || port > last_port_) {
        Status e(ErrorCode::kPermissionDenied,
                 "port " + std::to_string(port) + " is not in transports.listen_ports (" +
                     (first_port_ == 0 ? std::string("none configured")
                                       : std::to_string(first_port_) + "-" + std::to_string(last_port_)) +
                     ")");
        e.where().param = field.name;
        errors.push_back(std::move(e));
      }
      continue;
    }
    if (field.fetch_url) {
      auto it = params.find(field.name);
      if (it == params.end() || !it->is_string()) {
        continue;  // absent or mistyped: the params schema names the problem
      }
      auto url = parse_url(it->get<std::string>(), kFetchSchemes);  // the node checks its own scheme
      Status e = url ? Status::ok()
                     : Status(ErrorCode::kInvalidParam, url.status().message());
      if (url) {
        auto rule = fetch_.admit("GET", *url);
        if (!rule) {
          e = rule.status();
        }
      }
      if (!e.is_ok()) {
        e.where().param = field.name;
        errors.push_back(std::move(e));
      }
      continue;
    }
    if (field.file_access == FileAccess::kNone) {
      continue;
    }
    auto it = params.find(field.name);
    if (it == params.end() || !it->is_string()) {
      continue;  // absent or mistyped: the params schema names the problem
    }
    auto checked = check(it->get<std::string>(), field.file_access == FileAccess::kWrite);
    if (!checked) {
      Status e = checked.status();
      e.where().param = field.name;
      errors.push_back(std::move(e));
      continue;
    }
    *it = checked->string();
  }
  return errors;
}

std::vector<Status> PathPolicy::confine_node(v1::NodeSpec& node) const {
  const NodeDescriptor* d = NodeRegistry::builtin().find(node.kind());
  if (d == nullptr) {
    return {};
  }
  Json params = Json::parse(node.params_json().empty() ? "{}" : node.params_json(), nullptr,
                            /*allow_exceptions=*/false);
  if (!params.is_object()) {
    return {};
  }
  std::vector<Status> errors = confine(*d, params);
  for (Status& e : errors) {
    e.where().node_id = node.id();
    e.where().line = node.position().line();
    e.where().column = node.position().column();
  }
  node.set_params_json(params.dump());
  return errors;
}

std::vector<Status> PathPolicy::confine_pipeline(v1::Pipeline& pipeline) const {
  std::vector<Status> errors;
  for (auto& node : *pipeline.mutable_nodes()) {
    for (Status& s : confine_node(node)) {
      errors.push_back(std::move(s));
    }
  }
  return errors;
}

}  // namespace skit::supervisor
