// SPDX-License-Identifier: MPL-2.0
// The server's `script:` settings for core::script nodes: defaults for timeout_ms and
// memory_limit_mb, the fetch() allow-list and the named secrets that scripts' header params
// refer to. The server hands them to its workers in the environment (kEnvVar, JSON) - never
// secret values, only the names of the environment variables that hold them, which workers
// inherit from the server.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "skit/core/params.hpp"
#include "skit/core/status.hpp"
#include "skit/core/url_policy.hpp"

namespace skit {

struct ScriptSecret {
  std::string env;          // environment variable holding the value
  std::string type = "string";  // url | token | apikey | string (informational)
  std::string description;
  std::vector<std::string> allowed_fetch_urls;  // URL patterns it may be sent to; empty: none
};

struct ScriptPolicy {
  static constexpr const char* kEnvVar = "SKIT_SCRIPT_POLICY";

  std::uint32_t default_timeout_ms = 100;
  std::uint32_t default_memory_limit_mb = 64;
  std::vector<UrlRule> fetch_allowlist;  // empty: fetch() is refused
  std::map<std::string, ScriptSecret> secrets;
  std::uint32_t fetch_max_inflight = 16;   // per worker, across its script nodes
  std::uint32_t fetch_timeout_ms = 10000;  // one request, connect to last byte
  std::uint64_t fetch_max_response_bytes = 8ULL << 20;

  [[nodiscard]] Json to_json() const;
  /// Every problem at once is not needed here: the config loader already checked the shape.
  static Result<ScriptPolicy> from_json(const Json& j);
  /// The policy the server put in the environment; the defaults when none (`skit run`).
  static Result<ScriptPolicy> from_environment();
};

}  // namespace skit
