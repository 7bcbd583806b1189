// SPDX-License-Identifier: MPL-2.0
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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

TEST_F(PathPolicyTest, MissingFilesAndDirectoriesAreNamedBeforeAnyWorkerStarts) {
  auto missing = policy_.check("samples/audio/none.ogg", false);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kInvalidParam);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  auto dir = policy_.check("samples/audio", false);
  ASSERT_FALSE(dir.is_ok());
  EXPECT_NE(dir.status().message().find("directory"), std::string::npos);
  PathPolicy deep(base_, {"samples/**"}, {"out/**"});
  auto no_dir = deep.check("out/sub/x.wav", true);
  ASSERT_FALSE(no_dir.is_ok());
  EXPECT_NE(no_dir.status().message().find("does not exist"), std::string::npos);
}

// Which params are file paths is declared by the node kinds, not known to the policy by name.
TEST_F(PathPolicyTest, ConfineRewritesDeclaredFileParamsToTheCheckedCanonicalPath) {
  v1::NodeSpec reader;
  reader.set_id("music");
  reader.set_kind("core::file_reader");
  reader.set_params_json(R"({"path": "samples/./audio/../audio/a.ogg", "chunk_size": 512})");
  reader.mutable_position()->set_line(7);
  EXPECT_TRUE(policy_.confine_node(reader).empty());
  const auto params = nlohmann::json::parse(reader.params_json());
  EXPECT_EQ(params["path"], fs::canonical(base_ / "samples/audio/a.ogg").string());
  EXPECT_EQ(params["chunk_size"], 512);

  v1::NodeSpec writer;
  writer.set_id("save");
  writer.set_kind("core::file_writer");
  writer.set_params_json(R"({"path": "samples/audio/a.ogg"})");
  writer.mutable_position()->set_line(9);
  const auto errors = policy_.confine_node(writer);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(errors[0].where().node_id, "save");
  EXPECT_EQ(errors[0].where().param, "path");
  EXPECT_EQ(errors[0].where().line, 9);
  EXPECT_NE(errors[0].message().find("security.allowed_write_paths"), std::string::npos);

  v1::NodeSpec gain;
  gain.set_id("g");
  gain.set_kind("audio::gain");
  gain.set_params_json(R"({"gain": 2.0})");
  EXPECT_TRUE(policy_.confine_node(gain).empty());
  EXPECT_EQ(nlohmann::json::parse(gain.params_json())["gain"], 2.0);
}

// URL params (ParamFieldRef::fetch_url) are checked against security.allowed_fetch_urls in the
// same pass, with the node's place; an empty list refuses every URL.
TEST_F(PathPolicyTest, FetchUrlsMustBeOnTheAllowListAndHttp) {
  auto rules = UrlPolicy::make({{.url = "https://media.example.com/*"}}, kFetchPolicyKey);
  ASSERT_TRUE(rules.is_ok()) << rules.status().to_string();
  PathPolicy with_urls(base_, {"samples/**"}, {}, std::move(rules).value());
  auto node = [](const std::string& url) {
    v1::NodeSpec n;
    n.set_id("fetch");
    n.set_kind("transport::http::fetcher");
    n.set_params_json(nlohmann::json{{"url", url}}.dump());
    n.mutable_position()->set_line(4);
    return n;
  };
  auto allowed = node("https://media.example.com/a.ogg");
  EXPECT_TRUE(with_urls.confine_node(allowed).empty());
  EXPECT_EQ(nlohmann::json::parse(allowed.params_json())["url"], "https://media.example.com/a.ogg");

  for (const std::string url : {"https://other.example.com/a.ogg", "http://media.example.com/a.ogg",
                                "ftp://media.example.com/a.ogg", "https://user:pw@media.example.com/a"}) {
    auto n = node(url);
    const auto errors = with_urls.confine_node(n);
    ASSERT_EQ(errors.size(), 1U) << url;
    EXPECT_EQ(errors[0].where().node_id, "fetch");
    EXPECT_EQ(errors[0].where().param, "url");
    EXPECT_EQ(errors[0].where().line, 4);
    std::printf("%s: %s\n", url.c_str(), errors[0].message().c_str());
  }
  auto off = node("https://other.example.com/a.ogg");
  const auto off_errors = with_urls.confine_node(off);
  ASSERT_EQ(off_errors.size(), 1U);
  EXPECT_EQ(off_errors[0].code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(off_errors[0].message().find("security.allowed_fetch_urls"), std::string::npos);

  auto any = node("https://media.example.com/a.ogg");
  const auto denied = policy_.confine_node(any);  // no list at all
  ASSERT_EQ(denied.size(), 1U);
  EXPECT_NE(denied[0].message().find("security.allowed_fetch_urls is empty"), std::string::npos)
      << denied[0].message();
}

}  // namespace
}  // namespace skit::supervisor
