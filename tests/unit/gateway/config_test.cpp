// SPDX-License-Identifier: MPL-2.0
// `skit config default` prints what a server without a file does, key for key.
#include <gtest/gtest.h>

#include <filesystem>

#include "skit/gateway/config.hpp"

namespace skit::gateway {
namespace {

TEST(DefaultConfig, ParsesToExactlyTheBuiltInDefaults) {
  std::vector<Status> errors;
  auto parsed = parse_config(default_config_yaml(), &errors);
  ASSERT_TRUE(parsed.is_ok()) << (errors.empty() ? parsed.status() : errors.front()).to_string();
  const ServerConfig d;
  const ServerConfig& p = *parsed;
  EXPECT_EQ(p.listen, d.listen);
  EXPECT_EQ(p.grpc_listen, d.grpc_listen);
  EXPECT_EQ(p.allow_insecure_non_loopback, d.allow_insecure_non_loopback);
  EXPECT_EQ(p.allowed_origins, d.allowed_origins);
  EXPECT_EQ(p.log_format, d.log_format);
  EXPECT_EQ(p.tls, d.tls);
  EXPECT_EQ(p.cert_path, d.cert_path);
  EXPECT_EQ(p.key_path, d.key_path);
  EXPECT_EQ(p.tokens.size(), d.tokens.size());
  EXPECT_EQ(p.max_body_bytes, d.max_body_bytes);
  EXPECT_EQ(p.max_config_bytes, d.max_config_bytes);
  EXPECT_EQ(p.max_header_bytes, d.max_header_bytes);
  EXPECT_EQ(p.max_connections, d.max_connections);
  EXPECT_EQ(p.request_timeout, d.request_timeout);
  EXPECT_EQ(p.engine.placement, d.engine.placement);
  EXPECT_EQ(p.engine.sandbox.enabled, d.engine.sandbox.enabled);
  EXPECT_EQ(p.engine.sandbox.address_space_bytes, d.engine.sandbox.address_space_bytes);
  EXPECT_EQ(p.engine.ring_capacity, d.engine.ring_capacity);
  EXPECT_EQ(p.engine.max_concurrent_oneshots, d.engine.max_concurrent_oneshots);
  EXPECT_EQ(p.engine.allowed_file_paths, d.engine.allowed_file_paths);
  EXPECT_EQ(p.engine.allowed_write_paths, d.engine.allowed_write_paths);
  EXPECT_EQ(std::filesystem::absolute(p.engine.base_dir).lexically_normal(),
            std::filesystem::absolute(d.engine.base_dir).lexically_normal() / "");
  EXPECT_EQ(p.sessions.placement, d.sessions.placement);
  EXPECT_EQ(p.sessions.ring_capacity, d.sessions.ring_capacity);
  EXPECT_EQ(p.sessions.max_sessions, d.sessions.max_sessions);
  EXPECT_EQ(p.sessions.max_nodes_per_session, d.sessions.max_nodes_per_session);
  EXPECT_EQ(p.sessions.idle_timeout, d.sessions.idle_timeout);
  EXPECT_EQ(p.sessions.max_restarts, d.sessions.max_restarts);
  EXPECT_EQ(p.sessions.restart_window, d.sessions.restart_window);
  EXPECT_EQ(p.sessions.backoff_initial, d.sessions.backoff_initial);
  EXPECT_EQ(p.sessions.backoff_max, d.sessions.backoff_max);
  EXPECT_EQ(p.sessions.worker_memory_limit_bytes, d.sessions.worker_memory_limit_bytes);
  EXPECT_EQ(p.sessions.event_queue_capacity, d.sessions.event_queue_capacity);
  EXPECT_EQ(p.sessions.heartbeat_timeout, d.sessions.heartbeat_timeout);
  EXPECT_EQ(p.samples_dir, d.samples_dir);
  EXPECT_EQ(p.ui_dir, d.ui_dir);
  EXPECT_EQ(p.script.to_json(), d.script.to_json());
}

// server.tls needs both files; the error points at the `tls` line.
TEST(TlsConfig, TlsWithoutAKeyIsAnErrorAtItsLineAndWithBothItParses) {
  std::vector<Status> errors;
  auto bad = parse_config("server:\n  log_format: json\n  tls: true\n  cert_path: /etc/skit/c.pem\n",
                          &errors);
  ASSERT_FALSE(bad.is_ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message().find("server.key_path is not set"), std::string::npos)
      << errors[0].to_string();
  EXPECT_EQ(errors[0].where().line, 3);
  auto good = parse_config("server:\n  tls: true\n  cert_path: /c.pem\n  key_path: /k.pem\n");
  ASSERT_TRUE(good.is_ok()) << good.status().to_string();
  EXPECT_TRUE(good->tls);
  EXPECT_EQ(good->cert_path, "/c.pem");
  EXPECT_EQ(good->key_path, "/k.pem");
}

// security.allowed_fetch_urls takes patterns or {url, allow_private}; a bad entry is named
// with its line, and methods belong to the script's list only.
TEST(FetchUrlLists, PatternsAndObjectsParseAndBadEntriesAreNamed) {
  std::vector<Status> errors;
  auto ok = parse_config(
      "security:\n"
      "  allowed_fetch_urls:\n"
      "    - \"https://media.example.com/*\"\n"
      "    - {url: \"http://10.0.0.5:8080/feeds/*\", allow_private: true}\n",
      &errors);
  ASSERT_TRUE(ok.is_ok()) << (errors.empty() ? ok.status().to_string() : errors[0].to_string());
  ASSERT_EQ(ok->engine.allowed_fetch_urls.size(), 2U);
  EXPECT_EQ(ok->engine.allowed_fetch_urls[0].url, "https://media.example.com/*");
  EXPECT_FALSE(ok->engine.allowed_fetch_urls[0].allow_private);
  EXPECT_TRUE(ok->engine.allowed_fetch_urls[1].allow_private);

  errors.clear();
  auto bad = parse_config(
      "security:\n"
      "  allowed_fetch_urls:\n"
      "    - \"ftp://media.example.com/*\"\n"
      "    - {url: \"https://a.example.com/*\", methods: [POST]}\n",
      &errors);
  EXPECT_FALSE(bad.is_ok());
  ASSERT_EQ(errors.size(), 2U);
  EXPECT_NE(errors[0].message().find("http, https or srt"), std::string::npos) << errors[0].to_string();
  EXPECT_EQ(errors[0].where().line, 3);
  EXPECT_NE(errors[1].message().find("methods"), std::string::npos) << errors[1].to_string();
  EXPECT_EQ(errors[1].where().line, 4);
}

}  // namespace
}  // namespace skit::gateway
