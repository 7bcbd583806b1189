// SPDX-License-Identifier: MPL-2.0
// End-to-end tests of the endpoints the web UI needs (gateway/src/ui_routes.cpp,
// static_files.cpp, auth_cookie.cpp): the real `skit serve` on 127.0.0.1:0, driven by curl.
// Each test checks what a browser or a client relies on (status, headers, bodies, files on
// disk), the permission of each mutation, bad input answered with a message naming the
// problem, and that the server stops cleanly afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "skit_server.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const std::string& kOperator = kOperatorToken;
const std::string& kViewer = kViewerToken;
// HTTP only: no fixed gRPC port shared by parallel tests.
const ServerOptions kHttpOnly{.args = {"--grpc-listen", ""}};
const std::string kTokens = "auth:\n  tokens:\n    - { name: op, token: " + kOperator +
                            ", role: operator }\n    - { name: watcher, token: " + kViewer +
                            ", role: viewer }\n";

std::vector<std::string> json_post(const std::string& url, const json& body,
                                   const std::string& token = "") {
  std::vector<std::string> a = {
      "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body.dump(), url};
  if (!token.empty())
    a.insert(a.begin(), {"-H", "Authorization: Bearer " + token});
  return a;
}

std::vector<std::string> with_token(std::vector<std::string> args, const std::string& token) {
  args.insert(args.begin(), {"-H", "Authorization: Bearer " + token});
  return args;
}

void expect_security_headers(const Response& r) {
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r.header("Referrer-Policy"), "no-referrer");
  EXPECT_EQ(r.header("X-Frame-Options"), "SAMEORIGIN");
}

/// A samples_dir whose system samples are the repository's and whose user/ is fresh.
std::string samples_dir(const TempDir& dir) {
  const fs::path root = dir.path() / "samples";
  fs::create_directories(root);
  fs::create_directory_symlink(kRepo / "samples/pipelines/oneshot", root / "oneshot");
  fs::create_directory_symlink(kRepo / "samples/pipelines/dynamic", root / "dynamic");
  return root.string();
}

/// An audio_dir with one system asset (a copy of speech.ogg) and its license file.
std::string audio_dir(const TempDir& dir) {
  const fs::path root = dir.path() / "audio";
  fs::create_directories(root);
  fs::copy_file(kRepo / "samples/audio/speech.ogg", root / "speech.ogg");
  write_file((root / "speech.ogg.license").string(), "CC0-1.0\n");
  return root.string();
}

/// A built UI: index.html, a hashed asset, a plain file.
std::string ui_dir(const TempDir& dir) {
  const fs::path root = dir.path() / "ui";
  fs::create_directories(root / "assets");
  write_file((root / "index.html").string(),
             "<!doctype html><html><head><title>t</title><script "
             "src=\"./assets/index-AbC123.js\"></script></head><body></body></html>");
  write_file((root / "assets/index-AbC123.js").string(), "console.log('ui');\n");
  write_file((root / "assets/index-AbC123.css").string(), "body{}\n");
  write_file((root / "robots.txt").string(), "User-agent: *\n");
  return root.string();
}

class UiRoutes : public ::testing::Test {
 protected:
  void start(const std::string& extra = "", bool tokens = true) {
    std::string config = tokens ? kTokens : "";
    config += "paths:\n  samples_dir: " + samples_dir(dir_) + "\n  audio_dir: " + audio_dir(dir_) +
              "\n  ui_dir: " + ui_dir(dir_) + "\n" + extra;
    server_ = std::make_unique<SkitServer>(config, kHttpOnly);
    ASSERT_GT(server_->port(), 0) << server_->log();
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }
  Response get(const std::string& path, const std::string& token = kOperator) {
    return curl(dir_, token.empty() ? std::vector<std::string>{server_->url(path)}
                                    : with_token({server_->url(path)}, token));
  }
  TempDir dir_;
  std::unique_ptr<SkitServer> server_;
};

// ---------------------------------------------------------------------------------------------
// The web UI's files

TEST_F(UiRoutes, ServesTheBuiltUiWithContentTypesCachingAndIndexFallback) {
  start();
  // Open without a token: the login form must load.
  Response index = get("/", "");
  ASSERT_EQ(index.status, 200) << index.body;
  EXPECT_EQ(index.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(index.header("Cache-Control"), "no-cache");
  EXPECT_TRUE(contains(index.body, "<head><base href=\"/\"><title>")) << index.body;
  expect_security_headers(index);

  Response js = get("/assets/index-AbC123.js", "");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.header("Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(js.body, "console.log('ui');\n");
  EXPECT_EQ(get("/assets/index-AbC123.css", "").header("Content-Type"), "text/css; charset=utf-8");
  Response robots = get("/robots.txt", "");
  EXPECT_EQ(robots.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(robots.header("Cache-Control"), "no-cache");

  // Client routes get index.html; a missing file is a 404.
  for (const char* route : {"/monitor", "/convert", "/design/some/deep/route"}) {
    Response r = get(route, "");
    EXPECT_EQ(r.status, 200) << route;
    EXPECT_EQ(r.header("Cache-Control"), "no-cache") << route;
    EXPECT_TRUE(contains(r.body, "<base href=\"/\">")) << route;
  }
  Response missing = get("/assets/nope-123.js", "");
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(contains(missing.body, "/assets/nope-123.js")) << missing.body;

  // Nothing outside the directory; only GET.
  Response escape = curl(dir_, {"--path-as-is", server_->url("/../skit.yaml")});
  EXPECT_EQ(escape.status, 400) << escape.body;
  Response encoded = curl(dir_, {"--path-as-is", server_->url("/assets/%2e%2e/%2e%2e/skit.yaml")});
  EXPECT_EQ(encoded.status, 400) << encoded.body;
  Response post = curl(dir_, {"-X", "POST", server_->url("/index.html")});
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("Allow"), "GET, HEAD");

  // The API still wants its token.
  EXPECT_EQ(get("/api/v1/sessions", "").status, 401);
  EXPECT_EQ(get("/metrics", "").status, 401);
  EXPECT_EQ(get("/api/v1/sessions").status, 200);
}

TEST_F(UiRoutes, SaysHowToBuildTheUiWhenThereIsNone) {
  server_ =
      std::make_unique<SkitServer>("paths:\n  ui_dir: " + (dir_.path() / "none").string() + "\n",
                                   kHttpOnly);
  ASSERT_GT(server_->port(), 0) << server_->log();
  Response r = get("/", "");
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(contains(r.body, "npm ci && npm run build")) << r.body;
  expect_security_headers(r);
}

TEST_F(UiRoutes, AnswersUnderTheBasePathWithItsBaseHref) {
  start("server:\n  base_path: /skit/\n");
  Response index = get("/skit/", "");
  ASSERT_EQ(index.status, 200) << index.body;
  EXPECT_TRUE(contains(index.body, "<base href=\"/skit/\">")) << index.body;
  EXPECT_TRUE(contains(get("/skit/monitor", "").body, "<base href=\"/skit/\">"));
  EXPECT_EQ(get("/skit", "").status, 200);
  EXPECT_EQ(get("/skit/assets/index-AbC123.js", "").header("Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(get("/skit/api/v1/sessions").status, 200);
  EXPECT_EQ(get("/skit/api/v1/sessions", "").status, 401);
  EXPECT_EQ(get("/skit/api/v1/samples/dynamic").status, 200);
  // A proxy that strips the prefix: the plain paths still work.
  EXPECT_EQ(get("/api/v1/sessions").status, 200);
  EXPECT_TRUE(contains(get("/", "").body, "<base href=\"/skit/\">"));
}

TEST(UiConfig, RefusesABasePathThatIsNotAPath) {
  TempDir dir;
  write_file(dir.file("bad.yaml"), "server:\n  base_path: skit\n");
  const RunResult r = run_skit({"config", "check", dir.file("bad.yaml")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err + r.out, "server.base_path must be a path like /skit")) << r.err << r.out;
}

// ---------------------------------------------------------------------------------------------
// Samples

TEST_F(UiRoutes, ListsDynamicSamplesAndSavesAndDeletesUserSamples) {
  start();
  Response dynamic = get("/api/v1/samples/dynamic");
  ASSERT_EQ(dynamic.status, 200);
  const json list = dynamic.body_json();
  ASSERT_TRUE(list.is_array());
  bool live_gain = false;
  for (const auto& s : list) {
    EXPECT_EQ(s["mode"], "dynamic");
    live_gain = live_gain || (s["id"] == "dynamic/live_gain" && s["name"] == "Live gain" &&
                              s["is_system"] == true);
  }
  EXPECT_TRUE(live_gain) << dynamic.body;

  const std::string yaml =
      read_file((kRepo / "samples/pipelines/oneshot/volume_boost.yml").string());
  const json save{{"name", "My Boost!"}, {"description", "twice\nas loud"}, {"yaml", yaml}};
  Response saved = curl(dir_, json_post(server_->url("/api/v1/samples/oneshot"), save, kOperator));
  ASSERT_EQ(saved.status, 200) << saved.body;
  EXPECT_EQ(saved.body_json()["id"], "user/my-boost");
  EXPECT_EQ(saved.body_json()["name"], "My Boost!");
  EXPECT_EQ(saved.body_json()["description"], "twice as loud");
  EXPECT_EQ(saved.body_json()["is_system"], false);
  EXPECT_EQ(saved.body_json()["mode"], "oneshot");
  EXPECT_TRUE(fs::exists(dir_.path() / "samples/user/my-boost.yml"));

  // Listed with the system samples, readable by id; the saved YAML still compiles the same.
  Response all = get("/api/v1/samples/oneshot");
  bool listed = false;
  for (const auto& s : all.body_json())
    listed = listed || s["id"] == "user/my-boost";
  EXPECT_TRUE(listed) << all.body;
  Response one = get("/api/v1/samples/oneshot/user/my-boost");
  ASSERT_EQ(one.status, 200);
  Response check = curl(dir_, json_post(server_->url("/api/v1/validate"),
                                     {{"yaml", one.body_json()["yaml"]}}, kOperator));
  EXPECT_EQ(check.body_json()["valid"], true) << check.body;
  EXPECT_EQ(get("/api/v1/samples/oneshot/oneshot/volume_boost").body_json()["name"],
            "Volume boost (Ogg/Opus)");

  // The same name again: 409 unless overwrite.
  Response twice = curl(dir_, json_post(server_->url("/api/v1/samples/oneshot"), save, kOperator));
  EXPECT_EQ(twice.status, 409);
  EXPECT_TRUE(contains(twice.body, "overwrite")) << twice.body;
  json replace = save;
  replace["overwrite"] = true;
  EXPECT_EQ(
      curl(dir_, json_post(server_->url("/api/v1/samples/oneshot"), replace, kOperator)).status,
      200);

  // A fragment: a mapping of nodes, need not compile alone.
  const json fragment{{"name", "gain stage"},
                      {"is_fragment", true},
                      {"yaml", "nodes:\n  g:\n    kind: audio::gain\n    needs: upstream\n"}};
  Response frag = curl(dir_, json_post(server_->url("/api/v1/samples/oneshot"), fragment, kOperator));
  ASSERT_EQ(frag.status, 200) << frag.body;
  EXPECT_EQ(frag.body_json()["is_fragment"], true);

  // Bad input, each with its reason.
  struct Bad {
    json body;
    int status;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {{{"yaml", yaml}}, 400, "'name' is required"},
      {{{"name", "x"}}, 400, "'yaml' is required"},
      {{{"name", 5}, {"yaml", yaml}}, 400, "'name' must be a string"},
      {{{"name", "!!!"}, {"yaml", yaml}}, 400, "letter or digit"},
      {{{"name", "broken"}, {"yaml", "mode: oneshot\nsteps:\n  - kind: nope::x\n"}}, 400, "line 3"},
      {{{"name", "frag"}, {"is_fragment", true}, {"yaml", "- a\n"}}, 400, "mapping with 'nodes'"},
      {{{"name", "x"}, {"yaml", yaml}, {"overwrite", "yes"}}, 400, "true or false"},
  };
  for (const auto& b : bad) {
    Response r = curl(dir_, json_post(server_->url("/api/v1/samples/oneshot"), b.body, kOperator));
    EXPECT_EQ(r.status, b.status) << b.body.dump() << " -> " << r.body;
    EXPECT_TRUE(contains(r.body, b.says)) << b.body.dump() << " -> " << r.body;
  }
  Response not_json = curl(dir_, {"-H", "Authorization: Bearer " + kOperator, "-X", "POST",
                               "--data-binary", "{nope", server_->url("/api/v1/samples/oneshot")});
  EXPECT_EQ(not_json.status, 400);
  const std::string huge(1100 * 1024, 'x');
  write_file(dir_.file("big.json"),
             json{{"name", "big"}, {"yaml", huge}}.dump());  // beyond an argv string
  Response too_big =
      curl(dir_, {"-H", "Authorization: Bearer " + kOperator, "-X", "POST", "--data-binary",
                  "@" + dir_.file("big.json"), server_->url("/api/v1/samples/oneshot")});
  EXPECT_EQ(too_big.status, 413) << too_big.body;

  // Permissions: a viewer reads, never writes.
  EXPECT_EQ(get("/api/v1/samples/oneshot", kViewer).status, 200);
  EXPECT_EQ(curl(dir_, json_post(server_->url("/api/v1/samples/oneshot"), replace, kViewer)).status,
            403);
  EXPECT_EQ(
      curl(dir_, with_token({"-X", "DELETE", server_->url("/api/v1/samples/oneshot/user/my-boost")},
                            kViewer))
          .status,
      403);

  // Deleting: user samples only.
  Response system = curl(
      dir_,
      with_token({"-X", "DELETE", server_->url("/api/v1/samples/oneshot/oneshot/volume_boost")},
                 kOperator));
  EXPECT_EQ(system.status, 403);
  EXPECT_TRUE(contains(system.body, "system sample")) << system.body;
  EXPECT_TRUE(fs::exists(kRepo / "samples/pipelines/oneshot/volume_boost.yml"));
  EXPECT_EQ(curl(dir_, with_token({"-X", "DELETE", "--path-as-is",
                                   server_->url("/api/v1/samples/oneshot/user/../x")},
                                  kOperator))
                .status,
            400);
  Response deleted =
      curl(dir_, with_token({"-X", "DELETE", server_->url("/api/v1/samples/oneshot/user/my-boost")},
                            kOperator));
  EXPECT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_FALSE(fs::exists(dir_.path() / "samples/user/my-boost.yml"));
  EXPECT_EQ(
      curl(dir_, with_token({"-X", "DELETE", server_->url("/api/v1/samples/oneshot/user/my-boost")},
                            kOperator))
          .status,
      404);
  EXPECT_EQ(get("/api/v1/samples/oneshot/user/my-boost").status, 404);
  Response wrong_method =
      curl(dir_, with_token({"-X", "PUT", server_->url("/api/v1/samples/dynamic")}, kOperator));
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.header("Allow"), "GET");
}

// ---------------------------------------------------------------------------------------------
// Audio assets

TEST_F(UiRoutes, UploadsListsServesAndDeletesUserAudioAssets) {
  start();
  Response list = get("/api/v1/assets/audio");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body_json().size(), 1u) << list.body;
  const json system = list.body_json()[0];
  EXPECT_EQ(system["id"], "speech.ogg");
  EXPECT_EQ(system["format"], "ogg");
  EXPECT_EQ(system["is_system"], true);
  EXPECT_EQ(system["license"], "CC0-1.0");
  EXPECT_EQ(system["size_bytes"], fs::file_size(kRepo / "samples/audio/speech.ogg"));

  const std::string ogg = (kRepo / "samples/audio/speech.ogg").string();
  auto upload = [&](const std::string& file, const std::string& name, const std::string& token) {
    return curl(dir_, with_token({"-F", "file=@" + file + ";filename=" + name,
                                  server_->url("/api/v1/assets/audio")},
                                 token));
  };
  Response up = upload(ogg, "my voice.ogg", kOperator);
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(up.body_json()["id"], "my_voice.ogg");
  EXPECT_EQ(up.body_json()["is_system"], false);
  EXPECT_EQ(read_file((dir_.path() / "audio/user/my_voice.ogg").string()), read_file(ogg));
  Response both = get("/api/v1/assets/audio");
  EXPECT_EQ(both.body_json().size(), 2u);
  Response bytes = get("/api/v1/assets/audio/file/user/my_voice.ogg");
  EXPECT_EQ(bytes.status, 200);
  EXPECT_EQ(bytes.header("Content-Type"), "audio/ogg");
  EXPECT_EQ(bytes.body, read_file(ogg));
  EXPECT_EQ(get("/api/v1/assets/audio/file/system/speech.ogg").body, read_file(ogg));
  EXPECT_EQ(get("/api/v1/assets/audio/file/system/nope.ogg").status, 404);
  EXPECT_EQ(get("/api/v1/assets/audio/file/other/speech.ogg").status, 400);

  // Formats are checked by extension and by content; names are unique.
  EXPECT_EQ(upload(ogg, "my voice.ogg", kOperator).status, 409);
  Response text = upload(ogg, "notes.txt", kOperator);
  EXPECT_EQ(text.status, 400);
  EXPECT_TRUE(contains(text.body, ".opus, .ogg, .flac, .mp3 or .wav")) << text.body;
  Response disguised = upload((kRepo / "samples/audio/tone_440.wav").string(), "tone.ogg", kOperator);
  EXPECT_EQ(disguised.status, 400);
  EXPECT_TRUE(contains(disguised.body, "not a ogg file (it looks like wav)")) << disguised.body;
  EXPECT_FALSE(fs::exists(dir_.path() / "audio/user/tone.ogg"));
  Response no_file =
      curl(dir_, with_token({"-F", "file=plain", server_->url("/api/v1/assets/audio")}, kOperator));
  EXPECT_EQ(no_file.status, 400);
  Response not_multipart = curl(
      dir_, with_token({"-X", "POST", "--data-binary", "x", server_->url("/api/v1/assets/audio")},
                       kOperator));
  EXPECT_EQ(not_multipart.status, 400);
  EXPECT_EQ(upload(ogg, "viewer.ogg", kViewer).status, 403);

  // Deleting: user assets only.
  Response sys = curl(
      dir_,
      with_token({"-X", "DELETE", server_->url("/api/v1/assets/audio/speech.ogg")}, kOperator));
  EXPECT_EQ(sys.status, 403);
  EXPECT_TRUE(fs::exists(dir_.path() / "audio/speech.ogg"));
  EXPECT_EQ(
      curl(dir_,
           with_token({"-X", "DELETE", server_->url("/api/v1/assets/audio/my_voice.ogg")}, kViewer))
          .status,
      403);
  EXPECT_EQ(
      curl(dir_, with_token({"-X", "DELETE", server_->url("/api/v1/assets/audio/my_voice.ogg")},
                            kOperator))
          .status,
      200);
  EXPECT_FALSE(fs::exists(dir_.path() / "audio/user/my_voice.ogg"));
  EXPECT_EQ(
      curl(dir_, with_token({"-X", "DELETE", server_->url("/api/v1/assets/audio/my_voice.ogg")},
                            kOperator))
          .status,
      404);
  EXPECT_EQ(curl(dir_, with_token({"-X", "DELETE", server_->url("/api/v1/assets/audio/.hidden")},
                                  kOperator))
                .status,
            400);
}

// ---------------------------------------------------------------------------------------------
// Validate

TEST_F(UiRoutes, ValidatesWithoutRunningAndReportsEachProblemWithItsPlace) {
  start("security:\n  allowed_file_paths: [\"samples/**\"]\n");
  const std::string boost =
      read_file((kRepo / "samples/pipelines/oneshot/volume_boost.yml").string());
  // A viewer may validate (nothing runs).
  Response ok = curl(dir_, json_post(server_->url("/api/v1/validate"), {{"yaml", boost}}, kViewer));
  ASSERT_EQ(ok.status, 200) << ok.body;
  const json v = ok.body_json();
  EXPECT_EQ(v["valid"], true);
  EXPECT_EQ(v["mode"], "oneshot");
  EXPECT_EQ(v["errors"], json::array());
  EXPECT_EQ(v["pipeline"]["nodes"]["step_3"]["kind"], "audio::gain");
  EXPECT_EQ(v["pipeline"]["nodes"]["step_3"]["params"]["gain"], 2.0);
  EXPECT_EQ(v["pipeline"]["connections"].size(), 6u);
  EXPECT_EQ(v["pipeline"]["node_order"][0], "step_0");

  Response bad = curl(
      dir_, json_post(server_->url("/api/v1/validate"),
                      {{"yaml",
                        "mode: oneshot\nnodes:\n  in: { kind: streamkit::http_input }\n"
                        "  loud:\n    kind: audio::gain\n    params: { gain: 99 }\n    needs: in\n"
                        "  out: { kind: streamkit::http_output, needs: loud }\n"}},
                      kOperator));
  ASSERT_EQ(bad.status, 200);
  const json errors = bad.body_json()["errors"];
  EXPECT_EQ(bad.body_json()["valid"], false);
  EXPECT_EQ(bad.body_json()["pipeline"], nullptr);
  ASSERT_GE(errors.size(), 2u) << bad.body;
  bool range = false, types = false;
  for (const auto& e : errors) {
    range = range || (e["node"] == "loud" && e["param"] == "gain" && e["line"] == 6);
    types = types || contains(e["message"].get<std::string>(), "pin type mismatch");
  }
  EXPECT_TRUE(range && types) << bad.body;

  // Dynamic: oneshot-only nodes and files outside the allow-list.
  Response dyn = curl(dir_, json_post(server_->url("/api/v1/validate"),
                                   {{"yaml",
                                     "mode: dynamic\nnodes:\n  r: { kind: core::file_reader, "
                                     "params: { path: /etc/passwd } }\n"
                                     "  o: { kind: streamkit::http_output, needs: r }\n"}},
                                   kOperator));
  const std::string dyn_text = dyn.body_json()["errors"].dump();
  EXPECT_TRUE(contains(dyn_text, "only works in oneshot pipelines")) << dyn.body;
  EXPECT_TRUE(contains(dyn_text, "/etc/passwd")) << dyn.body;
  Response live = curl(
      dir_,
      json_post(server_->url("/api/v1/validate"),
                {{"yaml", read_file((kRepo / "samples/pipelines/dynamic/live_gain.yml").string())}},
                kOperator));
  EXPECT_EQ(live.body_json()["valid"], true) << live.body;
  Response mismatch = curl(dir_, json_post(server_->url("/api/v1/validate"),
                                        {{"yaml", boost}, {"mode", "dynamic"}}, kOperator));
  EXPECT_TRUE(contains(mismatch.body, "the pipeline's mode is oneshot, not dynamic"))
      << mismatch.body;

  EXPECT_EQ(
      curl(dir_, json_post(server_->url("/api/v1/validate"), {{"yml", boost}}, kOperator)).status,
      400);
  EXPECT_EQ(curl(dir_, json_post(server_->url("/api/v1/validate"),
                                 {{"yaml", boost}, {"mode", "batch"}}, kOperator))
                .status,
            400);
  Response syntax = curl(dir_, json_post(server_->url("/api/v1/validate"),
                                      {{"yaml", "mode: oneshot\nsteps: [\n"}}, kOperator));
  EXPECT_EQ(syntax.status, 200);
  EXPECT_GT(syntax.body_json()["errors"][0].value("line", 0), 0) << syntax.body;
  EXPECT_EQ(curl(dir_, {"-X", "GET", "-H", "Authorization: Bearer " + kOperator,
                        server_->url("/api/v1/validate")})
                .status,
            405);
  EXPECT_EQ(curl(dir_, json_post(server_->url("/api/v1/validate"), {{"yaml", boost}})).status, 401);
}

// ---------------------------------------------------------------------------------------------
// Convert's text results

TEST_F(UiRoutes, HttpOutputsContentTypeParamNamesTheResponseOfAnyUpstream) {
  start("", /*tokens=*/false);
  // core::json_serialize announces no stream format: the param alone names the type.
  write_file(dir_.file("json.yml"),
             "mode: oneshot\nsteps:\n  - kind: streamkit::http_input\n  - kind: core::json_serialize\n"
             "    params: { newline_delimited: true }\n  - kind: streamkit::http_output\n"
             "    params: { content_type: application/x-ndjson }\n");
  write_file(dir_.file("in.txt"), "hello from the test");
  Response r = curl(dir_, {"-F", "config=@" + dir_.file("json.yml"), "-F", "media=@" + dir_.file("in.txt"),
                        server_->url("/api/v1/process")});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/x-ndjson");
  EXPECT_EQ(r.body, "\"hello from the test\"\n");
  // A muxer's own type still comes through when the param is empty.
  write_file(dir_.file("ogg.yml"),
             "mode: oneshot\nsteps:\n  - kind: streamkit::http_input\n  - kind: containers::wav::demuxer\n"
             "  - kind: audio::opus::encoder\n  - kind: containers::ogg::muxer\n  - kind: streamkit::http_output\n");
  Response ogg = curl(dir_, {"-F", "config=@" + dir_.file("ogg.yml"), "-F",
                          "media=@" + (kRepo / "samples/audio/tone_440.wav").string(), server_->url("/api/v1/process")});
  EXPECT_EQ(ogg.status, 200);
  EXPECT_EQ(ogg.header("Content-Type"), "audio/ogg");
}

// ---------------------------------------------------------------------------------------------
// Browser login

TEST_F(UiRoutes, LoginSetsAnHttpOnlyCookieThatRestAndTheWebSocketAccept) {
  start();
  Response me_before = get("/api/v1/auth/me", "");
  EXPECT_EQ(me_before.status, 401);

  Response wrong =
      curl(dir_, json_post(server_->url("/api/v1/auth/login"), {{"token", "not-a-token-at-all"}}));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_TRUE(wrong.set_cookies.empty());
  EXPECT_EQ(curl(dir_, json_post(server_->url("/api/v1/auth/login"), {{"tok", kOperator}})).status,
            400);
  Response foreign =
      curl(dir_, {"-H", "Origin: https://evil.example", "-X", "POST", "--data-binary",
                  json{{"token", kOperator}}.dump(), server_->url("/api/v1/auth/login")});
  EXPECT_EQ(foreign.status, 403) << foreign.body;

  Response login = curl(dir_, json_post(server_->url("/api/v1/auth/login"), {{"token", kOperator}}));
  ASSERT_EQ(login.status, 200) << login.body;
  EXPECT_EQ(login.body_json()["role"], "operator");
  EXPECT_EQ(login.body_json()["name"], "op");
  ASSERT_EQ(login.set_cookies.size(), 1u);
  const std::string cookie = login.set_cookies[0];
  EXPECT_TRUE(contains(cookie, "HttpOnly")) << cookie;
  EXPECT_TRUE(contains(cookie, "SameSite=Strict")) << cookie;
  EXPECT_TRUE(contains(cookie, "Path=/")) << cookie;
  EXPECT_FALSE(contains(cookie, kOperator)) << "the cookie must not carry the token";
  const std::string pair = cookie.substr(0, cookie.find(';'));  // skit_session=...
  ASSERT_EQ(pair.rfind("skit_session=", 0), 0u);

  auto with_cookie = [&](std::vector<std::string> args, const std::string& c) {
    args.insert(args.begin(), {"-H", "Cookie: theme=dark; " + c});
    return args;
  };
  Response me = curl(dir_, with_cookie({server_->url("/api/v1/auth/me")}, pair));
  EXPECT_EQ(me.status, 200);
  EXPECT_EQ(me.body_json()["role"], "operator");
  EXPECT_EQ(me.body_json()["via"], "cookie");
  EXPECT_EQ(curl(dir_, with_cookie({server_->url("/api/v1/sessions")}, pair)).status, 200);
  Response created = curl(dir_, with_cookie({"-X", "POST", "--data-binary", R"({"name":"by-cookie"})",
                                          server_->url("/api/v1/sessions")},
                                         pair));
  EXPECT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(
      curl(dir_, with_cookie({"-X", "DELETE", server_->url("/api/v1/sessions/by-cookie")}, pair))
          .status,
      200);
  // Bearer tokens keep working beside it; a bad cookie is no login.
  EXPECT_EQ(get("/api/v1/sessions", kOperator).status, 200);
  EXPECT_EQ(curl(dir_, with_cookie({server_->url("/api/v1/sessions")},
                                   "skit_session=" + std::string(64, 'a')))
                .status,
            401);

  // The WebSocket upgrade takes the cookie too.
  const std::vector<std::string> upgrade = {"--max-time",
                                            "2",
                                            "-H",
                                            "Connection: Upgrade",
                                            "-H",
                                            "Upgrade: websocket",
                                            "-H",
                                            "Sec-WebSocket-Version: 13",
                                            "-H",
                                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                                            server_->url("/api/v1/control")};
  EXPECT_EQ(curl(dir_, with_cookie(upgrade, pair)).status, 101);
  EXPECT_EQ(curl(dir_, upgrade).status, 401);

  // A viewer's cookie: reads yes, mutations 403.
  Response viewer = curl(dir_, json_post(server_->url("/api/v1/auth/login"), {{"token", kViewer}}));
  const std::string viewer_pair =
      viewer.set_cookies.at(0).substr(0, viewer.set_cookies.at(0).find(';'));
  EXPECT_EQ(curl(dir_, with_cookie({server_->url("/api/v1/sessions")}, viewer_pair)).status, 200);
  EXPECT_EQ(curl(dir_, with_cookie(
                           {"-X", "POST", "--data-binary", "{}", server_->url("/api/v1/sessions")},
                           viewer_pair))
                .status,
            403);
  EXPECT_EQ(
      curl(dir_, with_cookie(
                     {"-X", "POST", "-F",
                      "config=@" + (kRepo / "samples/pipelines/oneshot/volume_boost.yml").string(),
                      server_->url("/api/v1/process")},
                     viewer_pair))
          .status,
      403);

  // Logout ends the session: the old cookie no longer logs in.
  Response out = curl(dir_, with_cookie({"-X", "POST", server_->url("/api/v1/auth/logout")}, pair));
  EXPECT_EQ(out.status, 200);
  ASSERT_EQ(out.set_cookies.size(), 1u);
  EXPECT_TRUE(contains(out.set_cookies[0], "Max-Age=0"));
  EXPECT_EQ(curl(dir_, with_cookie({server_->url("/api/v1/sessions")}, pair)).status, 401);
  EXPECT_EQ(curl(dir_, with_cookie({server_->url("/api/v1/auth/me")}, pair)).status, 401);
}

TEST_F(UiRoutes, TheOriginGuardLetsThePagesOwnOriginThroughAndNoOther) {
  start();
  // The UI opened as http://skit.example:8080/ (a name the allow-list does not know).
  const std::vector<std::string> same = {"-H", "Host: skit.example:8080", "-H", "Origin: http://skit.example:8080"};
  auto post = [&](std::vector<std::string> headers) {
    headers.insert(headers.end(), {"-H", "Authorization: Bearer " + kOperator, "-X", "POST", "--data-binary",
                                   R"({"name":"origin-check"})", server_->url("/api/v1/sessions")});
    return curl(dir_, headers);
  };
  Response ok = post(same);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(curl(dir_, with_token({"-X", "DELETE", server_->url("/api/v1/sessions/origin-check")}, kOperator)).status, 200);
  // Another site, or a look-alike of the host, is still refused before anything happens.
  for (const char* origin : {"http://evil.example", "http://skit.example:8080.evil.example", "http://skit.example:8081"}) {
    Response r = post({"-H", "Host: skit.example:8080", "-H", std::string("Origin: ") + origin});
    EXPECT_EQ(r.status, 403) << origin;
    EXPECT_TRUE(contains(r.body, "is not allowed")) << r.body;
  }
  EXPECT_EQ(get("/api/v1/sessions").body_json().size(), 0u);
}

TEST_F(UiRoutes, WithoutTokensOnlyTheAllowListedOriginsPass) {
  // No authentication: a page at another name (a DNS-rebound one) must not drive the server.
  start("", /*tokens=*/false);
  Response r = curl(dir_, {"-H", "Host: rebound.example:8080", "-H", "Origin: http://rebound.example:8080", "-X", "POST",
                        "--data-binary", "{}", server_->url("/api/v1/sessions")});
  EXPECT_EQ(r.status, 403) << r.body;
  Response local = curl(dir_, {"-H", "Origin: http://127.0.0.1:" + std::to_string(server_->port()), "-X", "POST",
                            "--data-binary", "{}", server_->url("/api/v1/sessions")});
  EXPECT_EQ(local.status, 200) << local.body;
}

TEST_F(UiRoutes, WithoutTokensEveryoneIsAdminAndLoginSaysAuthIsOff) {
  start("", /*tokens=*/false);
  Response me = get("/api/v1/auth/me", "");
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.body_json()["auth_enabled"], false);
  EXPECT_EQ(me.body_json()["role"], "admin");
  Response login = curl(dir_, json_post(server_->url("/api/v1/auth/login"), {{"token", kOperator}}));
  EXPECT_EQ(login.status, 400);
  EXPECT_TRUE(contains(login.body, "not enabled")) << login.body;
  expect_security_headers(get("/api/v1/sessions", ""));
}

}  // namespace
}  // namespace skit::testing
