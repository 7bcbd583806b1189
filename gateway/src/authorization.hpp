// SPDX-License-Identifier: MPL-2.0
// Who may do what, for every front end (REST, the WebSocket control plane, gRPC): a role's
// permissions with StreamKit's names, the one check built from them, and the token
// comparisons that identify a caller (bearer tokens; the browser cookie is auth_cookie.hpp's).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skit/core/status.hpp"
#include "skit/gateway/config.hpp"

namespace skit::gateway {

/// StreamKit's permission names (GET /api/v1/permissions, getpermissions, GetPermissions).
enum class Permission : std::uint8_t {
  kCreateSessions,
  kDestroySessions,
  kListSessions,
  kModifySessions,
  kTuneNodes,
  kLoadPlugins,
  kDeletePlugins,
  kListNodes,
  kListSamples,
  kReadSamples,
  kWriteSamples,
  kDeleteSamples,
  kAccessAllSessions,
  kUploadAssets,
  kDeleteAssets,
  kProcessOneshot,
};

std::string_view permission_name(Permission permission);

/// Whether `role` has `permission`.
bool role_may(Role role, Permission permission);

/// Who makes a request, as its token (bearer or the browser's login cookie) says.
struct Caller {
  std::string token_name;  // empty without auth
  Role role = Role::kAdmin;
};

/// Whether `caller` may see and act on a session of `owner` (SessionInfo::owner): every
/// session with access_all_sessions (admin, viewer), else only its own (operator).
bool may_access_session(const Caller& caller, std::string_view owner);

/// Every permission of a role, by name: {"create_sessions": true, ...}.
nlohmann::json permissions_of(Role role);

/// OK when `role` has `permission`; else kPermissionDenied "role 'viewer' may not <what>
/// (needs operator)", naming the least role that has it.
Status authorize(Role role, Permission permission, std::string_view what);

/// Compares without an early exit, so the time taken does not tell how much of a secret
/// matched.
bool constant_time_equal(std::string_view a, std::string_view b);

/// The configured token equal to `presented` (every token compared, in constant time), or null.
const TokenConfig* find_token(const std::vector<TokenConfig>& tokens, std::string_view presented);

/// The token of an Authorization value "Bearer <token>": the scheme in any case (RFC 9110,
/// 11.1), then one or more spaces. Nothing when the value is not of that scheme.
std::optional<std::string_view> bearer_token(std::string_view authorization);

}  // namespace skit::gateway
