// SPDX-License-Identifier: MPL-2.0
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "skit/supervisor/path_policy.hpp"
#include "skit_test_support.hpp"

namespace skit::supervisor {
namespace {

namespace fs = std::filesystem;

TEST(GlobMatch, SingleStarStaysInOneSegmentDoubleStarCrossesThem) {
  EXPECT_TRUE(glob_match("samples/*", "samples/a.ogg"));
  EXPECT_FALSE(glob_match("samples/*", "samples/audio/a.ogg"));
  EXPECT_TRUE(glob_match("samples/**", "samples/audio/a.ogg"));
  EXPECT_TRUE(glob_match("samples/**/*.ogg", "samples/a.ogg"));
  EXPECT_TRUE(glob_match("samples/**/*.ogg", "samples/x/y/a.ogg"));
  EXPECT_FALSE(glob_match("samples/**/*.ogg", "samples/x/a.wav"));
  EXPECT_TRUE(glob_match("out/clip-?.wav", "out/clip-1.wav"));
  EXPECT_FALSE(glob_match("out/clip-?.wav", "out/clip-12.wav"));
  EXPECT_FALSE(glob_match("samples/**", "other/samples/a"));
}

class PathPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(base_ / "samples/audio");
    fs::create_directories(base_ / "out");
    std::ofstream(base_ / "samples/audio/a.ogg") << "x";
    std::ofstream(dir_.file("secret.txt")) << "x";
    fs::create_symlink(dir_.file("secret.txt"), base_ / "samples/link.txt");
  }
  testing::TempDir dir_;
  fs::path base_ = dir_.path() / "srv";
  PathPolicy policy_{base_, {"samples/**"}, {"out/*.wav"}};
};

TEST_F(PathPolicyTest, AllowsPathsInsideTheReadList) {
  auto r = policy_.check("samples/audio/a.ogg", false);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(*r, fs::weakly_canonical(base_ / "samples/audio/a.ogg"));
}

TEST_F(PathPolicyTest, RejectsDotDotEscapesAbsolutePathsAndSymlinksOutside) {
  for (const std::string& p : std::vector<std::string>{"samples/../../secret.txt", dir_.file("secret.txt"),
                              "samples/link.txt", "/etc/passwd"}) {
    auto r = policy_.check(p, false);
    ASSERT_FALSE(r.is_ok()) << p;
    EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(r.status().message().find("security.allowed_file_paths"), std::string::npos);
  }
}

TEST_F(PathPolicyTest, WritingNeedsTheWriteList) {
  EXPECT_TRUE(policy_.check("out/x.wav", true).is_ok());
  EXPECT_FALSE(policy_.check("out/x.ogg", true).is_ok());
  EXPECT_FALSE(policy_.check("samples/audio/new.ogg", true).is_ok()) << "readable is not writable";
  PathPolicy deny_all(base_, {"samples/**"}, {});
  EXPECT_FALSE(deny_all.check("out/x.wav", true).is_ok()) << "default: writing denied";
}

}  // namespace
}  // namespace skit::supervisor
