// SPDX-License-Identifier: MPL-2.0
// transport::http::fetcher through the real `skit serve`: a file on a loopback test server that
// security.allowed_fetch_urls lists is downloaded byte for byte and decoded; a URL off the list,
// a non-http scheme, a redirect and a host name that resolves to a loopback address are each
// refused with a reason naming the node, and only the allowed downloads reach the test server.
#include <gtest/gtest.h>

#include <netdb.h>

#include <fstream>
#include <random>
#include <sstream>

#include "audio_measure.hpp"
#include "http_client.hpp"
#include "loopback_http_server.hpp"
#include "skit_server.hpp"

namespace skit::testing {
namespace {

namespace bhttp = boost::beast::http;

/// A name from /etc/hosts, other than localhost, that resolves to a loopback address (Debian
/// maps the machine's own name to 127.0.1.1; containers list ip6-localhost): what a DNS answer
/// pointing a public-looking name at the host itself looks like to the fetcher.
std::string loopback_alias() {
  std::ifstream hosts("/etc/hosts");
  std::string line;
  while (std::getline(hosts, line)) {
    std::istringstream words(line.substr(0, line.find('#')));
    std::string address, name;
    if (!(words >> address) || !(address.rfind("127.", 0) == 0 || address == "::1")) {
      continue;
    }
    while (words >> name) {
      if (name != "localhost") {
        return name;
      }
    }
  }
  return "";
}

class Fetcher : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(15);
    media_.resize(300 * 1024);
    for (auto& c : media_) {
      c = static_cast<char>(rng());
    }
    ogg_ = dir_.file("tone.ogg");
    ASSERT_TRUE(make_sine(ogg_, 440, 0.25, 3.0, 48000, 1, {"-c:a", "libopus", "-b:a", "96k"}));
    ogg_bytes_ = read_file(ogg_);
    alias_ = loopback_alias();
    const std::string port = std::to_string(origin_.port());
    server_ = std::make_unique<SkitServer>(
        "server:\n  grpc_listen: \"\"\n"
        "security:\n"
        "  allowed_fetch_urls:\n"
        "    - \"http://127.0.0.1:" + port + "/media/*\"\n" +
        (alias_.empty() ? "" : "    - \"http://" + alias_ + ":" + port + "/*\"\n"));
    ASSERT_TRUE(server_->up()) << server_->log();
  }

  LoopbackHttpServer::Response serve(const LoopbackHttpServer::Request& req) {
    const std::string target(req.target());
    if (target == "/media/redirect") {
      LoopbackHttpServer::Response res{bhttp::status::found, req.version()};
      res.set(bhttp::field::location, "/media/blob");
      res.prepare_payload();
      return res;
    }
    if (target == "/media/missing") {
      LoopbackHttpServer::Response res{bhttp::status::not_found, req.version()};
      res.body() = "<html>not here</html>";
      res.prepare_payload();
      return res;
    }
    return LoopbackHttpServer::ok(req, target == "/media/tone.ogg" ? ogg_bytes_ : media_);
  }

  Response fetch(const std::string& url, const std::string& tail = "  - kind: streamkit::http_output\n") {
    const std::string cfg = dir_.file("pipeline-" + std::to_string(n_++) + ".yml");
    write_file(cfg, "mode: oneshot\n"
                    "nodes:\n"
                    "  fetch:\n"
                    "    kind: transport::http::fetcher\n"
                    "    params:\n"
                    "      url: '" + url + "'\n"
                    "      chunk_size: 16384\n" + tail);
    return curl(dir_, {"-F", "config=@" + cfg, server_->url("/api/v1/process")});
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(origin_.port()) + path;
  }

  TempDir dir_;
  std::string media_, ogg_, ogg_bytes_, alias_;
  LoopbackHttpServer origin_{[this](const LoopbackHttpServer::Request& r) { return serve(r); }};
  std::unique_ptr<SkitServer> server_;
  int n_ = 0;
};

TEST_F(Fetcher, AnAllowedUrlIsDownloadedByteForByteAndDecodes) {
  const Response raw = fetch(url("/media/blob"),
                             "  out:\n    kind: streamkit::http_output\n    needs: fetch\n");
  ASSERT_EQ(raw.status, 200) << raw.describe() << server_->log();
  EXPECT_EQ(read_file(raw.body_path).size(), media_.size());
  EXPECT_TRUE(read_file(raw.body_path) == media_) << "the body differs from what was served";

  // A fetched Ogg/Opus file through the decoder, as a source of real media.
  const Response decoded = fetch(url("/media/tone.ogg"),
                                 "  demux: {kind: containers::ogg::demuxer, needs: fetch}\n"
                                 "  dec: {kind: audio::opus::decoder, needs: demux}\n"
                                 "  enc: {kind: audio::opus::encoder, needs: dec}\n"
                                 "  mux: {kind: containers::ogg::muxer, params: {codec: opus}, needs: enc}\n"
                                 "  out: {kind: streamkit::http_output, needs: mux}\n");
  ASSERT_EQ(decoded.status, 200) << decoded.describe();
  EXPECT_NEAR(decode_f32(decoded.body_path).seconds(), 3.0, 0.03);
  EXPECT_EQ(origin_.requests().size(), 2U);
}

TEST_F(Fetcher, UrlsOffTheListOrNotHttpAreRefusedBeforeAnythingRuns) {
  const auto out = "  out:\n    kind: streamkit::http_output\n    needs: fetch\n";
  const Response off = fetch(url("/private/blob"), out);
  EXPECT_EQ(off.status, 403) << off.describe();
  EXPECT_TRUE(contains(off.body, "not on security.allowed_fetch_urls")) << off.body;
  EXPECT_TRUE(contains(off.body, "fetch")) << off.body;
  std::printf("off the list: HTTP %d %s\n", off.status, off.body.c_str());

  const Response ftp = fetch("ftp://127.0.0.1/media/blob", out);
  EXPECT_EQ(ftp.status, 400) << ftp.describe();
  EXPECT_TRUE(contains(ftp.body, "http")) << ftp.body;
  std::printf("ftp: HTTP %d %s\n", ftp.status, ftp.body.c_str());

  EXPECT_TRUE(origin_.requests().empty()) << "a refused URL reached the server";
}

TEST_F(Fetcher, RedirectsAndErrorPagesFailTheNodeWithTheReason) {
  const auto out = "  out:\n    kind: streamkit::http_output\n    needs: fetch\n";
  const Response redirect = fetch(url("/media/redirect"), out);
  EXPECT_GE(redirect.status, 400) << redirect.describe();
  EXPECT_TRUE(contains(redirect.body, "HTTP 302 redirect not followed")) << redirect.body;
  EXPECT_TRUE(contains(redirect.body, "/media/blob")) << redirect.body;
  std::printf("redirect: HTTP %d %s\n", redirect.status, redirect.body.c_str());

  const Response missing = fetch(url("/media/missing"), out);
  EXPECT_GE(missing.status, 400) << missing.describe();
  EXPECT_TRUE(contains(missing.body, "HTTP 404")) << missing.body;
  EXPECT_FALSE(contains(missing.body, "not here")) << "the error page was passed on as media";
  // The redirect was not followed: two requests, none for its target.
  const auto requests = origin_.requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0].target, "/media/redirect");
  EXPECT_EQ(requests[1].target, "/media/missing");
  EXPECT_EQ(http_call(server_->http_port(), bhttp::verb::get, "/healthz", "").status, 200);
}

TEST_F(Fetcher, AHostNameThatResolvesToLoopbackIsRefusedAfterResolution) {
  ASSERT_FALSE(alias_.empty()) << "no name in /etc/hosts maps to a loopback address";
  const std::string target = "http://" + alias_ + ":" + std::to_string(origin_.port()) + "/media/blob";
  const Response r = fetch(target, "  out:\n    kind: streamkit::http_output\n    needs: fetch\n");
  EXPECT_EQ(r.status, 403) << r.describe();
  EXPECT_TRUE(contains(r.body, "loopback address")) << r.body;
  std::printf("%s: HTTP %d %s\n", alias_.c_str(), r.status, r.body.c_str());
  EXPECT_TRUE(origin_.requests().empty()) << "the fetch reached the loopback server";
}

// Only the fetcher's worker may open IP sockets: a node downstream of it, in the same pipeline,
// that tries is killed by the sandbox (with grouped placement it would otherwise share the
// fetcher's worker and its network permission).
TEST_F(Fetcher, ANodeBesideTheFetcherCannotOpenASocket) {
  const Response r = fetch(url("/media/blob"),
                           "  probe: {kind: testing::fault, params: {mode: socket}, needs: fetch}\n"
                           "  out: {kind: streamkit::http_output, needs: probe}\n");
  EXPECT_GE(r.status, 500) << r.describe();
  EXPECT_TRUE(contains(r.body, "SIGSYS")) << r.body;
  EXPECT_TRUE(contains(r.body, "probe")) << r.body;
  EXPECT_FALSE(contains(r.body, "was allowed")) << r.body;
  std::printf("socket() beside the fetcher: HTTP %d %s\n", r.status, r.body.c_str());
  EXPECT_EQ(origin_.requests().size(), 1U) << "the fetcher itself downloaded";
}

}  // namespace
}  // namespace skit::testing
