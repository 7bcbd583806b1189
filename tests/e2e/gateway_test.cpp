// SPDX-License-Identifier: MPL-2.0
// End-to-end tests of `skit serve`: the real server on 127.0.0.1:0 (working directory the
// repository root, so samples resolve; configuration written to a temp dir), driven by real
// curl processes. Each test stops the server with SIGTERM and checks that it exits 0 and
// leaves no worker process and no shared-memory segment behind.
//
// What they check is what a client relies on: status codes and response shapes, the audio
// that comes back (decoded and measured with ffmpeg), error messages that name the problem,
// limits that hold (413, 503 + Retry-After) without the server's memory growing, and that the
// server keeps serving after every bad request.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "audio_measure.hpp"
#include "http_client.hpp"
#include "skit_server.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kOpusFrame = 960;                // 20 ms at 48 kHz
const std::vector<std::string> kOpus128 = {"-c:a", "libopus", "-b:a", "128k"};
const std::vector<std::string> kOpus64 = {"-c:a", "libopus", "-b:a", "64k"};

const std::string kOperatorToken = "operator-token-0123456789";
const std::string kViewerToken = "viewer-token-0123456789ab";

std::string sample_pipeline(const std::string& name) {
  return (kRepo / "samples/pipelines/oneshot" / (name + ".yml")).string();
}

/// Prints a measured figure with the test's name (kept in the test log and the XML report).
void report(const std::string& key, double value) {
  ::testing::Test::RecordProperty(key, std::to_string(value));
  std::printf("[ measure  ] %s.%s: %s = %.4f\n",
              ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name(),
              ::testing::UnitTest::GetInstance()->current_test_info()->name(), key.c_str(), value);
}

/// Resident set size (VmRSS) of a process in KiB; -1 if it is gone.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

/// Open file descriptors of a process.
std::size_t open_fds(pid_t pid, const std::string& only_prefix = "") {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code link_ec;
    const std::string target = fs::read_symlink(it->path(), link_ec).string();
    n += only_prefix.empty() || target.rfind(only_prefix, 0) == 0 ? 1 : 0;
  }
  return n;
}

/// Sockets of a process (an idle server has two: its HTTP listener and the session manager's
/// ZeroMQ control socket).
std::size_t open_sockets(pid_t pid) {
  return open_fds(pid, "socket:");
}

// ---------------------------------------------------------------------------------------------
// The fixture: a server per test, stopped and checked in TearDown

/// A slow pipeline without upload: speech.ogg (3.9 s) paced at real time by core::pacer.
const char* kSlowPipeline = R"(name: slow
mode: oneshot
steps:
  - kind: core::file_reader
    params:
      path: samples/audio/speech.ogg
  - kind: containers::ogg::demuxer
  - kind: core::pacer
    params:
      speed: 1.0
  - kind: containers::ogg::muxer
    params:
      codec: opus
  - kind: streamkit::http_output
    params:
      content_type: audio/ogg
)";

class Gateway : public ::testing::Test {
 protected:
  /// Starts the server with the operator and viewer tokens and `limits` (YAML lines under
  /// `limits:`, indented by two spaces).
  void start(const std::string& limits = "") {
    std::string yaml =
        "server:\n"
        "  log_format: json\n"
        "  grpc_listen: \"\"\n"  // HTTP only: no fixed gRPC port shared by parallel tests
        "auth:\n"
        "  tokens:\n"
        "    - {name: ci, token: \"" +
        kOperatorToken +
        "\", role: operator}\n"
        "    - {name: dashboard, token: \"" +
        kViewerToken + "\", role: viewer}\n";
    if (!limits.empty()) {
      yaml += "limits:\n" + limits;
    }
    server_ = std::make_unique<SkitServer>(yaml);
    ASSERT_GT(server_->port(), 0) << "skit serve did not start:\n" << server_->log();
  }

  void TearDown() override {
    if (!server_) {
      return;
    }
    const pid_t pid = server_->pid();
    const int code = server_->stop();
    EXPECT_EQ(code, 0) << "skit serve did not exit cleanly on SIGTERM; its log:\n"
                       << server_->log().substr(0, 20000);
    EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 5s))
        << "worker processes outlived the server";
    EXPECT_TRUE(shm_segments_of(pid).empty()) << "shared memory left behind";
    if (HasFailure()) {
      const std::string log = server_->log();
      std::printf("---- server log (last 8 KiB) ----\n%s\n",
                  log.substr(log.size() > 8192 ? log.size() - 8192 : 0).c_str());
    }
  }

  static std::vector<std::string> bearer(const std::string& token) {
    if (token.empty()) {
      return {};
    }
    return {"-H", "Authorization: Bearer " + token};
  }

  Response get(const std::string& path, const std::string& token = kOperatorToken,
               const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = bearer(token);
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(server_->url(path));
    Response r = Curl(dir_, args).finish();
    responses_.push_back(r);
    return r;
  }

  /// curl arguments of POST /api/v1/process: `config` from a file, then `media` if given.
  std::vector<std::string> process_args(const std::string& config_file,
                                        const std::string& media_file = "",
                                        const std::string& token = kOperatorToken,
                                        const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = bearer(token);
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"-F", "config=@" + config_file});
    if (!media_file.empty()) {
      args.insert(args.end(), {"-F", "media=@" + media_file});
    }
    args.push_back(server_->url("/api/v1/process"));
    return args;
  }

  Response process(const std::string& config_file, const std::string& media_file = "",
                   const std::string& token = kOperatorToken,
                   const std::vector<std::string>& extra = {}) {
    Response r = Curl(dir_, process_args(config_file, media_file, token, extra)).finish();
    responses_.push_back(r);
    return r;
  }

  /// A pipeline document written to the temp dir.
  std::string pipeline_file(const std::string& name, const std::string& yaml) {
    const std::string path = dir_.file(name);
    write_file(path, yaml);
    return path;
  }

  /// A 3 s 1 kHz sine at 0.25 in Ogg/Opus (128 kb/s), made once per test.
  const std::string& sine_ogg() {
    if (sine_ogg_.empty()) {
      sine_ogg_ = dir_.file("sine.ogg");
      EXPECT_TRUE(make_sine(sine_ogg_, 1000, 0.25, 3.0, 48000, 1, kOpus128));
    }
    return sine_ogg_;
  }

  /// 16 MiB that a refused request is still sending when its answer leaves.
  const std::string& unread_upload() {
    if (unread_upload_.empty()) {
      unread_upload_ = dir_.file("upload.bin");
      write_file(unread_upload_, random_bytes(16 << 20, 5));
    }
    return unread_upload_;
  }

  /// A request that the server refuses before reading its 16 MiB body, sent without
  /// `Expect: 100-continue` (as browsers do), so the body is in flight when the answer leaves:
  /// the client must read that answer, not a connection reset.
  Response process_in_flight(const std::string& config_file, const std::string& token,
                             std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"-H", "Expect:"});
    return process(config_file, unread_upload(), token, extra);
  }

  /// The volume boost round trip: 200, audio/ogg, clean, +6.02 dB. Returns the RMS change.
  double expect_volume_boost_works() {
    const Response r = process(sample_pipeline("volume_boost"), sine_ogg());
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.curl_exit, 0) << r.describe();
    EXPECT_EQ(r.header("Content-Type"), "audio/ogg");
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
    const Decoded in = decode_f32(sine_ogg());
    const Decoded out = decode_f32(r.body_path);
    EXPECT_EQ(out.err, "") << "the response does not decode cleanly";
    const double delta = rms_db(out.middle()) - rms_db(in.middle());
    EXPECT_NEAR(delta, kSixDb, 0.1);
    return delta;
  }

  /// After a bad request: the server is alive and serves a good one.
  void expect_still_serving() {
    SCOPED_TRACE("a good request after the bad ones");
    ASSERT_TRUE(server_->running()) << server_->log();
    const Response h = get("/healthz", "");
    EXPECT_EQ(h.status, 200) << h.describe();
    expect_volume_boost_works();
  }

  // -- the bad requests, one function each (used alone and all in a row) --

  void yaml_syntax_error_is_400_with_line_and_column() {
    SCOPED_TRACE("YAML syntax error");
    const std::string yml = pipeline_file("syntax.yml",
                                          "mode: oneshot\n"
                                          "steps:\n"
                                          "  - kind: streamkit::http_input\n"
                                          "  - kind: [audio::gain\n"
                                          "  - kind: streamkit::http_output\n");
    const Response r = process(yml, sine_ogg());
    EXPECT_EQ(r.status, 400) << r.describe();
    EXPECT_TRUE(contains(r.body, "line ")) << r.body;
    EXPECT_TRUE(contains(r.body, "column ")) << r.body;
    EXPECT_TRUE(contains(lower(r.body), "yaml")) << r.body;
  }

  void unknown_node_kind_is_400_naming_the_node() {
    SCOPED_TRACE("unknown node kind");
    const std::string yml = pipeline_file("unknown.yml",
                                          "mode: oneshot\n"
                                          "nodes:\n"
                                          "  in:\n"
                                          "    kind: streamkit::http_input\n"
                                          "  mystery_box:\n"
                                          "    kind: audio::does_not_exist\n"
                                          "    needs: in\n"
                                          "  out:\n"
                                          "    kind: streamkit::http_output\n"
                                          "    needs: mystery_box\n");
    const Response r = process(yml, sine_ogg());
    EXPECT_EQ(r.status, 400) << r.describe();
    EXPECT_TRUE(contains(r.body, "mystery_box")) << r.body;
    EXPECT_TRUE(contains(r.body, "audio::does_not_exist")) << r.body;
    const Response flight = process_in_flight(yml, kOperatorToken);
    EXPECT_EQ(flight.status, 400) << flight.describe();
    EXPECT_TRUE(contains(flight.body, "mystery_box")) << flight.body;
  }

  void missing_config_part_is_400() {
    SCOPED_TRACE("missing config part");
    // Only a media part.
    const Response only_media =
        process_raw({"-F", "media=@" + sine_ogg(), server_->url("/api/v1/process")});
    EXPECT_EQ(only_media.status, 400) << only_media.describe();
    EXPECT_TRUE(contains(only_media.body, "'config'")) << only_media.body;
    // A multipart body with no part at all.
    const std::string empty = dir_.file("empty-multipart.txt");
    write_file(empty, "--xyz--\r\n");
    const Response no_parts =
        process_raw({"-H", "Content-Type: multipart/form-data; boundary=xyz", "--data-binary",
                     "@" + empty, server_->url("/api/v1/process")});
    EXPECT_EQ(no_parts.status, 400) << no_parts.describe();
    EXPECT_TRUE(contains(no_parts.body, "'config'")) << no_parts.body;
    // Not multipart at all.
    const Response not_multipart =
        process_raw({"-H", "Content-Type: application/json", "--data-binary", "{}",
                     server_->url("/api/v1/process")});
    EXPECT_EQ(not_multipart.status, 400) << not_multipart.describe();
    EXPECT_TRUE(contains(not_multipart.body, "'config'")) << not_multipart.body;
  }

  void config_not_first_is_400() {
    SCOPED_TRACE("config not first");
    const Response r = process_raw({"-F", "media=@" + sine_ogg(), "-F",
                                    "config=@" + sample_pipeline("volume_boost"),
                                    server_->url("/api/v1/process")});
    EXPECT_EQ(r.status, 400) << r.describe();
    EXPECT_TRUE(contains(r.body, "first")) << r.body;
    EXPECT_TRUE(contains(r.body, "'config'")) << r.body;
  }

  /// Needs limits.max_body_bytes well below the 50 MiB sent (and above the 16 MiB of
  /// unread_upload() when other cases run on the same server).
  void oversize_upload_is_413_without_growing_the_server() {
    SCOPED_TRACE("oversize upload");
    const std::string big = dir_.file("big.bin");
    if (!fs::exists(big)) {
      write_file(big, random_bytes(50 << 20, 9));
    }
    // With Content-Length (curl adds `Expect: 100-continue`), chunked, and without Expect.
    // An MP4 upload: the demuxer buffers its input (the index is at the end), so no response
    // byte can leave before the limit is hit and the answer can still be a clean 413.
    const std::string yml = sample_pipeline("aac_mp4_to_opus_ogg");
    const long rss_before = rss_kib(server_->pid());

    const Response sized = process(yml, big);
    EXPECT_EQ(sized.status, 413) << sized.describe();
    EXPECT_TRUE(contains(sized.body, "max_body_bytes")) << sized.body;
    const long rss_after_sized = rss_kib(server_->pid());

    const Response chunked =
        process(yml, big, kOperatorToken, {"-H", "Transfer-Encoding: chunked"});
    EXPECT_EQ(chunked.status, 413) << chunked.describe();
    EXPECT_TRUE(contains(chunked.body, "max_body_bytes")) << chunked.body;
    // Without `Expect: 100-continue` (browsers never send it) the body is already on its way
    // when the 413 leaves; the client must still read the 413, not a connection reset.
    const Response no_expect = process(yml, big, kOperatorToken, {"-H", "Expect:"});
    EXPECT_EQ(no_expect.status, 413) << no_expect.describe();
    EXPECT_TRUE(contains(no_expect.body, "max_body_bytes")) << no_expect.body;
    const long rss_after = rss_kib(server_->pid());

    report("rss_before_kib", static_cast<double>(rss_before));
    report("rss_after_content_length_kib", static_cast<double>(rss_after_sized));
    report("rss_after_chunked_kib", static_cast<double>(rss_after));
    report("content_length_413_seconds", sized.seconds);
    report("chunked_413_seconds", chunked.seconds);
    report("no_expect_413_seconds", no_expect.seconds);
    EXPECT_LT(rss_after - rss_before, 4 * 1024) << "the server's RSS grew with the upload";
  }

  void wrong_token_is_401() {
    SCOPED_TRACE("wrong token");
    for (const std::string& token : {std::string("not-a-valid-token-at-all"), std::string()}) {
      const Response g = get("/api/v1/config", token);
      EXPECT_EQ(g.status, 401) << g.describe();
      EXPECT_EQ(g.header("WWW-Authenticate"), "Bearer");
      EXPECT_TRUE(contains(g.body, "token")) << g.body;
      const Response p = process(sample_pipeline("volume_boost"), sine_ogg(), token);
      EXPECT_EQ(p.status, 401) << p.describe();
      EXPECT_TRUE(contains(p.body, "token")) << p.body;
      const Response flight = process_in_flight(sample_pipeline("volume_boost"), token);
      EXPECT_EQ(flight.status, 401) << flight.describe();
    }
  }

  void viewer_may_not_process_403() {
    SCOPED_TRACE("viewer calls process");
    const Response r = process(sample_pipeline("volume_boost"), sine_ogg(), kViewerToken);
    EXPECT_EQ(r.status, 403) << r.describe();
    EXPECT_TRUE(contains(r.body, "viewer")) << r.body;
    const Response flight = process_in_flight(sample_pipeline("volume_boost"), kViewerToken);
    EXPECT_EQ(flight.status, 403) << flight.describe();
    EXPECT_TRUE(contains(flight.body, "viewer")) << flight.body;
    // The viewer may still read.
    EXPECT_EQ(get("/api/v1/schema/packets", kViewerToken).status, 200);
  }

  void path_escape_is_403() {
    SCOPED_TRACE("path escape");
    for (const std::string path :
         {"../../etc/passwd", "/etc/passwd", "samples/../../../etc/passwd"}) {
      const std::string yml = pipeline_file("escape.yml",
                                            "mode: oneshot\n"
                                            "nodes:\n"
                                            "  reader:\n"
                                            "    kind: core::file_reader\n"
                                            "    params:\n"
                                            "      path: " +
                                                path +
                                                "\n"
                                                "  out:\n"
                                                "    kind: streamkit::http_output\n"
                                                "    needs: reader\n");
      const Response r = process(yml);
      EXPECT_EQ(r.status, 403) << path << ": " << r.describe();
      EXPECT_TRUE(contains(r.body, "reader")) << r.body;
      EXPECT_TRUE(contains(r.body, path)) << r.body;
      EXPECT_FALSE(contains(r.body, "root:")) << "the file's content leaked";
    }
  }

  void foreign_origin_is_403() {
    SCOPED_TRACE("foreign Origin");
    const Response p = process(sample_pipeline("volume_boost"), sine_ogg(), kOperatorToken,
                               {"-H", "Origin: http://evil.example"});
    EXPECT_EQ(p.status, 403) << p.describe();
    EXPECT_TRUE(contains(p.body, "http://evil.example")) << p.body;
    const Response flight = process_in_flight(sample_pipeline("volume_boost"), kOperatorToken,
                                              {"-H", "Origin: http://evil.example"});
    EXPECT_EQ(flight.status, 403) << flight.describe();
    const Response ws = get(
        "/api/v1/control", kOperatorToken,
        {"-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
         "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H", "Origin: http://evil.example"});
    EXPECT_EQ(ws.status, 403) << ws.describe();
    EXPECT_TRUE(contains(ws.body, "http://evil.example")) << ws.body;
    // An allowed origin passes.
    const Response ok = process(sample_pipeline("volume_boost"), sine_ogg(), kOperatorToken,
                                {"-H", "Origin: http://localhost:5173"});
    EXPECT_EQ(ok.status, 200) << ok.describe();
  }

  /// Needs limits.max_concurrent_oneshots: 1.
  void over_the_concurrency_limit_is_503_with_retry_after() {
    SCOPED_TRACE("concurrency limit");
    const std::string slow_yml = pipeline_file("slow.yml", kSlowPipeline);
    Curl slow(dir_, process_args(slow_yml));
    ASSERT_TRUE(wait_until(
        [&] {
          const json h = get("/healthz", "").body_json();
          return h.is_object() && h.value("active_oneshots", 0) == 1;
        },
        10s))
        << "the slow pipeline did not start";
    const Response busy = process(sample_pipeline("volume_boost"), sine_ogg());
    EXPECT_EQ(busy.status, 503) << busy.describe();
    EXPECT_EQ(busy.header("Retry-After"), "1");
    EXPECT_TRUE(contains(busy.body, "max_concurrent_oneshots") || contains(busy.body, "limit 1"))
        << busy.body;
    const Response flight = process_in_flight(sample_pipeline("volume_boost"), kOperatorToken);
    EXPECT_EQ(flight.status, 503) << flight.describe();
    EXPECT_EQ(flight.header("Retry-After"), "1");
    const Response held = slow.finish();
    responses_.push_back(held);
    EXPECT_EQ(held.status, 200) << held.describe();
    EXPECT_GT(held.seconds, 3.0) << "core::pacer did not pace";
    EXPECT_EQ(decode_errors(held.body_path), "");
  }

  Response process_raw(std::vector<std::string> args) {
    std::vector<std::string> all = bearer(kOperatorToken);
    all.insert(all.end(), args.begin(), args.end());
    Response r = Curl(dir_, all).finish();
    responses_.push_back(r);
    return r;
  }

  TempDir dir_;
  std::unique_ptr<SkitServer> server_;
  std::vector<Response> responses_;  // every response of the test, for the nosniff check
  std::string sine_ogg_;
  std::string unread_upload_;
};

// ---------------------------------------------------------------------------------------------
// Endpoints

const json* find_by(const json& list, const std::string& key, const std::string& value) {
  for (const auto& item : list) {
    if (item.is_object() && item.value(key, "") == value) {
      return &item;
    }
  }
  return nullptr;
}

TEST_F(Gateway, EveryEndpointAnswersWithItsShapeAndNosniff) {
  start("  max_body_bytes: 3000000\n  max_concurrent_oneshots: 5\n");

  const Response health = get("/healthz", "");  // open without a token
  ASSERT_EQ(health.status, 200) << health.describe();
  EXPECT_EQ(health.header("Content-Type"), "application/json");
  EXPECT_EQ(health.body_json().value("status", ""), "ok") << health.body;

  const Response config = get("/api/v1/config");
  ASSERT_EQ(config.status, 200) << config.describe();
  const json c = config.body_json();
  EXPECT_EQ(c["limits"]["max_body_bytes"], 3000000) << config.body;
  EXPECT_EQ(c["limits"]["max_concurrent_oneshots"], 5) << config.body;
  EXPECT_TRUE(c.contains("version")) << config.body;

  const Response perm_op = get("/api/v1/permissions");
  ASSERT_EQ(perm_op.status, 200) << perm_op.describe();
  EXPECT_EQ(perm_op.body_json()["role"], "operator") << perm_op.body;
  EXPECT_EQ(perm_op.body_json()["permissions"]["process_oneshot"], true) << perm_op.body;
  const Response perm_view = get("/api/v1/permissions", kViewerToken);
  ASSERT_EQ(perm_view.status, 200) << perm_view.describe();
  EXPECT_EQ(perm_view.body_json()["role"], "viewer") << perm_view.body;
  EXPECT_EQ(perm_view.body_json()["permissions"]["process_oneshot"], false) << perm_view.body;
  EXPECT_EQ(perm_view.body_json()["permissions"]["list_nodes"], true) << perm_view.body;

  const Response nodes = get("/api/v1/schema/nodes");
  ASSERT_EQ(nodes.status, 200) << nodes.describe();
  const json n = nodes.body_json();
  ASSERT_TRUE(n.is_array()) << nodes.body.substr(0, 500);
  const json* reader = find_by(n, "kind", "core::file_reader");
  ASSERT_NE(reader, nullptr) << "no core::file_reader in the node schema";
  ASSERT_TRUE(reader->contains("param_schema")) << reader->dump();
  EXPECT_EQ((*reader)["param_schema"]["type"], "object") << reader->dump();
  EXPECT_TRUE((*reader)["param_schema"]["properties"].contains("path")) << reader->dump();
  EXPECT_NE(find_by(n, "kind", "streamkit::http_input"), nullptr);
  EXPECT_NE(find_by(n, "kind", "audio::gain"), nullptr);

  const Response packets = get("/api/v1/schema/packets");
  ASSERT_EQ(packets.status, 200) << packets.describe();
  const json packet_types = packets.body_json();
  const json* raw = find_by(packet_types, "id", "RawAudio");
  ASSERT_NE(raw, nullptr) << packets.body;
  EXPECT_TRUE(raw->contains("compatibility")) << raw->dump();

  const Response list = get("/api/v1/samples/oneshot");
  ASSERT_EQ(list.status, 200) << list.describe();
  const std::string boost_yaml = read_file(sample_pipeline("volume_boost"));
  const json samples = list.body_json();
  const json* boost = find_by(samples, "id", "oneshot/volume_boost");
  ASSERT_NE(boost, nullptr) << list.body.substr(0, 1000);
  EXPECT_EQ((*boost)["yaml"], boost_yaml);
  EXPECT_EQ((*boost)["name"], "Volume boost (Ogg/Opus)");
  std::size_t sample_files = 0;
  for (const auto& e : fs::directory_iterator(kRepo / "samples/pipelines/oneshot")) {
    sample_files += e.path().extension() == ".yml" || e.path().extension() == ".yaml" ? 1 : 0;
  }
  EXPECT_EQ(samples.size(), sample_files) << "every sample file is listed";

  const Response one = get("/api/v1/samples/oneshot/volume_boost");
  ASSERT_EQ(one.status, 200) << one.describe();
  EXPECT_EQ(one.body_json()["id"], "oneshot/volume_boost") << one.body;
  EXPECT_EQ(one.body_json()["yaml"], boost_yaml);
  const Response missing = get("/api/v1/samples/oneshot/no_such_sample");
  EXPECT_EQ(missing.status, 404) << missing.describe();
  EXPECT_TRUE(contains(missing.body, "no_such_sample")) << missing.body;
  const Response sneaky = get("/api/v1/samples/oneshot/..%2F..%2Fsecret");
  EXPECT_GE(sneaky.status, 400) << sneaky.describe();
  EXPECT_LT(sneaky.status, 500) << sneaky.describe();

  const Response nowhere = get("/api/v1/nowhere");
  EXPECT_EQ(nowhere.status, 404) << nowhere.describe();
  EXPECT_EQ(get("/api/v1/config", "wrong-token-wrong-token").status, 401);
  expect_volume_boost_works();

  const Response metrics = get("/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.describe();
  EXPECT_EQ(metrics.header("Content-Type").rfind("text/plain", 0), 0U)
      << metrics.header("Content-Type");
  EXPECT_TRUE(contains(metrics.body, "# TYPE skit_http_requests_total counter")) << metrics.body;
  EXPECT_TRUE(
      contains(metrics.body, "skit_http_requests_total{route=\"/healthz\",code=\"200\"} 1\n"))
      << metrics.body;
  EXPECT_TRUE(contains(metrics.body,
                       "skit_http_requests_total{route=\"/api/v1/process\",code=\"200\"} 1\n"))
      << metrics.body;
  EXPECT_TRUE(contains(metrics.body, "skit_oneshots_total{result=\"ok\"} 1\n")) << metrics.body;
  // Prometheus text: every line a comment or `name{labels} value`.
  std::istringstream lines(metrics.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    EXPECT_EQ(line.rfind("skit_", 0), 0U) << line;
    char* end = nullptr;
    std::strtod(line.c_str() + space + 1, &end);
    EXPECT_EQ(*end, '\0') << "not a number: " << line;
  }

  for (const auto& r : responses_) {
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff") << r.describe();
  }
}

// ---------------------------------------------------------------------------------------------
// Audio round trip

TEST_F(Gateway, VolumeBoostOverHttpRaisesRmsBy6Db) {
  start();
  const double delta = expect_volume_boost_works();
  report("rms_delta_db", delta);
}

TEST_F(Gateway, LargeUploadIsAnsweredWith100ContinueAndStreamsBackByteIdentical) {
  start();
  // curl asks for 100-continue above 1 MiB and waits a second for it when the server is
  // silent; a server that reads the body must say so.
  const std::string input = random_bytes(6 << 20, 3);
  write_file(dir_.file("in.bin"), input);
  const Response r = process(sample_pipeline("http_passthrough"), dir_.file("in.bin"));
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_TRUE(r.body == input) << "the passthrough changed the bytes (" << r.body.size() << " of "
                               << input.size() << ")";
  EXPECT_TRUE(contains(r.raw_headers, "100 Continue")) << r.raw_headers;
  report("seconds", r.seconds);
}

// ---------------------------------------------------------------------------------------------
// Bad requests: each answered with its status and a message naming the problem, and the
// server serves a good request afterwards.

TEST_F(Gateway, YamlSyntaxErrorIs400WithLineAndColumn) {
  start();
  yaml_syntax_error_is_400_with_line_and_column();
  expect_still_serving();
}

TEST_F(Gateway, UnknownNodeKindIs400NamingTheNode) {
  start();
  unknown_node_kind_is_400_naming_the_node();
  expect_still_serving();
}

TEST_F(Gateway, MissingConfigPartIs400) {
  start();
  missing_config_part_is_400();
  expect_still_serving();
}

TEST_F(Gateway, ConfigPartNotFirstIs400) {
  start();
  config_not_first_is_400();
  expect_still_serving();
}

TEST_F(Gateway, OversizeUploadIs413WithContentLengthAndChunkedWithoutGrowingRss) {
  start("  max_body_bytes: 1048576\n");
  expect_still_serving();  // warm up: first connection threads, allocator arenas
  oversize_upload_is_413_without_growing_the_server();
  expect_still_serving();
}

TEST_F(Gateway, WrongOrMissingTokenIs401) {
  start();
  wrong_token_is_401();
  expect_still_serving();
}

TEST_F(Gateway, ViewerCallingProcessIs403) {
  start();
  viewer_may_not_process_403();
  expect_still_serving();
}

TEST_F(Gateway, FileReaderPathEscapeIs403) {
  start();
  path_escape_is_403();
  expect_still_serving();
}

TEST_F(Gateway, ForeignOriginIs403OnProcessAndWebSocketUpgrade) {
  start();
  foreign_origin_is_403();
  expect_still_serving();
}

TEST_F(Gateway, OverTheConcurrencyLimitIs503WithRetryAfter) {
  start("  max_concurrent_oneshots: 1\n");
  over_the_concurrency_limit_is_503_with_retry_after();
  expect_still_serving();
}

TEST_F(Gateway, AllBadRequestsInARowThenAGoodOne) {
  // 20 MiB: above the 16 MiB refused uploads of the other cases, below the 50 MiB one.
  start("  max_body_bytes: 20971520\n  max_concurrent_oneshots: 1\n");
  expect_still_serving();
  yaml_syntax_error_is_400_with_line_and_column();
  unknown_node_kind_is_400_naming_the_node();
  missing_config_part_is_400();
  config_not_first_is_400();
  oversize_upload_is_413_without_growing_the_server();
  wrong_token_is_401();
  viewer_may_not_process_403();
  path_escape_is_403();
  foreign_origin_is_403();
  over_the_concurrency_limit_is_503_with_retry_after();
  expect_still_serving();
  for (const auto& r : responses_) {
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff") << r.describe();
  }
}

TEST_F(Gateway, CorruptMediaFailsBeforeTheResponseStartsWithAMessageNamingTheNode) {
  start();
  const std::string garbage = dir_.file("garbage.ogg");
  write_file(garbage, random_bytes(100000, 11));
  const Response r = process(sample_pipeline("volume_boost"), garbage);
  // An error status, not a 200 with a cut-off body: 422, since the demuxer's kCorruptMedia
  // reaches the run's status (it was a 500 while node failures all became kInternal).
  EXPECT_EQ(r.status, 422) << r.describe();
  EXPECT_TRUE(contains(r.body, "containers::ogg::demuxer")) << r.body;
  EXPECT_TRUE(contains(r.body, "Ogg")) << r.body;
  RecordProperty("http_status", r.status);
  expect_still_serving();
}

TEST_F(Gateway, AClientThatGoesAwayCancelsItsPipelineAtOnce) {
  start();
  const pid_t pid = server_->pid();
  // The paced pipeline runs about 4 s and writes its output rarely (Ogg pages): only watching
  // the connection notices the client leaving before the end.
  Curl gone(dir_, process_args(pipeline_file("slow.yml", kSlowPipeline), "", kOperatorToken,
                               {"--max-time", "1"}));
  const Response r = gone.finish();
  EXPECT_EQ(r.curl_exit, 28) << r.describe();  // curl's own timeout: it hung up
  const auto t0 = std::chrono::steady_clock::now();
  auto active = [&] {
    const json h = get("/healthz", "").body_json();
    return h.is_object() ? h.value("active_oneshots", -1) : -1;
  };
  EXPECT_TRUE(wait_until([&] { return active() == 0; }, 2s))
      << "the pipeline kept running for nobody";
  EXPECT_TRUE(wait_until([&] { return skit_workers(pid).empty(); }, 2s)) << "workers left";
  report("cancelled_after_s",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  const Response metrics = get("/metrics");
  EXPECT_TRUE(contains(metrics.body, "skit_oneshots_total{result=\"error\"} 1\n")) << metrics.body;
  expect_still_serving();
}

/// A TCP connection to the server that sends nothing (holds one of its connection slots).
class IdleConnection {
 public:
  explicit IdleConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  IdleConnection(const IdleConnection&) = delete;
  IdleConnection& operator=(const IdleConnection&) = delete;
  ~IdleConnection() { ::close(fd_); }
  [[nodiscard]] bool connected() const { return connected_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

TEST_F(Gateway, OverTheConnectionLimitIs503WithRetryAfterAndNosniff) {
  start("  max_connections: 2\n");
  {
    IdleConnection a(server_->port());
    IdleConnection b(server_->port());
    ASSERT_TRUE(a.connected() && b.connected());
    Response r;
    // The server counts a connection once its thread runs: poll until both are counted.
    ASSERT_TRUE(wait_until([&] { return (r = get("/healthz", "")).status == 503; }, 5s))
        << r.describe();
    EXPECT_EQ(r.header("Retry-After"), "1");
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
    EXPECT_TRUE(contains(r.body, "max_connections")) << r.body;
    // Every one of a series of refused requests gets its answer (not a reset).
    for (int i = 0; i < 20; ++i) {
      const Response again = process(sample_pipeline("volume_boost"), sine_ogg());
      EXPECT_EQ(again.status, 503) << again.describe();
    }
  }
  // The idle connections are gone: their slots free up.
  Response h;
  EXPECT_TRUE(wait_until([&] { return (h = get("/healthz", "")).status == 200; }, 5s))
      << h.describe();
  expect_still_serving();
}

TEST_F(Gateway, SigtermWithAnIdleConnectionOpenExitsAtOnce) {
  start();
  IdleConnection idle(server_->port());
  ASSERT_TRUE(idle.connected());
  EXPECT_EQ(get("/healthz", "").status, 200);  // the idle connection has been accepted by now
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = server_->pid();
  const int code = server_->stop();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report("exit_seconds", seconds);
  EXPECT_EQ(code, 0) << server_->log();
  EXPECT_LT(seconds, 2.0) << "a connection waiting for its next request held the shutdown";
  EXPECT_TRUE(shm_segments_of(pid).empty());
  server_.reset();  // stopped and checked here
}

// ---------------------------------------------------------------------------------------------
// Load

TEST_F(Gateway, ThirtyTwoConcurrentOneshotsSucceedAndLeaveNothingBehind) {
  constexpr int kRequests = 32;
  start("  max_concurrent_oneshots: 32\n");
  const std::string clip = dir_.file("ten.ogg");
  ASSERT_TRUE(make_sine(clip, 1000, 0.25, 10.0, 48000, 1, kOpus64));
  const std::string yml = sample_pipeline("volume_boost");
  const pid_t pid = server_->pid();
  const std::size_t idle_sockets = open_sockets(pid);  // no connection yet

  // Warm up once, then take the baseline.
  ASSERT_EQ(process(yml, clip).status, 200);
  ASSERT_TRUE(wait_until([&] { return skit_workers(pid).empty(); }, 5s));
  // The warm-up connection is closed when only the idle server's sockets are left.
  ASSERT_TRUE(wait_until([&] { return open_sockets(pid) == idle_sockets; }, 5s))
      << open_sockets(pid) << " sockets, " << idle_sockets << " when idle";
  const std::size_t fds_before = open_fds(pid);

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Curl>> calls;
  for (int i = 0; i < kRequests; ++i) {
    calls.push_back(std::make_unique<Curl>(dir_, process_args(yml, clip)));
  }
  std::vector<Response> results;
  for (auto& c : calls) {
    results.push_back(c->finish());
  }
  const double burst_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  int ok = 0;
  double worst_diff = 0;
  for (int i = 0; i < kRequests; ++i) {
    const Response& r = results[static_cast<std::size_t>(i)];
    SCOPED_TRACE("request " + std::to_string(i));
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.header("Content-Type"), "audio/ogg");
    const Probe p = probe(r.body_path);
    EXPECT_EQ(p.err, "") << "ffprobe complains";
    EXPECT_EQ(p.codec, "opus");
    const Decoded d = decode_f32(r.body_path);
    EXPECT_EQ(d.err, "") << "the output does not decode cleanly";
    const double diff = std::abs(static_cast<double>(d.samples.size()) - 480000.0);
    worst_diff = std::max(worst_diff, diff);
    EXPECT_LE(diff, kOpusFrame) << d.samples.size() << " samples";
    ok += r.status == 200 && d.err.empty() && diff <= kOpusFrame ? 1 : 0;
  }

  EXPECT_TRUE(wait_until([&] { return skit_workers(pid).empty(); }, 10s)) << "workers left running";
  EXPECT_TRUE(shm_segments_of(pid).empty()) << "shared memory left behind";
  EXPECT_TRUE(
      wait_until([&] { return open_sockets(pid) == idle_sockets && open_fds(pid) <= fds_before; }, 10s))
      << "fds before " << fds_before << ", after " << open_fds(pid) << " (" << open_sockets(pid)
      << " sockets)";
  const std::size_t fds_after = open_fds(pid);
  EXPECT_EQ(fds_after, fds_before);

  const Response metrics = get("/metrics");
  EXPECT_TRUE(contains(
      metrics.body, "skit_oneshots_total{result=\"ok\"} " + std::to_string(kRequests + 1) + "\n"))
      << metrics.body;
  EXPECT_TRUE(contains(metrics.body, "skit_oneshot_active 0\n")) << metrics.body;

  report("burst_seconds", burst_s);
  report("succeeded", ok);
  report("worst_duration_diff_samples", worst_diff);
  report("fds_before", static_cast<double>(fds_before));
  report("fds_after", static_cast<double>(fds_after));
  report("server_rss_kib_after", static_cast<double>(rss_kib(pid)));
}

}  // namespace
}  // namespace skit::testing
