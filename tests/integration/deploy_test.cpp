// SPDX-License-Identifier: MPL-2.0
// The systemd unit is accepted by systemd-analyze, and the default config passes its check.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

TEST(Deploy, SystemdAnalyzeAcceptsTheUnit) {
  if (!fs::exists("/usr/bin/systemd-analyze")) {
    GTEST_FAIL() << "systemd-analyze missing: scripts/bootstrap.sh installs systemd";
  }
  TempDir dir;
  std::string unit = read_file(std::string(SKIT_SOURCE_DIR) + "/deploy/systemd/skit.service");
  // Point ExecStart at the binary just built (verify checks that it exists and is executable).
  unit = std::regex_replace(unit, std::regex("/usr/local/bin/skit"), SKIT_BINARY);
  write_file(dir.file("skit.service"), unit);
  Process p({"/usr/bin/systemd-analyze", "verify", dir.file("skit.service")});
  ASSERT_TRUE(p.wait(std::chrono::seconds(30)));
  EXPECT_EQ(p.exit_code(), 0) << p.err();
  EXPECT_EQ(p.err().find("skit.service"), std::string::npos) << "warnings about the unit:\n" << p.err();
}

TEST(Deploy, DefaultConfigIsValid) {
  auto r = run_skit({"config", "check", std::string(SKIT_SOURCE_DIR) + "/deploy/config/skit.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(Deploy, ConfigCheckReportsUnknownKeysWithTheirLine) {
  TempDir dir;
  write_file(dir.file("bad.yaml"), "server:\n  listen: 127.0.0.1:1\n  lisen: oops\nlimits:\n  max_body_bytes: lots\n");
  auto r = run_skit({"config", "check", dir.file("bad.yaml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(":3:3: error: unknown key 'server.lisen'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(":5:19: error: 'limits.max_body_bytes' has the wrong type"), std::string::npos) << r.err;
}

TEST(Deploy, WithoutTokensOnlyLoopbackIsAccepted) {
  TempDir dir;
  write_file(dir.file("open.yaml"), "server:\n  listen: 0.0.0.0:4545\n");
  auto r = run_skit({"config", "check", dir.file("open.yaml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no auth tokens are configured"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace skit::testing
