// SPDX-License-Identifier: MPL-2.0
// Outbound HTTP policy shared by every node that fetches a URL on a user's behalf (the script
// node's fetch(), and transport nodes that pull from URLs): an allow-list of URL patterns with
// methods, and the server-side-request-forgery rule applied after DNS resolution (loopback,
// private, link-local and other non-public addresses are refused unless the matching rule
// names such an address itself).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "skit/core/params.hpp"
#include "skit/core/status.hpp"

namespace skit {

/// A URL taken apart. Scheme and host are lower-cased; an IPv6 host keeps no brackets.
struct ParsedUrl {
  std::string scheme;
  std::string host;
  std::uint16_t port = 0;  // the scheme's default when the URL names none (http, https)
  std::string path;        // "/" at least; without the query
  std::string query;       // without '?'
};

/// The schemes of plain HTTP fetches (the script node's fetch(), transport::http::fetcher).
inline constexpr std::string_view kHttpSchemes[] = {"http", "https"};
/// The schemes security.allowed_fetch_urls may name: HTTP, and srt:// for
/// transport::srt::caller (an SRT URL has no default port: it must name one).
inline constexpr std::string_view kFetchSchemes[] = {"http", "https", "srt"};

/// Parses an absolute URL of one of `schemes`; user info ("user:pass@") is refused.
Result<ParsedUrl> parse_url(std::string_view url, std::span<const std::string_view> schemes);
/// parse_url() for http:// and https:// only.
Result<ParsedUrl> parse_http_url(std::string_view url);

/// Shell-style '*' wildcard match (any run of characters, '/' included).
bool wildcard_match(std::string_view pattern, std::string_view text, bool ignore_case);

/// One allow-list entry: `url` is a pattern such as "https://api.example.com/v1/*" or
/// "http://127.0.0.1:*/*" ('*' in the host, the port and the path; no path = any path).
struct UrlRule {
  std::string url;
  std::vector<std::string> methods;  // case-insensitive; empty: GET and HEAD
  /// Allow non-public addresses for a host name (an internal service); a rule naming a literal
  /// address (127.0.0.1, [::1], 10.0.0.5) or `localhost` allows that address without it.
  bool allow_private = false;
};

enum class AddressClass : std::uint8_t {
  kPublic,
  kLoopback,
  kPrivate,      // RFC 1918, fc00::/7, CGNAT 100.64/10
  kLinkLocal,    // 169.254/16 (cloud metadata), fe80::/10
  kUnspecified,  // 0.0.0.0, ::
  kMulticast,
  kReserved,     // everything else that is not routable on the Internet
};
std::string_view address_class_name(AddressClass c);
/// The class of an AF_INET / AF_INET6 address (IPv4-mapped IPv6 addresses as IPv4).
AddressClass classify_address(const sockaddr* addr);
std::string format_address(const sockaddr* addr);

class UrlPolicy {
 public:
  UrlPolicy() = default;
  /// No rules: refuses everything, naming `list_name`.
  explicit UrlPolicy(std::string list_name) : list_name_(std::move(list_name)) {}
  /// Checks every pattern; errors name the entry. `list_name` is the config key the rules
  /// come from, which refusals name; `schemes` those its patterns may use.
  static Result<UrlPolicy> make(std::vector<UrlRule> rules,
                                std::string list_name = "script.global_fetch_allowlist",
                                std::span<const std::string_view> schemes = kHttpSchemes);

  [[nodiscard]] const std::vector<UrlRule>& rules() const { return rules_; }
  [[nodiscard]] bool empty() const { return rules_.empty(); }

  /// The first rule admitting `method` on `url`; kPermissionDenied saying why otherwise.
  [[nodiscard]] Result<const UrlRule*> admit(std::string_view method, const ParsedUrl& url) const;
  /// Whether `url` matches any rule's pattern, whatever the method.
  [[nodiscard]] bool matches(const ParsedUrl& url) const;

  /// After resolution: may a request admitted by `rule` connect to `addr`?
  static Status check_address(const UrlRule& rule, const sockaddr* addr);

 private:
  struct Pattern {
    std::string scheme, host, port, path;  // "" port: the scheme's default; "" path: any
  };
  std::vector<UrlRule> rules_;
  std::vector<Pattern> patterns_;
  std::string list_name_ = "script.global_fetch_allowlist";
  [[nodiscard]] bool pattern_matches(const Pattern& p, const ParsedUrl& url) const;
};

/// The allow-list of the nodes that download a URL or call out (transport::http::fetcher,
/// transport::srt::caller): security.allowed_fetch_urls, with kFetchSchemes. The server hands it to its workers in the environment (JSON
/// rules, as to_json writes them); unset, everything is refused.
inline constexpr const char* kFetchPolicyEnvVar = "SKIT_FETCH_POLICY";
inline constexpr const char* kFetchPolicyKey = "security.allowed_fetch_urls";
Result<UrlPolicy> fetch_policy_from_environment();

/// {"url": ..., "methods": [...], "allow_private": bool} entries, for configs.
Result<std::vector<UrlRule>> url_rules_from_json(const Json& list);
Json to_json(const std::vector<UrlRule>& rules);

}  // namespace skit
