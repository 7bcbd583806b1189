// SPDX-License-Identifier: MPL-2.0
// RTMP and SRT ingest into live sessions through the real `skit serve`: ffmpeg publishes a
// 3-second tone in real time (`-re`) to transport::rtmp::listen / transport::srt::listen, the
// session decodes it and writes Ogg/Opus, and the file lasts what was published. A publisher
// with a wrong stream key or passphrase is refused (and the key never appears in the log), and
// a port outside transports.listen_ports is refused before anything starts.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "audio_measure.hpp"
#include "session_clients.hpp"

namespace skit::testing {
namespace {

const std::string kStreamKey = "k3y-5f0e2a9c";
const std::string kPassphrase = "pass-7c1d44b09e";

/// The first of `count` consecutive ports that are free for TCP and UDP now.
int free_port_range(int count) {
  for (int base = 21000 + (::getpid() % 200) * 50; base < 60000; base += 50) {
    bool free = true;
    for (int p = base; p < base + count && free; ++p) {
      for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
        const int fd = ::socket(AF_INET, type, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(p));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        free = free && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
      }
    }
    if (free) {
      return base;
    }
  }
  return 0;
}

class Ingest : public ::testing::Test {
 protected:
  void SetUp() override {
    first_port_ = free_port_range(4);
    ASSERT_GT(first_port_, 0);
    const std::string root = dir_.path().string();
    server_ = std::make_unique<SkitServer>(session_config(
        "transports:\n"
        "  listen_ports: \"" + std::to_string(first_port_) + "-" + std::to_string(first_port_ + 3) + "\"\n"
        "security:\n"
        "  allowed_write_paths: ['" + root + "/**']\n"
        // transport::srt::caller: an SRT listener on loopback by its address, and any host on
        // the last port (which a name resolving to loopback must still not reach).
        "  allowed_fetch_urls: ['srt://127.0.0.1:" + std::to_string(first_port_ + 2) +
        "', 'srt://*:" + std::to_string(first_port_ + 3) + "']\n"));
    ASSERT_TRUE(server_->up()) << server_->log();
    ws_ = std::make_unique<WsClient>(server_->http_port());
    ASSERT_TRUE(ws_->open()) << ws_->error();
  }

  /// A session: `source` (a listener node's YAML) -> AAC decoder -> Opus -> Ogg -> file.
  json create(const std::string& name, const std::string& source, const std::string& out) {
    return ws_->request(
        {{"action", "createsession"},
         {"name", name},
         {"yaml", "mode: dynamic\n"
                  "nodes:\n"
                  "  ingest: " + source + "\n"
                  "  dec: {kind: audio::aac::decoder, needs: ingest}\n"
                  "  enc: {kind: audio::opus::encoder, needs: dec}\n"
                  "  mux: {kind: containers::ogg::muxer, params: {codec: opus}, needs: enc}\n"
                  "  writer: {kind: core::file_writer, params: {path: '" + out + "'}, needs: mux}\n"}});
  }

  /// Waits until the ingest node runs (its worker is up and about to listen).
  void wait_listening(const std::string& id) {
    const json running = ws_->wait_event(
        [&](const json& p) {
          return p.value("event", "") == "nodestatechanged" && p.value("session_id", "") == id &&
                 p.value("node_id", "") == "ingest" && p["state"] == "Running";
        },
        15s);
    ASSERT_FALSE(running.is_null()) << server_->log();
    std::this_thread::sleep_for(500ms);  // from running to the listening socket
  }

  /// ffmpeg publishing a 3 s 440 Hz tone as AAC in real time to `url` as `format`.
  static ToolResult publish(const std::string& format, const std::string& url) {
    return run_tool({"timeout", "20", "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-re",
                     "-f", "lavfi", "-i", "sine=frequency=440:duration=3:sample_rate=48000",
                     "-c:a", "aac", "-b:a", "128k", "-f", format, url});
  }

  TempDir dir_;
  int first_port_ = 0;
  std::unique_ptr<SkitServer> server_;
  std::unique_ptr<WsClient> ws_;
};

TEST_F(Ingest, RtmpPublishWithTheKeyIsWrittenAndAWrongKeyIsRefused) {
  const int port = first_port_;
  const std::string out = dir_.file("rtmp.ogg");
  const json created = create("rtmp-in",
                              "{kind: transport::rtmp::listen, params: {port: " + std::to_string(port) +
                                  ", stream_key: '" + kStreamKey + "'}}",
                              out);
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump() << server_->log();
  const std::string id = created["session_id"];
  // The key is a secret param: views show "***", the schema marks it writeOnly.
  const Response view = http_call(server_->http_port(), http::verb::get,
                                  "/api/v1/sessions/" + id + "/pipeline", kViewerToken);
  ASSERT_EQ(view.status, 200) << view.body;
  EXPECT_EQ(view.body_json()["nodes"]["ingest"]["params"].value("stream_key", ""), "***") << view.body;
  EXPECT_FALSE(contains(view.body, kStreamKey));
  const Response schema = http_call(server_->http_port(), http::verb::get, "/api/v1/schema/nodes", kViewerToken);
  bool write_only = false;
  for (const auto& k : schema.body_json()) {
    if (k.value("kind", "") == "transport::rtmp::listen") {
      write_only = k["param_schema"]["properties"]["stream_key"].value("writeOnly", false);
    }
  }
  EXPECT_TRUE(write_only) << "stream_key is not writeOnly in /api/v1/schema/nodes";
  wait_listening(id);
  const std::string base = "rtmp://127.0.0.1:" + std::to_string(port) + "/live/";
  const ToolResult wrong = publish("flv", base + "not-the-key");
  std::printf("publish with a wrong key: ffmpeg exit %d\n", wrong.exit_code);
  std::this_thread::sleep_for(300ms);  // the node listens again
  const auto t0 = std::chrono::steady_clock::now();
  const ToolResult right = publish("flv", base + kStreamKey);
  ASSERT_EQ(right.exit_code, 0) << right.err << server_->log();
  ASSERT_FALSE(wait_node_stopped(*ws_, id, "writer", 20s).is_null()) << server_->log();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const Decoded d = decode_f32(out);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  std::printf("RTMP ingest: %.3f s written for 3 s published (%.2f s from publish to file)\n",
              d.seconds(), took);
  EXPECT_NEAR(d.seconds(), 3.0, 0.1) << "only the accepted publisher's stream is written";
  EXPECT_NEAR(tone_amplitude(d.middle(0.2), 48000, 440), 0.125, 0.02);
  const std::string log = server_->log();
  EXPECT_TRUE(contains(log, "wrong stream key")) << log;
  EXPECT_FALSE(contains(log, kStreamKey)) << "the stream key reached the log";
  for (const auto& e : ws_->events()) {
    EXPECT_FALSE(contains(e.dump(), kStreamKey)) << "an event carried the stream key: " << e.dump();
  }
}

TEST_F(Ingest, SrtCallerWithThePassphraseIsWrittenAndAWrongOneIsRefused) {
  const int port = first_port_ + 1;
  const std::string out = dir_.file("srt.ogg");
  const json created = create("srt-in",
                              "{kind: transport::srt::listen, params: {port: " + std::to_string(port) +
                                  ", passphrase: '" + kPassphrase + "'}}",
                              out);
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump() << server_->log();
  const std::string id = created["session_id"];
  wait_listening(id);
  // linger: an SRT sender that ends its stream drops what is still in flight otherwise.
  const std::string base = "srt://127.0.0.1:" + std::to_string(port) + "?linger=3&pbkeylen=16&passphrase=";
  const ToolResult wrong = publish("mpegts", base + "another-passphrase");
  std::printf("call with a wrong passphrase: ffmpeg exit %d: %s\n", wrong.exit_code,
              wrong.err.substr(0, 200).c_str());
  EXPECT_NE(wrong.exit_code, 0) << "a caller with a wrong passphrase was let in";
  const ToolResult right = publish("mpegts", base + kPassphrase);
  ASSERT_EQ(right.exit_code, 0) << right.err << server_->log();
  ASSERT_FALSE(wait_node_stopped(*ws_, id, "writer", 20s).is_null()) << server_->log();
  const Decoded d = decode_f32(out);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  std::printf("SRT ingest: %.3f s written for 3 s published\n", d.seconds());
  EXPECT_NEAR(d.seconds(), 3.0, 0.1);
  EXPECT_NEAR(tone_amplitude(d.middle(0.2), 48000, 440), 0.125, 0.02);
  EXPECT_FALSE(contains(server_->log(), kPassphrase)) << "the passphrase reached the log";
}

// The other direction: ffmpeg is the SRT listener (as a contribution encoder would be) and the
// session calls it. The node keeps calling until the listener is up, so the order of the two
// starts does not matter.
TEST_F(Ingest, SrtCallerCallsAnAllowedListenerAndWritesWhatItSends) {
  const int port = first_port_ + 2;
  const std::string out = dir_.file("srt-caller.ogg");
  ToolResult sent;
  std::thread listener([&] {
    sent = publish("mpegts", "srt://127.0.0.1:" + std::to_string(port) +
                                 "?mode=listener&linger=3&pbkeylen=16&passphrase=" + kPassphrase);
  });
  const json created = create("srt-call",
                              "{kind: transport::srt::caller, params: {url: 'srt://127.0.0.1:" +
                                  std::to_string(port) + "', passphrase: '" + kPassphrase +
                                  "', timeout_secs: 15}}",
                              out);
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump() << server_->log();
  const std::string id = created["session_id"];
  const bool stopped = !wait_node_stopped(*ws_, id, "writer", 25s).is_null();
  listener.join();
  ASSERT_EQ(sent.exit_code, 0) << sent.err << server_->log();
  ASSERT_TRUE(stopped) << server_->log();
  const Decoded d = decode_f32(out);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  std::printf("SRT caller: %.3f s written for 3 s sent\n", d.seconds());
  EXPECT_NEAR(d.seconds(), 3.0, 0.1);
  EXPECT_NEAR(tone_amplitude(d.middle(0.2), 48000, 440), 0.125, 0.02);
  EXPECT_FALSE(contains(server_->log(), kPassphrase)) << "the passphrase reached the log";
}

TEST_F(Ingest, SrtCallerUrlsOffTheListOrResolvingToLoopbackAreRefused) {
  // Off the list: refused when the session is created, naming the node and the list.
  const json off = create("srt-off", "{kind: transport::srt::caller, params: {url: 'srt://127.0.0.1:" +
                                         std::to_string(first_port_ + 1) + "'}}",
                          dir_.file("off.ogg"));
  EXPECT_EQ(off.value("action", ""), "error") << off.dump();
  const std::string message = off.value("message", "");
  std::printf("off the list: %s\n", message.c_str());
  EXPECT_TRUE(contains(message, "security.allowed_fetch_urls")) << message;
  EXPECT_TRUE(contains(message, "ingest")) << message;

  // On the list by a wildcard host, but `localhost` resolves to loopback: the node refuses to
  // call it after resolution, and the listener sees no one.
  const int port = first_port_ + 3;
  const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const json created = create("srt-loop", "{kind: transport::srt::caller, params: {url: 'srt://localhost:" +
                                              std::to_string(port) + "', timeout_secs: 5}}",
                              dir_.file("loop.ogg"));
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump();
  const std::string id = created["session_id"];
  const json failed = ws_->wait_event(
      [&](const json& p) {
        return p.value("event", "") == "nodestatechanged" && p.value("session_id", "") == id &&
               p.value("node_id", "") == "ingest" && p["state"].is_object() &&
               p["state"].contains("Failed");
      },
      15s);
  ASSERT_FALSE(failed.is_null()) << server_->log();
  std::printf("localhost: %s\n", failed["state"].dump().c_str());
  EXPECT_TRUE(contains(failed["state"].dump(), "loopback address")) << failed.dump();
  char byte = 0;
  EXPECT_LT(::recv(udp, &byte, 1, MSG_DONTWAIT), 0) << "the caller reached the loopback listener";
  ::close(udp);
  EXPECT_EQ(http_call(server_->http_port(), http::verb::get, "/healthz", "").status, 200);
}

// 128 kbit/s AAC into a listener limited to 16 kbit/s: past twice the limit over its 2 s
// window the node ends the stream, naming the limit, and the publisher is cut off.
TEST_F(Ingest, APublisherOverTheBitrateLimitIsDisconnected) {
  const int port = first_port_;
  const json created = create("rtmp-flood",
                              "{kind: transport::rtmp::listen, params: {port: " + std::to_string(port) +
                                  ", stream_key: " + kStreamKey + ", max_bitrate_kbps: 16}}",
                              dir_.file("flood.ogg"));
  ASSERT_EQ(created.value("action", ""), "sessioncreated") << created.dump() << server_->log();
  const std::string id = created["session_id"];
  wait_listening(id);
  const auto started = std::chrono::steady_clock::now();
  const ToolResult sent = publish("flv", "rtmp://127.0.0.1:" + std::to_string(port) + "/live/" + kStreamKey);
  const double publish_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const json failed = ws_->wait_event(
      [&](const json& p) {
        return p.value("event", "") == "nodestatechanged" && p.value("session_id", "") == id &&
               p.value("node_id", "") == "ingest" && p["state"].is_object() &&
               p["state"].contains("Failed");
      },
      10s);
  ASSERT_FALSE(failed.is_null()) << server_->log();
  std::printf("128 kbit/s into max_bitrate_kbps 16: %s; ffmpeg exit %d after %.2f s\n",
              failed["state"].dump().c_str(), sent.exit_code, publish_s);
  EXPECT_TRUE(contains(failed["state"].dump(), "max_bitrate_kbps")) << failed.dump();
  EXPECT_LT(publish_s, 2.9) << "the publisher was not cut off before its 3 s stream ended";
  EXPECT_EQ(http_call(server_->http_port(), http::verb::get, "/healthz", "").status, 200);
}

TEST_F(Ingest, APortOutsideTheConfiguredRangeIsRefusedWithItsPlace) {
  const json created = create("bad-port", "{kind: transport::rtmp::listen, params: {port: 1935, stream_key: abc}}",
                              dir_.file("x.ogg"));
  EXPECT_EQ(created.value("action", ""), "error") << created.dump();
  const std::string message = created.value("message", "");
  std::printf("port 1935: %s\n", message.c_str());
  EXPECT_TRUE(contains(message, "transports.listen_ports")) << message;
  EXPECT_TRUE(contains(message, "ingest")) << message;
  EXPECT_EQ(http_call(server_->http_port(), http::verb::get, "/healthz", "").status, 200);
}

}  // namespace
}  // namespace skit::testing
