// SPDX-License-Identifier: MPL-2.0
// The outbound URL policy (script fetch, URL-pulling transports): patterns with wildcards,
// methods, and the address rule after DNS resolution.
#include "skit/core/url_policy.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace skit {
namespace {

sockaddr_storage addr(const char* ip) {
  sockaddr_storage s{};
  if (std::string_view(ip).find(':') != std::string_view::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&s);
    v6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &v6->sin6_addr);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&s);
    v4->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &v4->sin_addr);
  }
  return s;
}

AddressClass cls(const char* ip) {
  auto s = addr(ip);
  return classify_address(reinterpret_cast<sockaddr*>(&s));
}

TEST(UrlPolicy, ParsesHttpUrls) {
  auto u = parse_http_url("HTTPS://API.Example.com/v1/chat?x=1#frag");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "api.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/v1/chat");
  EXPECT_EQ(u->query, "x=1");
  auto v6 = parse_http_url("http://[::1]:8080");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->path, "/");
  EXPECT_FALSE(parse_http_url("file:///etc/passwd").is_ok());
  EXPECT_FALSE(parse_http_url("http://user:pw@example.com/").is_ok());
  EXPECT_FALSE(parse_http_url("http://example.com:99999/").is_ok());
  EXPECT_FALSE(parse_http_url("example.com/x").is_ok());
}

TEST(UrlPolicy, WildcardsInHostPortAndPathCaseInsensitively) {
  auto p = UrlPolicy::make({{.url = "https://*.example.com/v1/*", .methods = {"GET", "post"}},
                            {.url = "http://127.0.0.1:*/api/*"}});
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_TRUE(p->admit("GET", *parse_http_url("https://API.example.com/V1/models")).is_ok());
  EXPECT_TRUE(p->admit("Post", *parse_http_url("https://a.example.com/v1/chat")).is_ok());
  EXPECT_FALSE(p->admit("DELETE", *parse_http_url("https://a.example.com/v1/chat")).is_ok());
  EXPECT_FALSE(p->admit("GET", *parse_http_url("https://example.org/v1/x")).is_ok());
  EXPECT_FALSE(p->admit("GET", *parse_http_url("http://a.example.com/v1/x")).is_ok())
      << "the scheme is part of the pattern";
  EXPECT_FALSE(p->admit("GET", *parse_http_url("https://a.example.com:8443/v1/x")).is_ok())
      << "no port in the pattern: the scheme's default only";
  EXPECT_TRUE(p->admit("GET", *parse_http_url("http://127.0.0.1:39999/api/x")).is_ok());
  EXPECT_FALSE(p->admit("POST", *parse_http_url("http://127.0.0.1:39999/api/x")).is_ok())
      << "no methods: GET and HEAD only";
  const auto refused = p->admit("GET", *parse_http_url("https://evil.com/"));
  EXPECT_NE(refused.status().message().find("not on script.global_fetch_allowlist"), std::string::npos)
      << refused.status().message();
}

TEST(UrlPolicy, EmptyListBlocksEverything) {
  UrlPolicy p;
  const auto r = p.admit("GET", *parse_http_url("https://example.com/"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("empty"), std::string::npos);
}

TEST(UrlPolicy, BadPatternsAreRefusedWithTheEntry) {
  auto p = UrlPolicy::make({{.url = "ftp://example.com/*"}});
  ASSERT_FALSE(p.is_ok());
  EXPECT_NE(p.status().message().find("entry 1"), std::string::npos);
  EXPECT_FALSE(UrlPolicy::make({{.url = "https://x.com/", .methods = {"G E T"}}}).is_ok());
}

// transport::srt::caller's URLs share security.allowed_fetch_urls with the fetcher's: srt://
// has no default port, so a URL and an entry must name one; the HTTP-only lists refuse it.
TEST(UrlPolicy, SrtUrlsNeedAPortAndOnlyTheFetchListTakesThem) {
  auto u = parse_url("SRT://Encoder.example:9000", kFetchSchemes);
  ASSERT_TRUE(u.is_ok()) << u.status().message();
  EXPECT_EQ(u->scheme, "srt");
  EXPECT_EQ(u->host, "encoder.example");
  EXPECT_EQ(u->port, 9000);
  const auto no_port = parse_url("srt://encoder.example", kFetchSchemes);
  ASSERT_FALSE(no_port.is_ok());
  EXPECT_NE(no_port.status().message().find("must name a port"), std::string::npos);
  EXPECT_FALSE(parse_http_url("srt://encoder.example:9000").is_ok());

  auto fetch = UrlPolicy::make({{.url = "srt://*.example:9000"}, {.url = "srt://10.0.0.5:*"}},
                               kFetchPolicyKey, kFetchSchemes);
  ASSERT_TRUE(fetch.is_ok()) << fetch.status().message();
  EXPECT_TRUE(fetch->admit("GET", *u).is_ok());
  EXPECT_TRUE(fetch->admit("GET", *parse_url("srt://10.0.0.5:1234", kFetchSchemes)).is_ok());
  EXPECT_FALSE(fetch->admit("GET", *parse_url("srt://encoder.example:9001", kFetchSchemes)).is_ok());
  EXPECT_FALSE(fetch->admit("GET", *parse_url("http://encoder.example:9000/", kFetchSchemes)).is_ok());

  const auto portless = UrlPolicy::make({{.url = "srt://encoder.example"}}, kFetchPolicyKey, kFetchSchemes);
  ASSERT_FALSE(portless.is_ok());
  EXPECT_NE(portless.status().message().find("must name its port"), std::string::npos);
  const auto script = UrlPolicy::make({{.url = "srt://encoder.example:9000"}});
  ASSERT_FALSE(script.is_ok());
  EXPECT_NE(script.status().message().find("http or https"), std::string::npos);
}

TEST(UrlPolicy, ClassifiesAddresses) {
  EXPECT_EQ(cls("8.8.8.8"), AddressClass::kPublic);
  EXPECT_EQ(cls("127.0.0.1"), AddressClass::kLoopback);
  EXPECT_EQ(cls("10.1.2.3"), AddressClass::kPrivate);
  EXPECT_EQ(cls("172.20.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(cls("192.168.1.1"), AddressClass::kPrivate);
  EXPECT_EQ(cls("169.254.169.254"), AddressClass::kLinkLocal);
  EXPECT_EQ(cls("0.0.0.0"), AddressClass::kUnspecified);
  EXPECT_EQ(cls("::1"), AddressClass::kLoopback);
  EXPECT_EQ(cls("::ffff:127.0.0.1"), AddressClass::kLoopback);
  EXPECT_EQ(cls("fe80::1"), AddressClass::kLinkLocal);
  EXPECT_EQ(cls("fd00::1"), AddressClass::kPrivate);
  EXPECT_EQ(cls("2001:4860:4860::8888"), AddressClass::kPublic);
}

TEST(UrlPolicy, NonPublicAddressesOnlyWhenTheRuleNamesThem) {
  const UrlRule by_name{.url = "https://api.example.com/*"};
  const UrlRule by_ip{.url = "http://127.0.0.1:*/*"};
  const UrlRule localhost{.url = "http://localhost:8080/*"};
  const UrlRule internal{.url = "http://svc.internal/*", .allow_private = true};
  auto loop = addr("127.0.0.1");
  auto meta = addr("169.254.169.254");
  auto pub = addr("93.184.216.34");
  const auto* l = reinterpret_cast<sockaddr*>(&loop);
  const auto* m = reinterpret_cast<sockaddr*>(&meta);
  EXPECT_TRUE(UrlPolicy::check_address(by_name, reinterpret_cast<sockaddr*>(&pub)).is_ok());
  const Status rebound = UrlPolicy::check_address(by_name, l);
  EXPECT_FALSE(rebound.is_ok()) << "a public name resolving to loopback (DNS rebinding)";
  EXPECT_NE(rebound.message().find("loopback"), std::string::npos);
  EXPECT_TRUE(UrlPolicy::check_address(by_ip, l).is_ok());
  EXPECT_FALSE(UrlPolicy::check_address(by_ip, m).is_ok());
  EXPECT_TRUE(UrlPolicy::check_address(localhost, l).is_ok());
  EXPECT_TRUE(UrlPolicy::check_address(internal, m).is_ok());
}

}  // namespace
}  // namespace skit
