// SPDX-License-Identifier: MPL-2.0
// skit::open_file: a confined open takes exactly the canonical path it is given and follows
// no symbolic link anywhere in it, so that a link swapped in after the supervisor checked the
// path cannot redirect the node to another file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "skit/core/files.hpp"
#include "skit_test_support.hpp"

namespace skit {
namespace {

namespace fs = std::filesystem;
using skit::testing::TempDir;

std::string read_fd(int fd) {
  std::string out;
  char buf[256];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

class OpenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::canonical(dir_.path());
    fs::create_directories(root_ / "allowed/audio");
    fs::create_directories(root_ / "outside");
    std::ofstream(root_ / "allowed/audio/clip.ogg") << "clip";
    std::ofstream(root_ / "outside/secret.txt") << "secret";
  }
  TempDir dir_;
  fs::path root_;
};

TEST_F(OpenFileTest, ConfinedOpenReadsTheCanonicalPath) {
  auto fd = open_file((root_ / "allowed/audio/clip.ogg").string(), FileAccess::kRead, true);
  ASSERT_TRUE(fd.is_ok()) << fd.status().to_string();
  EXPECT_EQ(read_fd(fd->get()), "clip");
}

TEST_F(OpenFileTest, ConfinedOpenRefusesALinkAsTheLastComponent) {
  // The checked path was a regular file; a link is swapped in before the worker opens it.
  const fs::path checked = root_ / "allowed/audio/clip.ogg";
  fs::remove(checked);
  fs::create_symlink(root_ / "outside/secret.txt", checked);
  auto fd = open_file(checked.string(), FileAccess::kRead, true);
  ASSERT_FALSE(fd.is_ok());
  EXPECT_EQ(fd.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(fd.status().message().find("symbolic link"), std::string::npos)
      << fd.status().message();
  // Unconfined (skit run): the path is opened as given, links and all.
  auto plain = open_file(checked.string(), FileAccess::kRead, false);
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(read_fd(plain->get()), "secret");
}

TEST_F(OpenFileTest, ConfinedOpenRefusesALinkedDirectoryOnTheWay) {
  fs::rename(root_ / "allowed/audio", root_ / "allowed/audio.real");
  fs::create_symlink(root_ / "outside", root_ / "allowed/audio");
  std::ofstream(root_ / "outside/clip.ogg") << "not the checked file";
  auto fd = open_file((root_ / "allowed/audio/clip.ogg").string(), FileAccess::kRead, true);
  ASSERT_FALSE(fd.is_ok());
  EXPECT_EQ(fd.status().code(), ErrorCode::kPermissionDenied) << fd.status().to_string();
}

TEST_F(OpenFileTest, ConfinedWriteCreatesButDoesNotFollowALink) {
  const fs::path out = root_ / "allowed/out.wav";
  auto fd = open_file(out.string(), FileAccess::kWrite, true);
  ASSERT_TRUE(fd.is_ok()) << fd.status().to_string();
  ASSERT_EQ(::write(fd->get(), "abc", 3), 3);
  fd->reset();
  EXPECT_EQ(fs::file_size(out), 3U);
  // A link planted at the output path would truncate its target: refused.
  fs::remove(out);
  fs::create_symlink(root_ / "outside/secret.txt", out);
  auto linked = open_file(out.string(), FileAccess::kWrite, true);
  ASSERT_FALSE(linked.is_ok());
  EXPECT_EQ(fs::file_size(root_ / "outside/secret.txt"), 6U) << "the link's target was truncated";
}

TEST_F(OpenFileTest, ConfinedOpenNeedsAnAbsolutePathAndNamesMissingFiles) {
  auto relative = open_file("allowed/audio/clip.ogg", FileAccess::kRead, true);
  ASSERT_FALSE(relative.is_ok());
  EXPECT_EQ(relative.status().code(), ErrorCode::kPermissionDenied);
  auto missing = open_file((root_ / "allowed/none.ogg").string(), FileAccess::kRead, true);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("none.ogg"), std::string::npos);
}

}  // namespace
}  // namespace skit
