// SPDX-License-Identifier: MPL-2.0
// End-to-end tests of the microkernel: the real skit binary, real worker processes, real
// shared-memory rings. Each test checks what a user relies on: bytes out, counters, exit
// status and messages, and that nothing (process, segment) is left behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json load_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

const json& node_stats(const json& stats, const std::string& id) {
  for (const auto& n : stats["nodes"]) {
    if (n["id"] == id) {
      return n;
    }
  }
  throw std::runtime_error("no node " + id + " in stats");
}

std::string chain_yaml(int passthroughs) {
  std::string y = "name: chain\nmode: oneshot\nsteps:\n  - kind: streamkit::http_input\n";
  for (int i = 0; i < passthroughs; ++i) {
    y += "  - kind: core::passthrough\n";
  }
  y += "  - kind: streamkit::http_output\n";
  return y;
}

class Microkernel : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(Microkernel, SixteenNodeChainPerNodeCopiesEightMiBByteIdenticalInSixteenWorkers) {
  const std::string input = random_bytes(8 << 20);
  write_file(dir_.file("in.bin"), input);
  write_file(dir_.file("chain.yml"), chain_yaml(16));

  auto r = run_skit({"run", dir_.file("chain.yml"), "--input", dir_.file("in.bin"), "--output",
                     dir_.file("out.bin"), "--placement", "per-node", "--stats",
                     dir_.file("stats.json")});

  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(dir_.file("out.bin")) == input) << "output differs from input";
  const json stats = load_json(dir_.file("stats.json"));
  std::set<int> worker_pids;
  for (const auto& n : stats["nodes"]) {
    EXPECT_EQ(n["state"], "stopped") << n.dump();
    if (n["kind"] == "core::passthrough") {
      worker_pids.insert(n["worker_pid"].get<int>());
      EXPECT_EQ(n["bytes_in"], input.size());
    }
  }
  EXPECT_EQ(worker_pids.size(), 16U);
  EXPECT_EQ(stats["workers"], 16);
  EXPECT_EQ(stats["placement"], "per-node");
}

TEST_F(Microkernel, SixteenNodeChainGroupedCopiesEightMiBByteIdenticalInOneWorker) {
  const std::string input = random_bytes(8 << 20, 7);
  write_file(dir_.file("in.bin"), input);
  write_file(dir_.file("chain.yml"), chain_yaml(16));

  auto r = run_skit({"run", dir_.file("chain.yml"), "--input", dir_.file("in.bin"), "--output",
                     dir_.file("out.bin"), "--placement", "grouped", "--stats",
                     dir_.file("stats.json")});

  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(dir_.file("out.bin")) == input);
  const json stats = load_json(dir_.file("stats.json"));
  std::set<int> worker_pids;
  for (const auto& n : stats["nodes"]) {
    if (n["kind"] == "core::passthrough") {
      worker_pids.insert(n["worker_pid"].get<int>());
    }
  }
  EXPECT_EQ(worker_pids.size(), 1U);
  EXPECT_EQ(stats["workers"], 1);
}

TEST_F(Microkernel, DedicatedIsolationGetsItsOwnWorkerInGroupedPlacement) {
  write_file(dir_.file("in.bin"), random_bytes(100000));
  write_file(dir_.file("p.yml"),
             "mode: oneshot\nnodes:\n"
             "  in: {kind: streamkit::http_input}\n"
             "  a: {kind: core::passthrough, needs: in}\n"
             "  b: {kind: core::passthrough, needs: a, isolation: dedicated}\n"
             "  c: {kind: core::passthrough, needs: b}\n"
             "  out: {kind: streamkit::http_output, needs: c}\n");

  auto r = run_skit({"run", dir_.file("p.yml"), "-i", dir_.file("in.bin"), "-o",
                     dir_.file("out.bin"), "--stats", dir_.file("stats.json")});

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json stats = load_json(dir_.file("stats.json"));
  EXPECT_EQ(stats["workers"], 2);
  EXPECT_EQ(node_stats(stats, "a")["worker_pid"], node_stats(stats, "c")["worker_pid"]);
  EXPECT_NE(node_stats(stats, "a")["worker_pid"], node_stats(stats, "b")["worker_pid"]);
  EXPECT_EQ(read_file(dir_.file("out.bin")).size(), 100000U);
}

TEST_F(Microkernel, StdinToStdoutWorks) {
  const std::string input = random_bytes(300000, 3);
  write_file(dir_.file("in.bin"), input);
  write_file(dir_.file("chain.yml"), chain_yaml(2));
  Process p({"/bin/sh", "-c",
             std::string(SKIT_BINARY) + " run " + dir_.file("chain.yml") + " -i - -o - < " +
                 dir_.file("in.bin") + " > " + dir_.file("out.bin")});
  ASSERT_TRUE(p.wait(30s));
  ASSERT_EQ(p.exit_code(), 0) << p.err();
  EXPECT_TRUE(read_file(dir_.file("out.bin")) == input);
}

TEST_F(Microkernel, FanOutWritesThreeIdenticalFilesFromOneSharedPayload) {
  const std::string input = random_bytes(3 << 20, 11);
  write_file(dir_.file("in.bin"), input);
  write_file(dir_.file("fan.yml"),
             "name: fanout\nmode: oneshot\nnodes:\n"
             "  reader:\n    kind: core::file_reader\n    params: {path: " + dir_.file("in.bin") +
                 ", chunk_size: 65536}\n"
                 "  w1: {kind: core::file_writer, params: {path: " + dir_.file("o1.bin") +
                 "}, needs: reader}\n"
                 "  w2: {kind: core::file_writer, params: {path: " + dir_.file("o2.bin") +
                 "}, needs: reader}\n"
                 "  w3: {kind: core::file_writer, params: {path: " + dir_.file("o3.bin") +
                 "}, needs: reader}\n");

  auto r = run_skit({"run", dir_.file("fan.yml"), "--placement", "per-node", "--stats",
                     dir_.file("stats.json")});

  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"o1.bin", "o2.bin", "o3.bin"}) {
    EXPECT_TRUE(read_file(dir_.file(name)) == input) << name;
  }
  const json stats = load_json(dir_.file("stats.json"));
  // One pool for the reader's output, shared by three rings: the payload exists once.
  ASSERT_EQ(stats["pools"].size(), 1U);
  EXPECT_EQ(stats["pools"][0]["node"], "reader");
  EXPECT_EQ(stats["pools"][0]["consumers"], 3);
  EXPECT_EQ(node_stats(stats, "reader")["bytes_out"], input.size()) << "written once, not 3x";
  for (const char* w : {"w1", "w2", "w3"}) {
    EXPECT_EQ(node_stats(stats, w)["bytes_in"], input.size());
  }
}

TEST_F(Microkernel, TinyRingsWrapAroundThousandsOfTimesWithoutLoss) {
  const std::string input = random_bytes(8 << 20, 5);
  write_file(dir_.file("in.bin"), input);
  write_file(dir_.file("chain.yml"), chain_yaml(4));

  auto r = run_skit({"run", dir_.file("chain.yml"), "-i", dir_.file("in.bin"), "-o",
                     dir_.file("out.bin"), "--placement", "per-node", "--ring-depth", "2",
                     "--stats", dir_.file("stats.json")});

  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(dir_.file("out.bin")) == input);
  const json stats = load_json(dir_.file("stats.json"));
  EXPECT_EQ(node_stats(stats, "step_0")["packets_out"], 128) << "64 KiB chunks, 64x a 2-deep ring";
  EXPECT_EQ(node_stats(stats, "step_5")["packets_in"], 128);
}

std::string slow_pipeline(const TempDir& dir, const std::string& mode, int delay_ms) {
  return "name: slow\nmode: oneshot\nnodes:\n"
         "  reader:\n    kind: core::file_reader\n    params: {path: " + dir.file("in.bin") +
         ", chunk_size: 4096}\n"
         "  slow:\n    kind: testing::fault\n    params: {mode: delay, delay_ms: " +
         std::to_string(delay_ms) + "}\n    needs: {node: reader, mode: " + mode + "}\n"
         "  writer:\n    kind: core::file_writer\n    params: {path: " + dir.file("out.bin") +
         "}\n    needs: slow\n";
}

TEST_F(Microkernel, ReliableConnectionBackpressuresAFastProducerAndLosesNothing) {
  const std::string input = random_bytes(64 * 4096, 9);  // 64 packets
  write_file(dir_.file("in.bin"), input);
  write_file(dir_.file("p.yml"), slow_pipeline(dir_, "reliable", 5));

  auto r = run_skit({"run", dir_.file("p.yml"), "--placement", "per-node", "--ring-depth", "4",
                     "--stats", dir_.file("stats.json")});

  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(dir_.file("out.bin")) == input);
  const json stats = load_json(dir_.file("stats.json"));
  EXPECT_EQ(node_stats(stats, "reader")["dropped"], 0);
  EXPECT_EQ(node_stats(stats, "slow")["packets_in"], 64);
  EXPECT_GE(r.seconds, 64 * 0.005) << "the consumer's pace bounds the run";
}

TEST_F(Microkernel, BestEffortConnectionDropsOldestPacketsAndCountsEveryDrop) {
  const std::string input = random_bytes(256 * 4096, 13);  // 256 packets
  write_file(dir_.file("in.bin"), input);
  write_file(dir_.file("p.yml"), slow_pipeline(dir_, "best_effort", 5));

  auto r = run_skit({"run", dir_.file("p.yml"), "--placement", "per-node", "--ring-depth", "4",
                     "--stats", dir_.file("stats.json")});

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json stats = load_json(dir_.file("stats.json"));
  const auto produced = node_stats(stats, "reader")["packets_out"].get<std::uint64_t>();
  const auto dropped = node_stats(stats, "reader")["dropped"].get<std::uint64_t>();
  const auto delivered = node_stats(stats, "slow")["packets_in"].get<std::uint64_t>();
  EXPECT_EQ(produced, 256U);
  EXPECT_GT(dropped, 100U) << "a 5 ms consumer cannot keep up with a file reader";
  EXPECT_EQ(delivered + dropped, produced) << "every packet is delivered or counted as dropped";
  EXPECT_EQ(read_file(dir_.file("out.bin")).size(), delivered * 4096);
  EXPECT_LT(r.seconds, 256 * 0.005) << "the producer never waited for the slow consumer";
}

TEST_F(Microkernel, WorkerKilledWithSigkillFailsTheRunNamingNodeAndSignal) {
  write_file(dir_.file("in.bin"), random_bytes(1024 * 4096, 17));  // ~5 s at 5 ms/packet
  write_file(dir_.file("p.yml"), slow_pipeline(dir_, "reliable", 5));
  Process skit({SKIT_BINARY, "run", dir_.file("p.yml"), "--placement", "per-node"});
  ASSERT_TRUE(wait_until([&] { return children_of(skit.pid()).size() == 3; }, 10s))
      << "workers: " << children_of(skit.pid()).size() << "\n" << (skit.wait(1s), skit.err());
  std::this_thread::sleep_for(300ms);  // mid-run
  // Workers are numbered in node order: reader 0, slow 1, writer 2.
  pid_t victim = -1;
  for (pid_t c : children_of(skit.pid())) {
    const std::string cmdline = read_proc_file("/proc/" + std::to_string(c) + "/cmdline");
    if (cmdline.find(std::string("--worker-id") + '\0' + "1") != std::string::npos) {
      victim = c;
    }
  }
  ASSERT_GT(victim, 0);
  ::kill(victim, SIGKILL);

  ASSERT_TRUE(skit.wait(10s)) << "the run must end promptly";

  EXPECT_EQ(skit.exit_code(), 1);
  EXPECT_NE(skit.err().find("killed by signal 9 (SIGKILL)"), std::string::npos) << skit.err();
  EXPECT_NE(skit.err().find("'slow' (testing::fault)"), std::string::npos) << skit.err();
  EXPECT_TRUE(wait_until([&] { return skit_workers(skit.pid()).empty(); }, 5s));
  EXPECT_TRUE(shm_segments_of(skit.pid()).empty()) << "shared memory left behind";
}

TEST_F(Microkernel, InterruptTearsDownWorkersAndSharedMemory) {
  write_file(dir_.file("in.bin"), random_bytes(1024 * 4096, 19));
  write_file(dir_.file("p.yml"), slow_pipeline(dir_, "reliable", 5));
  Process skit({SKIT_BINARY, "run", dir_.file("p.yml"), "--placement", "per-node"});
  ASSERT_TRUE(wait_until([&] { return children_of(skit.pid()).size() == 3; }, 10s));
  std::this_thread::sleep_for(300ms);

  ::kill(skit.pid(), SIGINT);

  ASSERT_TRUE(skit.wait(10s));
  EXPECT_EQ(skit.exit_code(), 130);
  EXPECT_NE(skit.err().find("interrupted"), std::string::npos) << skit.err();
  EXPECT_TRUE(wait_until([&] { return skit_workers(skit.pid()).empty(); }, 5s));
  EXPECT_TRUE(shm_segments_of(skit.pid()).empty());
}

TEST_F(Microkernel, FrozenWorkerMissesHeartbeatsAndIsKilled) {
  write_file(dir_.file("in.bin"), random_bytes(1024 * 4096, 29));
  write_file(dir_.file("p.yml"), slow_pipeline(dir_, "reliable", 5));
  Process skit({SKIT_BINARY, "run", dir_.file("p.yml"), "--placement", "per-node"});
  ASSERT_TRUE(wait_until([&] { return children_of(skit.pid()).size() == 3; }, 10s));
  // Frozen once the run is under way (data reaches the file): a worker frozen before it is
  // ready is reported as "did not become ready" instead.
  const std::string out = dir_.file("out.bin");
  ASSERT_TRUE(wait_until(
      [&] {
        std::error_code ec;
        return fs::file_size(out, ec) > 0 && !ec;
      },
      10s));
  const pid_t frozen = children_of(skit.pid()).front();

  ::kill(frozen, SIGSTOP);  // alive but silent, like a wedged process

  ASSERT_TRUE(skit.wait(20s));
  EXPECT_EQ(skit.exit_code(), 1);
  EXPECT_NE(skit.err().find("stopped answering"), std::string::npos) << skit.err();
  EXPECT_TRUE(wait_until([&] { return skit_workers(skit.pid()).empty(); }, 5s));
  EXPECT_TRUE(shm_segments_of(skit.pid()).empty());
}

std::string fault_pipeline(const std::string& mode) {
  return "name: fault\nmode: oneshot\nsteps:\n"
         "  - kind: streamkit::http_input\n"
         "  - kind: testing::fault\n    params: {mode: " + mode + ", after_packets: 2}\n"
         "  - kind: streamkit::http_output\n";
}

class SandboxTrip : public Microkernel, public ::testing::WithParamInterface<const char*> {};

TEST_P(SandboxTrip, ForbiddenSyscallKillsTheWorkerAndIsReported) {
  write_file(dir_.file("in.bin"), random_bytes(1 << 20));
  write_file(dir_.file("p.yml"), fault_pipeline(GetParam()));

  auto r = run_skit({"run", dir_.file("p.yml"), "-i", dir_.file("in.bin"), "-o",
                     dir_.file("out.bin")}, 20s);

  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("SIGSYS"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sandbox forbids"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'step_1' (testing::fault)"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Syscalls, SandboxTrip, ::testing::Values("execve", "socket"));

TEST_F(Microkernel, WithoutTheSandboxTheSameSyscallSucceeds) {
  write_file(dir_.file("in.bin"), random_bytes(1 << 20));
  write_file(dir_.file("p.yml"), fault_pipeline("socket"));

  auto r = run_skit({"run", dir_.file("p.yml"), "-i", dir_.file("in.bin"), "-o",
                     dir_.file("out.bin"), "--no-sandbox"}, 20s);

  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("socket(AF_INET) was allowed"), std::string::npos) << r.err;
}

TEST_F(Microkernel, CrashingNodeIsReportedWithItsSignal) {
  write_file(dir_.file("in.bin"), random_bytes(1 << 20));
  write_file(dir_.file("p.yml"), fault_pipeline("segfault"));

  auto r = run_skit({"run", dir_.file("p.yml"), "-i", dir_.file("in.bin"), "-o",
                     dir_.file("out.bin")}, 20s);

  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("killed by signal 11 (SIGSEGV)"), std::string::npos) << r.err;
}

TEST_F(Microkernel, FailingNodeEndsTheRunWithItsMessage) {
  write_file(dir_.file("in.bin"), random_bytes(1 << 20));
  write_file(dir_.file("p.yml"), fault_pipeline("error"));

  auto r = run_skit({"run", dir_.file("p.yml"), "-i", dir_.file("in.bin"), "-o",
                     dir_.file("out.bin"), "--stats", dir_.file("stats.json")}, 20s);

  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("node 'step_1': testing::fault failed: injected failure after 2 packets"),
            std::string::npos)
      << r.err;
  const json stats = load_json(dir_.file("stats.json"));
  EXPECT_EQ(stats["status"], "error");
  EXPECT_EQ(node_stats(stats, "step_1")["state"], "failed");
}

TEST_F(Microkernel, HungNodeIsDetectedAndItsWorkerKilled) {
  write_file(dir_.file("in.bin"), random_bytes(1 << 20));
  write_file(dir_.file("p.yml"), fault_pipeline("hang"));

  auto r = run_skit({"run", dir_.file("p.yml"), "-i", dir_.file("in.bin"), "-o",
                     dir_.file("out.bin"), "--node-timeout", "1000"}, 20s);

  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("stuck in one call"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 8.0);
}

TEST_F(Microkernel, InvalidPipelineIsRejectedWithEveryErrorAndItsLine) {
  write_file(dir_.file("bad.yml"),
             "name: bad\n"
             "mode: oneshot\n"
             "nodes:\n"
             "  reader:\n"
             "    kind: core::file_reader\n"
             "    params: {chunk_size: -5}\n"
             "  mystery:\n"
             "    kind: audio::nonexistent\n"
             "    needs: reader\n"
             "  writer:\n"
             "    kind: core::file_writer\n"
             "    params: {path: /tmp/x}\n"
             "    needs: ghost\n");

  auto r = run_skit({"validate", dir_.file("bad.yml")});

  EXPECT_EQ(r.exit_code, 2);
  const std::string f = dir_.file("bad.yml");
  EXPECT_NE(r.err.find(f + ":6:14: error: node 'reader': param 'chunk_size': must be >= 1"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(f + ":6:13: error: node 'reader': param 'path': required param is missing"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(f + ":8:11: error: node 'mystery': unknown node kind 'audio::nonexistent'"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(f + ":13:12: error: node 'writer': needs 'ghost'"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("4 error(s)"), std::string::npos) << r.err;
  // The run command refuses it the same way, before starting any worker.
  auto run = run_skit({"run", dir_.file("bad.yml")});
  EXPECT_EQ(run.exit_code, 2);
}

TEST(Cli, EverySubcommandHasHelpAndTheVersionPrints) {
  for (const char* cmd : {"run", "validate", "nodes", "worker", "serve", "config"}) {
    auto r = run_skit({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage: skit"), std::string::npos) << cmd;
  }
  auto v = run_skit({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("skit ", 0), 0U);
}

TEST(Cli, NodesJsonListsEveryCoreKindWithPinsAndParamSchema) {
  auto r = run_skit({"nodes", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json kinds = json::parse(r.out);
  std::set<std::string> names;
  for (const auto& k : kinds) {
    names.insert(k["kind"].get<std::string>());
    EXPECT_TRUE(k["param_schema"].contains("properties")) << k["kind"];
  }
  for (const char* k : {"core::file_reader", "core::file_writer", "core::passthrough",
                        "core::sink", "core::pacer", "streamkit::http_input",
                        "streamkit::http_output"}) {
    EXPECT_TRUE(names.contains(k)) << k;
  }
  const auto reader = std::find_if(kinds.begin(), kinds.end(),
                                   [](const json& k) { return k["kind"] == "core::file_reader"; });
  EXPECT_EQ((*reader)["param_schema"]["required"], json::array({"path"}));
  EXPECT_EQ((*reader)["param_schema"]["properties"]["chunk_size"]["default"], 8192);
  EXPECT_EQ((*reader)["outputs"][0]["produces_type"], "Binary");
}

}  // namespace
}  // namespace skit::testing

namespace skit::testing {
namespace {

// The byte-identical samples: what goes in comes out. The audio samples (same directory) are
// run and measured by SamplePipelines/SamplePipeline in audio_test.cpp.
TEST(Samples, EveryByteIdenticalOneshotSampleValidatesRunsAndReturnsItsInput) {
  TempDir dir;
  const std::string input = random_bytes(1 << 20, 23);
  write_file(dir.file("in.bin"), input);
  for (const char* name : {"http_passthrough", "paced_copy", "passthrough_chain_16"}) {
    const std::string yml = (fs::path(SKIT_SOURCE_DIR) / "samples/pipelines/oneshot" /
                             (std::string(name) + ".yml"))
                                .string();
    ASSERT_TRUE(fs::exists(yml)) << yml;
    auto v = run_skit({"validate", yml});
    EXPECT_EQ(v.exit_code, 0) << yml << "\n" << v.err;
    auto r = run_skit({"run", yml, "-i", dir.file("in.bin"), "-o", dir.file("out.bin")});
    ASSERT_EQ(r.exit_code, 0) << yml << "\n" << r.err;
    EXPECT_TRUE(read_file(dir.file("out.bin")) == input) << yml;
  }
}

}  // namespace
}  // namespace skit::testing
