// SPDX-License-Identifier: MPL-2.0
// The shared-memory boundary is a trust boundary: a worker can write anything over the pools
// and rings it maps. testing::fault in mode `scribble` does that (random words over every
// header, refcount, ring index, doorbell name, descriptor and payload it has mapped, for a
// second before each packet it forwards) between the server's own host-side nodes: streamkit::http_input produces into the
// pool and ring the scribbler reads, streamkit::http_output reads the ring and pool the
// scribbler writes. The server must neither crash nor hang: each request ends (an error or a
// short body) within the request time limit, /healthz stays up, the next clean request is
// byte for byte, and no worker or segment is left behind.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "http_client.hpp"
#include "skit_server.hpp"

namespace skit::testing {
namespace {

namespace bhttp = boost::beast::http;

std::size_t skit_segments() {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
    n += e.path().filename().string().rfind("skit-", 0) == 0 ? 1 : 0;
  }
  return n;
}

class ShmTrust : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(17);
    media_.resize(2 * 1024 * 1024);
    for (auto& c : media_) {
      c = static_cast<char>(rng());
    }
    media_path_ = dir_.file("media.bin");
    write_file(media_path_, media_);
    baseline_segments_ = skit_segments();
    server_ = std::make_unique<SkitServer>("limits:\n  request_timeout_ms: 10000\n");
    ASSERT_TRUE(server_->up()) << server_->log();
  }

  Response process(const std::string& middle) {
    const std::string cfg = dir_.file("pipeline-" + std::to_string(n_++) + ".yml");
    write_file(cfg, "mode: oneshot\n"
                    "nodes:\n"
                    "  in: {kind: streamkit::http_input}\n"
                    "  middle: " + middle + "\n"
                    "  out: {kind: streamkit::http_output, needs: middle}\n");
    // The upload is 2 MiB in 64 KiB chunks: far more packets than either ring holds, so both
    // host-side nodes keep working on scribbled memory.
    return curl(dir_, {"-F", "config=@" + cfg, "-F", "media=@" + media_path_, server_->url("/api/v1/process")});
  }

  TempDir dir_;
  std::string media_, media_path_;
  std::size_t baseline_segments_ = 0;
  std::unique_ptr<SkitServer> server_;
  int n_ = 0;
};

TEST_F(ShmTrust, AWorkerScribblingOverItsPoolsAndRingsCannotCrashOrHangTheServer) {
  const pid_t pid = server_->pid();
  // Scribbling once per packet (10 ms) or for half a second, from the first packet or later:
  // the readers meet torn indices, impossible indices and garbage descriptors.
  for (const auto& [after, delay_ms] : {std::pair{0, 10}, {0, 500}, {1, 10}, {3, 500}, {7, 10}, {15, 10}}) {
    const auto started = std::chrono::steady_clock::now();
    const Response r = process("{kind: testing::fault, params: {mode: scribble, delay_ms: " +
                               std::to_string(delay_ms) + ", after_packets: " + std::to_string(after) +
                               "}, needs: in}");
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const std::size_t body = read_file(r.body_path).size();
    std::printf("scribble for %d ms after %d packets: HTTP %d, %zu of %zu bytes back, %.2f s: %s\n", delay_ms, after,
                r.status, body, media_.size(), took, r.status == 200 ? "(a short body: the stream was cut)" : r.body.substr(0, 160).c_str());
    EXPECT_NE(r.status, 0) << "no HTTP answer: " << r.describe();
    EXPECT_LT(took, 20.0) << "the request outlived the 10 s request limit by far";
    EXPECT_FALSE(r.status == 200 && read_file(r.body_path) == media_)
        << "scribbled memory came back intact: the scribbler did not run";
    ASSERT_EQ(http_call(server_->http_port(), bhttp::verb::get, "/healthz", "").status, 200)
        << server_->log();
    ASSERT_EQ(::kill(pid, 0), 0) << "the server died:\n" << server_->log();
  }
  // The server is unharmed: a clean request right after comes back byte for byte.
  const Response clean = process("{kind: testing::fault, params: {mode: delay, after_packets: 1000000}, needs: in}");
  ASSERT_EQ(clean.status, 200) << clean.describe() << server_->log();
  EXPECT_TRUE(read_file(clean.body_path) == media_) << "the clean request's bytes differ";
  EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 10s)) << "workers left running";
  EXPECT_TRUE(wait_until([&] { return skit_segments() <= baseline_segments_; }, 10s))
      << skit_segments() << " skit segments in /dev/shm, " << baseline_segments_ << " before";
}

}  // namespace
}  // namespace skit::testing
