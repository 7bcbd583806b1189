// SPDX-License-Identifier: MPL-2.0
// fetch() of core::script, performed by the worker with libcurl: the allow-list and the
// address rules of skit::UrlPolicy, no redirects, bounded time, size and concurrency, and
// secret-backed headers that the script itself never sees.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "skit/core/params.hpp"
#include "skit/core/script_policy.hpp"
#include "skit/core/status.hpp"

namespace skit::nodes::script {

/// A header filled from a named secret: `template` with "{}" replaced by the secret's value.
struct SecretHeader {
  std::string header;
  std::string secret_name;
  std::string value;  // the rendered header value; never logged
  std::vector<std::string> allowed_fetch_urls;
};

struct FetchRequest {
  std::string url;
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;
};

struct FetchAnswer {
  long status = 0;
  std::string body;
};

class Fetcher {
 public:
  /// Resolves the secrets named by `headers` (from the environment variables the policy names).
  static Result<Fetcher> make(const ScriptPolicy& policy, const Json& headers_param);

  /// Performs `request`; errors are safe to show to the script (they never carry a secret).
  Result<FetchAnswer> fetch(const FetchRequest& request) const;

 private:
  UrlPolicy allowlist_;
  std::vector<SecretHeader> secrets_;
  std::uint32_t timeout_ms_ = 10000;
  std::uint64_t max_response_bytes_ = 8ULL << 20;
  std::uint32_t max_inflight_ = 16;
};

/// Called once before the sandbox engages (libcurl and TLS set-up read files).
void init_fetch_library();

}  // namespace skit::nodes::script
