// SPDX-License-Identifier: MPL-2.0
// What a new user meets first (issue 10): the real `skit serve`, started the way an operator
// starts it (from any directory, with paths.base_dir pointing at the data), and the defects
// found by trying it from the README: a path allow-list bypass through the working directory,
// samples that only worked from the checkout, errors that came late or as 500s.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "audio_measure.hpp"
#include "serve_process.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const fs::path kRepo = SKIT_SOURCE_DIR;

class NewUser : public ::testing::Test {
 protected:
  /// `skit serve` with `config` (YAML; gRPC off), started in `cwd`.
  void start(const std::string& config, const fs::path& cwd) {
    server_ = std::make_unique<ServeProcess>(dir_, "server:\n  grpc_listen: \"\"\n" + config, cwd);
    ASSERT_GT(server_->port(), 0) << "skit serve did not start:\n" << server_->log();
  }

  void TearDown() override {
    if (!server_) {
      return;
    }
    const pid_t pid = server_->pid();
    EXPECT_EQ(server_->stop(), 0) << server_->log().substr(0, 20000);
    EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 5s));
    EXPECT_TRUE(shm_segments_of(pid).empty()) << "shared memory left behind";
    if (HasFailure()) {
      const std::string log = server_->log();
      std::printf("---- server log (last 8 KiB) ----\n%s\n",
                  log.substr(log.size() > 8192 ? log.size() - 8192 : 0).c_str());
    }
  }

  Response request(const std::vector<std::string>& args) {
    return Curl(dir_, args).finish();
  }
  Response get(const std::string& path) { return request({server_->url(path)}); }
  Response process(const std::string& yaml, const std::string& media = "") {
    const std::string config = dir_.file("pipeline-" + std::to_string(counter_++) + ".yml");
    write_file(config, yaml);
    std::vector<std::string> args = {"-F", "config=@" + config};
    if (!media.empty()) {
      args.insert(args.end(), {"-F", "media=@" + media});
    }
    args.push_back(server_->url("/api/v1/process"));
    return request(args);
  }
  Response post_json(const std::string& path, const json& body) {
    return request({"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                    body.dump(), server_->url(path)});
  }

  TempDir dir_;
  std::unique_ptr<ServeProcess> server_;
  int counter_ = 0;
};

const char* kReadToResponse = R"(mode: oneshot
steps:
  - kind: core::file_reader
    params:
      path: samples/audio/clip.bin
  - kind: streamkit::http_output
    params:
      content_type: application/octet-stream
)";

// The security defect: the policy resolved `samples/audio/clip.bin` against base_dir, but the
// worker opened it against its own working directory, where a link led anywhere.
TEST_F(NewUser, APathIsOpenedWhereItWasCheckedNotInTheWorkingDirectory) {
  const fs::path base = dir_.path() / "data";
  const fs::path cwd = dir_.path() / "elsewhere";
  fs::create_directories(base / "samples/audio");
  fs::create_directories(cwd / "samples/audio");
  write_file((base / "samples/audio/clip.bin").string(), "the allowed clip");
  write_file(dir_.file("secret.txt"), "TOP SECRET: outside every allow-list");
  fs::create_symlink(dir_.file("secret.txt"), cwd / "samples/audio/clip.bin");
  start("paths:\n  base_dir: " + base.string() + "\nsecurity:\n  allowed_file_paths: [\"samples/**\"]\n",
        cwd);

  const Response r = process(kReadToResponse);
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "the allowed clip") << "the worker read another file than the one checked";
  EXPECT_FALSE(contains(r.body, "SECRET"));

  // A link inside the allowed tree that leads out of it is refused before any worker starts.
  fs::create_symlink(dir_.file("secret.txt"), base / "samples/audio/link.bin");
  std::string via_link = kReadToResponse;
  via_link.replace(via_link.find("clip.bin"), 8, "link.bin");
  const Response refused = process(via_link);
  EXPECT_EQ(refused.status, 403) << refused.describe();
  EXPECT_TRUE(contains(refused.body, "security.allowed_file_paths")) << refused.body;
  EXPECT_FALSE(contains(refused.body, "TOP SECRET"));
}

// The shipped samples name files relative to the data directory: they run whatever the
// server's working directory.
TEST_F(NewUser, ShippedSamplesWorkFromAnyWorkingDirectory) {
  const fs::path cwd = dir_.path() / "elsewhere";
  fs::create_directories(cwd);
  start("paths:\n  base_dir: " + kRepo.string() + "\n", cwd);

  const std::string mixing = read_file((kRepo / "samples/pipelines/oneshot/mixing.yml").string());
  const Response mixed = process(mixing, (kRepo / "samples/audio/speech.ogg").string());
  ASSERT_EQ(mixed.status, 200) << mixed.describe();
  const Decoded out = decode_f32(mixed.body_path);
  EXPECT_EQ(out.err, "");
  EXPECT_GT(out.seconds(), 3.0) << "the mix is as long as the speech";

  const std::string live = read_file((kRepo / "samples/pipelines/dynamic/live_gain.yml").string());
  const Response created = post_json("/api/v1/sessions", json{{"name", "live"}, {"yaml", live}});
  ASSERT_EQ(created.status, 200) << created.describe();
  // The reader opened music.ogg (relative to base_dir) and fed the chain: the gain runs with
  // packets through it, and nothing failed.
  json pipeline;
  const bool flowing = wait_until(
      [&] {
        pipeline = get("/api/v1/sessions/live/pipeline").body_json();
        const json& gain = pipeline["nodes"]["gain"];
        return gain["state"] == "Running" && gain["stats"].value("received", 0) > 0;
      },
      10s);
  EXPECT_TRUE(flowing) << pipeline.dump(2);
  for (const auto& [id, node] : pipeline["nodes"].items()) {
    EXPECT_FALSE(node["state"].is_object() && node["state"].contains("Failed"))
        << id << ": " << node["state"].dump();
  }
  EXPECT_EQ(request({"-X", "DELETE", server_->url("/api/v1/sessions/live")}).status, 200);
}

}  // namespace
}  // namespace skit::testing
