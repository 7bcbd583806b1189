// SPDX-License-Identifier: MPL-2.0
#include "skit/core/url_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace skit {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// 0: the scheme has none (srt), a URL must name its port.
std::uint16_t default_port(std::string_view scheme) {
  if (scheme == "https") return 443;
  if (scheme == "http") return 80;
  return 0;
}

std::string scheme_list(std::span<const std::string_view> schemes) {
  std::string out;
  for (std::size_t i = 0; i < schemes.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == schemes.size() ? " or " : ", ") + std::string(schemes[i]);
  }
  return out;
}

bool one_of(std::string_view scheme, std::span<const std::string_view> schemes) {
  return std::find(schemes.begin(), schemes.end(), scheme) != schemes.end();
}

struct Split {
  std::string scheme, host, port, path, query;
};

// Splits "scheme://host[:port][/path][?query]" without judging the parts (patterns reuse it).
Result<Split> split_url(std::string_view url) {
  Split s;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return Status(ErrorCode::kInvalidArgument, "'" + std::string(url) + "' is not an absolute URL");
  }
  s.scheme = lower(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  const auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return Status(ErrorCode::kInvalidArgument, "URLs with user info are not allowed");
  }
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status(ErrorCode::kInvalidArgument, "unterminated IPv6 address in '" +
                                                     std::string(url) + "'");
    }
    s.host = lower(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Status(ErrorCode::kInvalidArgument, "bad authority in '" + std::string(url) + "'");
      }
      s.port = std::string(after.substr(1));
    }
  } else {
    const auto colon = authority.rfind(':');
    s.host = lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      s.port = std::string(authority.substr(colon + 1));
    }
  }
  if (s.host.empty()) {
    return Status(ErrorCode::kInvalidArgument, "'" + std::string(url) + "' names no host");
  }
  const auto hash = rest.find('#');
  if (hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  const auto q = rest.find('?');
  s.path = std::string(rest.substr(0, q));
  if (q != std::string_view::npos) {
    s.query = std::string(rest.substr(q + 1));
  }
  return s;
}

bool is_ip_literal(const std::string& host) {
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

AddressClass classify_v4(std::uint32_t a) {  // host byte order
  const auto in = [a](std::uint32_t net, int bits) {
    const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (in(0x7F000000, 8)) return AddressClass::kLoopback;
  if (in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16) || in(0x64400000, 10)) {
    return AddressClass::kPrivate;
  }
  if (in(0xA9FE0000, 16)) return AddressClass::kLinkLocal;
  if (in(0x00000000, 8)) return AddressClass::kUnspecified;
  if (in(0xE0000000, 4)) return AddressClass::kMulticast;
  if (in(0xF0000000, 4) || in(0xC0000000, 24) || in(0xC0000200, 24) || in(0xC6120000, 15) ||
      in(0xC6336400, 24) || in(0xCB007100, 24)) {
    return AddressClass::kReserved;
  }
  return AddressClass::kPublic;
}

}  // namespace

Result<ParsedUrl> parse_http_url(std::string_view url) { return parse_url(url, kHttpSchemes); }

Result<ParsedUrl> parse_url(std::string_view url, std::span<const std::string_view> schemes) {
  auto split = split_url(url);
  if (!split) {
    return split.status();
  }
  ParsedUrl out;
  out.scheme = split->scheme;
  if (!one_of(out.scheme, schemes)) {
    std::string allowed;
    for (std::size_t i = 0; i < schemes.size(); ++i) {
      allowed += (i == 0 ? "" : i + 1 == schemes.size() ? " and " : ", ") + std::string(schemes[i]) + "://";
    }
    return Status(ErrorCode::kInvalidArgument,
                  "only " + allowed + " URLs can be fetched, not '" + out.scheme + "://'");
  }
  out.host = split->host;
  if (out.host.find_first_of("*% \t") != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument, "bad host in URL '" + std::string(url) + "'");
  }
  if (split->port.empty()) {
    out.port = default_port(out.scheme);
    if (out.port == 0) {
      return Status(ErrorCode::kInvalidArgument,
                    out.scheme + ":// URLs must name a port: '" + std::string(url) + "'");
    }
  } else {
    int port = 0;
    for (char c : split->port) {
      if (c < '0' || c > '9' || port > 65535) {
        return Status(ErrorCode::kInvalidArgument, "bad port in URL '" + std::string(url) + "'");
      }
      port = port * 10 + (c - '0');
    }
    if (port <= 0 || port > 65535) {
      return Status(ErrorCode::kInvalidArgument, "bad port in URL '" + std::string(url) + "'");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  out.path = split->path.empty() ? "/" : split->path;
  out.query = split->query;
  return out;
}

bool wildcard_match(std::string_view pattern, std::string_view text, bool ignore_case) {
  // Iterative glob with one backtrack point: linear enough for URL-sized inputs.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  const auto eq = [ignore_case](char a, char b) {
    return ignore_case ? std::tolower(static_cast<unsigned char>(a)) ==
                             std::tolower(static_cast<unsigned char>(b))
                       : a == b;
  };
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && eq(pattern[p], text[t])) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

std::string_view address_class_name(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic: return "public";
    case AddressClass::kLoopback: return "loopback";
    case AddressClass::kPrivate: return "private";
    case AddressClass::kLinkLocal: return "link-local";
    case AddressClass::kUnspecified: return "unspecified";
    case AddressClass::kMulticast: return "multicast";
    case AddressClass::kReserved: return "reserved";
  }
  return "reserved";
}

AddressClass classify_address(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(addr);
    return classify_v4(ntohl(v4->sin_addr.s_addr));
  }
  if (addr->sa_family != AF_INET6) {
    return AddressClass::kReserved;
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(addr);
  const unsigned char* b = v6->sin6_addr.s6_addr;
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (std::memcmp(b, kMapped, 12) == 0) {
    return classify_v4((std::uint32_t{b[12]} << 24) | (std::uint32_t{b[13]} << 16) |
                       (std::uint32_t{b[14]} << 8) | b[15]);
  }
  if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return AddressClass::kLoopback;
  if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr)) return AddressClass::kUnspecified;
  if (IN6_IS_ADDR_LINKLOCAL(&v6->sin6_addr)) return AddressClass::kLinkLocal;
  if (IN6_IS_ADDR_MULTICAST(&v6->sin6_addr)) return AddressClass::kMulticast;
  if ((b[0] & 0xFE) == 0xFC) return AddressClass::kPrivate;
  if ((b[0] & 0xE0) == 0x20) return AddressClass::kPublic;  // 2000::/3, global unicast
  return AddressClass::kReserved;
}

std::string format_address(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof buf);
  } else if (addr->sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

Result<UrlPolicy> UrlPolicy::make(std::vector<UrlRule> rules, std::string list_name,
                                  std::span<const std::string_view> schemes) {
  UrlPolicy policy;
  policy.list_name_ = std::move(list_name);
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const std::string where = "allow-list entry " + std::to_string(i + 1) + " ('" + rules[i].url + "')";
    auto split = split_url(rules[i].url);
    if (!split) {
      return Status(ErrorCode::kInvalidArgument, where + ": " + split.status().message());
    }
    if (!one_of(split->scheme, schemes)) {
      return Status(ErrorCode::kInvalidArgument,
                    where + ": the scheme must be " + scheme_list(schemes));
    }
    if (split->port.empty() && default_port(split->scheme) == 0) {
      return Status(ErrorCode::kInvalidArgument,
                    where + ": a " + split->scheme + ":// entry must name its port (or '*')");
    }
    if (!split->query.empty()) {
      return Status(ErrorCode::kInvalidArgument, where + ": patterns match the path, not a query");
    }
    for (auto& m : rules[i].methods) {
      m = lower(m);
      if (m.empty() || m.find_first_not_of("abcdefghijklmnopqrstuvwxyz") != std::string::npos) {
        return Status(ErrorCode::kInvalidArgument, where + ": bad method '" + m + "'");
      }
    }
    policy.patterns_.push_back({split->scheme, split->host, split->port, split->path});
    policy.rules_.push_back(std::move(rules[i]));
  }
  return policy;
}

bool UrlPolicy::pattern_matches(const Pattern& p, const ParsedUrl& url) const {
  if (p.scheme != url.scheme || !wildcard_match(p.host, url.host, true)) {
    return false;
  }
  const std::string port = std::to_string(url.port);
  if (p.port.empty() ? url.port != default_port(url.scheme) : !wildcard_match(p.port, port, false)) {
    return false;
  }
  return p.path.empty() || wildcard_match(p.path, url.path, true);
}

bool UrlPolicy::matches(const ParsedUrl& url) const {
  return std::any_of(patterns_.begin(), patterns_.end(),
                     [&](const Pattern& p) { return pattern_matches(p, url); });
}

Result<const UrlRule*> UrlPolicy::admit(std::string_view method, const ParsedUrl& url) const {
  const std::string m = lower(method);
  bool url_matched = false;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (!pattern_matches(patterns_[i], url)) {
      continue;
    }
    url_matched = true;
    const auto& methods = rules_[i].methods;
    const bool ok = methods.empty() ? (m == "get" || m == "head")
                                    : std::find(methods.begin(), methods.end(), m) != methods.end();
    if (ok) {
      return &rules_[i];
    }
  }
  const std::string target = url.scheme + "://" + url.host + ":" + std::to_string(url.port) + url.path;
  if (rules_.empty()) {
    return Status(ErrorCode::kPermissionDenied,
                  "fetch is disabled: " + list_name_ + " is empty (" + target + ")");
  }
  if (url_matched) {
    return Status(ErrorCode::kPermissionDenied, "method " + std::string(method) +
                                                    " is not allowed for " + target);
  }
  return Status(ErrorCode::kPermissionDenied,
                target + " is not on " + list_name_);
}

Status UrlPolicy::check_address(const UrlRule& rule, const sockaddr* addr) {
  const AddressClass c = classify_address(addr);
  if (c == AddressClass::kPublic || rule.allow_private) {
    return Status::ok();
  }
  const std::string ip = format_address(addr);
  auto split = split_url(rule.url);
  if (split) {
    const std::string& host = split->host;
    if (is_ip_literal(host)) {
      std::array<unsigned char, 16> want{}, got{};
      const int fam = host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
      ::inet_pton(fam, host.c_str(), want.data());
      ::inet_pton(fam, ip.c_str(), got.data());
      if (want == got) {
        return Status::ok();
      }
    } else if (host == "localhost" && c == AddressClass::kLoopback) {
      return Status::ok();
    }
  }
  return Status(ErrorCode::kPermissionDenied,
                "refusing to connect to " + ip + ", a " + std::string(address_class_name(c)) +
                    " address (the allow-list entry must name it, or set allow_private)");
}

Result<std::vector<UrlRule>> url_rules_from_json(const Json& list) {
  std::vector<UrlRule> rules;
  if (list.is_null()) {
    return rules;
  }
  if (!list.is_array()) {
    return Status(ErrorCode::kInvalidArgument, "the allow-list must be a list of {url, methods}");
  }
  for (const auto& e : list) {
    UrlRule r;
    if (e.is_string()) {
      r.url = e.get<std::string>();
    } else if (e.is_object() && e.contains("url") && e["url"].is_string()) {
      r.url = e["url"].get<std::string>();
      if (e.contains("methods")) {
        if (!e["methods"].is_array()) {
          return Status(ErrorCode::kInvalidArgument, "methods of '" + r.url + "' must be a list");
        }
        for (const auto& m : e["methods"]) {
          if (!m.is_string()) {
            return Status(ErrorCode::kInvalidArgument, "methods of '" + r.url + "' must be strings");
          }
          r.methods.push_back(m.get<std::string>());
        }
      }
      if (e.contains("allow_private")) {
        if (!e["allow_private"].is_boolean()) {
          return Status(ErrorCode::kInvalidArgument, "allow_private of '" + r.url + "' must be true or false");
        }
        r.allow_private = e["allow_private"].get<bool>();
      }
    } else {
      return Status(ErrorCode::kInvalidArgument, "an allow-list entry needs a url");
    }
    rules.push_back(std::move(r));
  }
  return rules;
}

Result<UrlPolicy> fetch_policy_from_environment() {
  const char* text = std::getenv(kFetchPolicyEnvVar);  // NOLINT(concurrency-mt-unsafe): read-only after start
  if (text == nullptr || *text == '\0') {
    return UrlPolicy::make({}, kFetchPolicyKey, kFetchSchemes);
  }
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status(ErrorCode::kInvalidArgument, std::string(kFetchPolicyEnvVar) + " is not valid JSON");
  }
  auto rules = url_rules_from_json(j);
  if (!rules) {
    return rules.status();
  }
  return UrlPolicy::make(std::move(rules).value(), kFetchPolicyKey, kFetchSchemes);
}

Json to_json(const std::vector<UrlRule>& rules) {
  Json out = Json::array();
  for (const auto& r : rules) {
    out.push_back({{"url", r.url}, {"methods", r.methods}, {"allow_private", r.allow_private}});
  }
  return out;
}

}  // namespace skit
