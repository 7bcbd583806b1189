// SPDX-License-Identifier: MPL-2.0
// What a new user meets first (issue 10): the real `skit serve`, started the way an operator
// starts it (from any directory, with paths.base_dir pointing at the data), and the defects
// found by trying it from the README: a path allow-list bypass through the working directory,
// samples that only worked from the checkout, errors that came late or as 500s.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "audio_measure.hpp"
#include "http_client.hpp"
#include "skit_server.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;


class NewUser : public ::testing::Test {
 protected:
  /// `skit serve` with `config` (YAML; gRPC off), started in `cwd`.
  void start(const std::string& config, const fs::path& cwd) {
    server_ = std::make_unique<SkitServer>("server:\n  grpc_listen: \"\"\n" + config,
                                           ServerOptions{.cwd = cwd});
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
  std::unique_ptr<SkitServer> server_;
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

  const std::string live = read_file((kRepo / "samples/pipelines/dynamic/live_music.yml").string());
  const Response created = post_json("/api/v1/sessions", json{{"name", "live"}, {"yaml", live}});
  ASSERT_EQ(created.status, 200) << created.describe();
  // The reader opened music.ogg (relative to base_dir) and fed the chain: the gain has
  // packets through it, and nothing failed.
  json pipeline;
  const bool flowing = wait_until(
      [&] {
        pipeline = get("/api/v1/sessions/live/pipeline").body_json();
        return pipeline["nodes"]["gain"]["stats"].value("received", 0) > 10;
      },
      10s);
  EXPECT_TRUE(flowing) << pipeline.dump(2);
  for (const auto& [id, node] : pipeline["nodes"].items()) {
    EXPECT_FALSE(node["state"].is_object() && node["state"].contains("Failed"))
        << id << ": " << node["state"].dump();
  }
  EXPECT_EQ(request({"-X", "DELETE", server_->url("/api/v1/sessions/live")}).status, 200);
}

// Relative paths resolve against the working directory by default: a server started
// elsewhere finds no samples, and says so instead of serving empty lists in silence.
TEST_F(NewUser, AServerThatFindsNoSamplesSaysWhereItLooked) {
  const fs::path cwd = dir_.path() / "empty";
  fs::create_directories(cwd);
  start("", cwd);
  EXPECT_TRUE(wait_until([&] { return contains(server_->log(), "no sample pipelines in"); }, 5s))
      << server_->log();
  EXPECT_TRUE(contains(server_->log(), (cwd / "samples/pipelines/oneshot").string()))
      << server_->log();
  EXPECT_TRUE(contains(server_->log(), "paths.base_dir"));
  EXPECT_EQ(get("/api/v1/samples/oneshot").body_json(), json::array());
}

}  // namespace
}  // namespace skit::testing

namespace skit::testing {
namespace {

const std::string kToken = "operator-token-0123456789";

class NewUserServer : public NewUser {
 protected:
  void SetUp() override {
    start("auth:\n  tokens:\n    - {name: ci, token: \"" + kToken + "\", role: operator}\n", kRepo);
  }
  Response authed(std::vector<std::string> args) {
    args.insert(args.begin(), {"-H", "Authorization: Bearer " + kToken});
    return request(args);
  }
  std::string metrics() { return authed({server_->url("/metrics")}).body; }
};

// Refused requests (401, an Origin's 403) used to label their series with the raw path.
TEST_F(NewUserServer, RefusedRequestsDoNotGrowTheMetrics) {
  for (int i = 0; i < 60; ++i) {
    request({server_->url("/api/random/path-" + std::to_string(i))});
    request({server_->url("/some/page-" + std::to_string(i))});  // the web UI's client routes
    request({"-X", "POST", "-H", "Origin: http://evil.example", server_->url("/api/v1/x-" + std::to_string(i))});
  }
  request({server_->url("/api/v1/sessions/some-session/pipeline")});
  const std::string m = metrics();
  EXPECT_FALSE(contains(m, "path-")) << m.substr(0, 4000);
  EXPECT_FALSE(contains(m, "page-"));
  EXPECT_FALSE(contains(m, "/api/v1/x-"));
  EXPECT_FALSE(contains(m, "some-session"));
  EXPECT_TRUE(contains(m, "route=\"other\",code=\"401\"")) << m.substr(0, 4000);
  EXPECT_TRUE(contains(m, "route=\"/api/v1/sessions/{id}/pipeline\",code=\"401\""));
  EXPECT_LT(m.size(), 20000U);
}

TEST_F(NewUserServer, AWrongMethodIs405WithAllow) {
  const Response del = authed({"-X", "DELETE", server_->url("/api/v1/config")});
  EXPECT_EQ(del.status, 405) << del.describe();
  EXPECT_EQ(del.header("Allow"), "GET");
  const Response get = authed({server_->url("/api/v1/process")});
  EXPECT_EQ(get.status, 405);
  EXPECT_EQ(get.header("Allow"), "POST");
  const Response sessions = authed({"-X", "PUT", server_->url("/api/v1/sessions")});
  EXPECT_EQ(sessions.status, 405);
  EXPECT_EQ(sessions.header("Allow"), "GET, POST");
  EXPECT_EQ(authed({server_->url("/api/v1/nothing-here")}).status, 404);
}

TEST_F(NewUserServer, AMissingInputFileIsA400NamingNodeAndPathBeforeAnyWorker) {
  const std::string before = metrics();
  const std::string config = dir_.file("missing.yml");
  write_file(config, R"(mode: oneshot
nodes:
  music:
    kind: core::file_reader
    params: { path: samples/audio/no-such-clip.ogg }
  out:
    kind: streamkit::http_output
    needs: music
)");
  const Response r = authed({"-F", "config=@" + config, server_->url("/api/v1/process")});
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_TRUE(contains(r.body, "node 'music'")) << r.body;
  EXPECT_TRUE(contains(r.body, "samples/audio/no-such-clip.ogg")) << r.body;
  EXPECT_TRUE(contains(r.body, "does not exist")) << r.body;
  EXPECT_TRUE(contains(r.body, "line 3")) << r.body;
  EXPECT_FALSE(contains(r.body, "worker")) << r.body;
  const auto workers = [](const std::string& m) {
    const auto at = m.find("skit_workers_started_total ");
    return at == std::string::npos ? -1 : std::atoi(m.c_str() + at + 27);
  };
  EXPECT_EQ(workers(metrics()), workers(before)) << "a worker was started";
}

TEST_F(NewUserServer, SessionErrorsReadLikeProcessErrorsAndNamesNeedNoEncoding) {
  const Response bad = authed({"-X", "POST", "--data-binary",
                               json{{"yaml", "mode: dynamic\nnodes:\n  g:\n    kind: audio::gian\n"}}.dump(),
                               server_->url("/api/v1/sessions")});
  EXPECT_EQ(bad.status, 400) << bad.describe();
  EXPECT_EQ(bad.body.rfind("line 4, column 11: node 'g': unknown node kind", 0), 0U) << bad.body;
  const Response odd = authed({"-X", "POST", "--data-binary", json{{"name", "a/b c"}}.dump(),
                               server_->url("/api/v1/sessions")});
  EXPECT_EQ(odd.status, 400) << odd.describe();
  EXPECT_TRUE(contains(odd.body, "letters, digits")) << odd.body;
  const Response ok = authed({"-X", "POST", "--data-binary", json{{"name", "radio_1.a-b"}}.dump(),
                              server_->url("/api/v1/sessions")});
  EXPECT_EQ(ok.status, 200) << ok.describe();
  EXPECT_EQ(authed({"-X", "DELETE", server_->url("/api/v1/sessions/radio_1.a-b")}).status, 200);
}

TEST_F(NewUserServer, PermissionsTellWhatTheServerDoes) {
  const json p = authed({server_->url("/api/v1/permissions")}).body_json();
  // An operator's token sees and edits the sessions it created, not the others'.
  EXPECT_EQ(p["permissions"]["access_all_sessions"], false) << p.dump();
  EXPECT_EQ(p["permissions"]["load_plugins"], false) << "no plugin endpoints yet";
  EXPECT_EQ(p["permissions"]["upload_assets"], true);
  EXPECT_EQ(p["permissions"]["process_oneshot"], true);
}

/// An Ogg/Opus file that turns to garbage after `good_seconds`: the response has started when
/// the demuxer fails.
std::string corrupt_midway(const TempDir& dir) {
  const std::string clip = dir.file("clip.ogg");
  EXPECT_TRUE(make_sine(clip, 440, 0.2, 20.0, 48000, 1, {"-c:a", "libopus"}));
  std::string bytes = read_file(clip);
  const std::string junk = random_bytes(bytes.size() / 2, 4);
  bytes.replace(bytes.size() / 2, junk.size(), junk);
  const std::string out = dir.file("midway.ogg");
  write_file(out, bytes);
  return out;
}

TEST_F(NewUserServer, AStreamedFailureIsToldByTrailerAndByRequestId) {
  const std::string media = corrupt_midway(dir_);
  const std::string config = (kRepo / "samples/pipelines/oneshot/volume_boost.yml").string();
  // A client that accepts trailers: the body ends properly and the trailer says why.
  const Response with = authed({"--raw", "-H", "TE: trailers", "-F", "config=@" + config,
                                "-F", "media=@" + media, server_->url("/api/v1/process")});
  EXPECT_EQ(with.status, 200) << with.describe();
  EXPECT_EQ(with.header("Trailer"), "X-Skit-Error");
  EXPECT_TRUE(contains(with.body, "\r\nX-Skit-Error: corrupt_media: ")) << with.body.substr(0, 200);
  const std::string id = with.header("X-Skit-Request-Id");
  ASSERT_FALSE(id.empty());
  const json outcome = authed({server_->url("/api/v1/process/" + id)}).body_json();
  EXPECT_EQ(outcome["state"], "failed") << outcome.dump();
  EXPECT_EQ(outcome["error"]["code"], "corrupt_media") << outcome.dump();
  EXPECT_GT(outcome["bytes_out"].get<std::uint64_t>(), 0U);
  // A client that does not: the body is cut short (curl: partial file), not a silent success.
  const Response without = authed({"-F", "config=@" + config, "-F", "media=@" + media,
                                   server_->url("/api/v1/process")});
  EXPECT_NE(without.curl_exit, 0) << without.describe();
  const json second = authed({server_->url("/api/v1/process/" + without.header("X-Skit-Request-Id"))}).body_json();
  EXPECT_EQ(second["state"], "failed") << second.dump();
  // A good request is recorded as such; an unknown id is 404.
  const Response good = authed({"-F", "config=@" + config, "-F",
                                "media=@" + (kRepo / "samples/audio/speech.ogg").string(),
                                server_->url("/api/v1/process")});
  ASSERT_EQ(good.status, 200);
  EXPECT_EQ(authed({server_->url("/api/v1/process/" + good.header("X-Skit-Request-Id"))}).body_json()["state"],
            "succeeded");
  EXPECT_EQ(authed({server_->url("/api/v1/process/no-such-request")}).status, 404);
}

// The dynamic sample used to end after 4 s (its clip), after which the README's tune failed.
TEST_F(NewUserServer, TheDynamicSampleLivesAndNodesThatEndedAreNotConnectedTo) {
  const std::string live = read_file((kRepo / "samples/pipelines/dynamic/live_gain.yml").string());
  ASSERT_EQ(authed({"-X", "POST", "--data-binary", json{{"name", "live"}, {"yaml", live}}.dump(),
                    server_->url("/api/v1/sessions")})
                .status,
            200);
  std::this_thread::sleep_for(6s);
  const json p = authed({server_->url("/api/v1/sessions/live/pipeline")}).body_json();
  for (const char* id : {"tone", "gain", "sink"}) {
    EXPECT_EQ(p["nodes"][id]["state"], "Running") << id << ": " << p.dump();
  }
  const auto received = p["nodes"]["sink"]["stats"]["received"].get<int>();
  EXPECT_GT(received, 250) << "6 s of 20 ms frames, in real time";
  EXPECT_LT(received, 400) << "faster than real time";
  const RunResult tuned = run_skit({"client", "-s", server_->url(""), "--token", kToken, "tune",
                                    "live", "gain", "gain", "0.25"});
  EXPECT_EQ(tuned.exit_code, 0) << tuned.err;

  // The short-clip sample ends; connecting to its finished nodes is refused with the reason.
  const std::string music = read_file((kRepo / "samples/pipelines/dynamic/live_music.yml").string());
  ASSERT_EQ(authed({"-X", "POST", "--data-binary", json{{"name", "clip"}, {"yaml", music}}.dump(),
                    server_->url("/api/v1/sessions")})
                .status,
            200);
  json clip;
  ASSERT_TRUE(wait_until(
      [&] {
        clip = authed({server_->url("/api/v1/sessions/clip/pipeline")}).body_json();
        return clip["nodes"]["gain"]["state"].is_object() &&
               clip["nodes"]["gain"]["state"].contains("Stopped");
      },
      15s))
      << clip.dump();
  const RunResult added = run_skit({"client", "-s", server_->url(""), "--token", kToken, "pipeline", "clip"});
  EXPECT_TRUE(contains(added.out, "Stopped (completed)")) << added.out;
}

// skit client: the same server from the command line.
TEST_F(NewUserServer, TheClientDrivesSessionsAndOneshots) {
  const std::vector<std::string> base = {"client", "-s", server_->url(""), "--token", kToken};
  auto client = [&](std::vector<std::string> args) {
    args.insert(args.begin(), base.begin(), base.end());
    return run_skit(args);
  };
  const std::string live = (kRepo / "samples/pipelines/dynamic/live_gain.yml").string();
  RunResult r = client({"create", live, "--name", "cli-live"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "cli-live")) << r.out;
  r = client({"list"});
  EXPECT_TRUE(contains(r.out, "cli-live")) << r.out;
  r = client({"tune", "cli-live", "gain", "gain", "0.5"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json pipeline = authed({server_->url("/api/v1/sessions/cli-live/pipeline")}).body_json();
  EXPECT_EQ(pipeline["nodes"]["gain"]["params"]["gain"], 0.5) << pipeline.dump();
  r = client({"tune", "cli-live", "gain", "gain", "9"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_TRUE(contains(r.err, "must be <= 4")) << r.err;
  r = client({"pipeline", "cli-live"});
  EXPECT_TRUE(contains(r.out, "audio::gain")) << r.out;
  r = client({"destroy", "cli-live"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(client({"destroy", "cli-live"}).exit_code, 2);

  const std::string out = dir_.file("louder.ogg");
  r = client({"oneshot", (kRepo / "samples/pipelines/oneshot/volume_boost.yml").string(), out,
              "-i", (kRepo / "samples/audio/speech.ogg").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(decode_f32(out).seconds(), 3.0);
  // A failure midway: the trailer's reason, exit 1, and no output file.
  const std::string failed = dir_.file("failed.ogg");
  r = client({"oneshot", (kRepo / "samples/pipelines/oneshot/volume_boost.yml").string(), failed,
              "-i", corrupt_midway(dir_)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "corrupt_media")) << r.err;
  EXPECT_FALSE(fs::exists(failed));
  EXPECT_EQ(run_skit({"client", "-s", server_->url(""), "list"}).exit_code, 2) << "no token: 401";
}

}  // namespace
}  // namespace skit::testing
