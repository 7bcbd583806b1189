// SPDX-License-Identifier: MPL-2.0
#include "authorization.hpp"

#include <algorithm>
#include <cctype>

namespace skit::gateway {

namespace {

constexpr Permission kAll[] = {
    Permission::kCreateSessions, Permission::kDestroySessions, Permission::kListSessions,
    Permission::kModifySessions, Permission::kTuneNodes,       Permission::kLoadPlugins,
    Permission::kDeletePlugins,  Permission::kListNodes,       Permission::kListSamples,
    Permission::kReadSamples,    Permission::kWriteSamples,    Permission::kDeleteSamples,
    Permission::kAccessAllSessions, Permission::kUploadAssets, Permission::kDeleteAssets,
    Permission::kProcessOneshot,
};

}  // namespace

std::string_view permission_name(Permission permission) {
  switch (permission) {
    case Permission::kCreateSessions: return "create_sessions";
    case Permission::kDestroySessions: return "destroy_sessions";
    case Permission::kListSessions: return "list_sessions";
    case Permission::kModifySessions: return "modify_sessions";
    case Permission::kTuneNodes: return "tune_nodes";
    case Permission::kLoadPlugins: return "load_plugins";
    case Permission::kDeletePlugins: return "delete_plugins";
    case Permission::kListNodes: return "list_nodes";
    case Permission::kListSamples: return "list_samples";
    case Permission::kReadSamples: return "read_samples";
    case Permission::kWriteSamples: return "write_samples";
    case Permission::kDeleteSamples: return "delete_samples";
    case Permission::kAccessAllSessions: return "access_all_sessions";
    case Permission::kUploadAssets: return "upload_assets";
    case Permission::kDeleteAssets: return "delete_assets";
    case Permission::kProcessOneshot: return "process_oneshot";
  }
  return "unknown";
}

bool role_may(Role role, Permission permission) {
  switch (permission) {
    // Plugins run native code: only admins manage them (and only with
    // plugins.allow_http_management). An operator sees and edits the sessions its token
    // created; a viewer watches every session and edits none.
    case Permission::kLoadPlugins:
    case Permission::kDeletePlugins: return role == Role::kAdmin;
    case Permission::kListSessions:
    case Permission::kListNodes:
    case Permission::kListSamples:
    case Permission::kReadSamples: return true;
    case Permission::kAccessAllSessions: return role != Role::kOperator;
    case Permission::kCreateSessions:
    case Permission::kDestroySessions:
    case Permission::kModifySessions:
    case Permission::kTuneNodes:
    case Permission::kWriteSamples:
    case Permission::kDeleteSamples:
    case Permission::kUploadAssets:
    case Permission::kDeleteAssets:
    case Permission::kProcessOneshot: return role != Role::kViewer;
  }
  return false;
}

bool may_access_session(const Caller& caller, std::string_view owner) {
  return role_may(caller.role, Permission::kAccessAllSessions) ||
         (!owner.empty() && owner == caller.token_name);
}

nlohmann::json permissions_of(Role role) {
  nlohmann::json out = nlohmann::json::object();
  for (const Permission p : kAll) {
    out[std::string(permission_name(p))] = role_may(role, p);
  }
  return out;
}

Status authorize(Role role, Permission permission, std::string_view what) {
  if (role_may(role, permission)) {
    return Status::ok();
  }
  std::string needs = "no role may yet";
  for (const Role r : {Role::kViewer, Role::kOperator, Role::kAdmin}) {
    if (role_may(r, permission)) {
      needs = "needs " + std::string(role_name(r));
      break;
    }
  }
  return Status(ErrorCode::kPermissionDenied, "role '" + std::string(role_name(role)) +
                                                  "' may not " + std::string(what) + " (" +
                                                  needs + ")");
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

const TokenConfig* find_token(const std::vector<TokenConfig>& tokens, std::string_view presented) {
  const TokenConfig* who = nullptr;
  for (const auto& t : tokens) {
    if (constant_time_equal(t.token, presented)) {
      who = &t;  // no early exit: the time does not tell which token matched
    }
  }
  return who;
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() || authorization[kScheme.size()] != ' ' ||
      !std::equal(kScheme.begin(), kScheme.end(), authorization.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return std::nullopt;
  }
  std::string_view token = authorization.substr(kScheme.size());
  token.remove_prefix(std::min(token.find_first_not_of(' '), token.size()));
  return token;
}

}  // namespace skit::gateway
