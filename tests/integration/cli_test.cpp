// SPDX-License-Identifier: MPL-2.0
// The skit command line as a new user meets it (issue 10): usage errors with the accepted
// range, the entry-point rules of `skit validate` and `skit run`, every param problem at once,
// numbers as people write them, configuration errors at their line, outputs that exist only
// when the run succeeded, progress and a summary, and small conveniences (stdin, --json,
// several files, did-you-mean, config default).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "audio_measure.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const fs::path kRepo = SKIT_SOURCE_DIR;

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Runs skit with `input` on its standard input.
RunResult run_skit_with_stdin(const std::vector<std::string>& args, const std::string& input,
                              const TempDir& dir) {
  const std::string file = dir.file("stdin.txt");
  write_file(file, input);
  std::string cmd = std::string("exec ") + SKIT_BINARY;
  for (const auto& a : args) {
    cmd += " '" + a + "'";
  }
  cmd += " < '" + file + "'";
  Process p({"/bin/sh", "-c", cmd});
  p.wait(60s);
  return RunResult{p.exit_code(), p.out(), p.err(), 0};
}

class CliNewUser : public ::testing::Test {
 protected:
  std::string file(const std::string& name, const std::string& content) {
    const std::string path = dir_.file(name);
    write_file(path, content);
    return path;
  }
  TempDir dir_;
};

const char* kInputWithoutOutput = R"(mode: oneshot
steps:
  - kind: streamkit::http_input
  - kind: core::passthrough
)";

const char* kFileToFile = R"(mode: oneshot
nodes:
  reader: { kind: core::file_reader, params: { path: in.bin } }
  writer: { kind: core::file_writer, params: { path: out.bin }, needs: reader }
)";

TEST_F(CliNewUser, NumericOptionsAreCheckedWithTheirRange) {
  const std::string yml = (kRepo / "samples/pipelines/oneshot/http_passthrough.yml").string();
  for (const auto& [option, value, range] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--ring-depth", "abc", "2 to 4096"},
           {"--ring-depth", "100000000", "2 to 4096"},
           {"--ring-depth", "1", "2 to 4096"},
           {"--node-timeout", "-5", "100 to 3600000"},
           {"--node-timeout", "10ms", "100 to 3600000"}}) {
    const RunResult r = run_skit({"run", yml, "-i", yml, "-o", dir_.file("out"), option, value});
    EXPECT_EQ(r.exit_code, 2) << option << " " << value << "\n" << r.err;
    EXPECT_TRUE(has(r.err, option)) << r.err;
    EXPECT_TRUE(has(r.err, range)) << r.err;
    EXPECT_TRUE(has(r.err, "'" + value + "'")) << r.err;
    EXPECT_FALSE(fs::exists(dir_.file("out"))) << "a usage error wrote an output";
  }
}

TEST_F(CliNewUser, ValidateSaysWhereAPipelineCanRun) {
  // Reads an upload but answers nothing: POST /api/v1/process would refuse it, `skit run`
  // runs it with a warning that its output leads nowhere.
  const std::string dangling = file("dangling.yml", kInputWithoutOutput);
  RunResult v = run_skit({"validate", dangling});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_TRUE(has(v.out, "note: POST /api/v1/process would refuse it")) << v.out;
  EXPECT_TRUE(has(v.out, "exactly one streamkit::http_output")) << v.out;
  EXPECT_TRUE(has(v.err, dangling + ":4:5: warning: node 'step_1': output 'out' leads nowhere")) << v.err;
  EXPECT_TRUE(has(v.err, "leads nowhere")) << v.err;
  v = run_skit({"validate", "--for", "process", dangling});
  EXPECT_EQ(v.exit_code, 2) << v.out;
  EXPECT_TRUE(has(v.err, "error: a oneshot pipeline needs exactly one streamkit::http_output"))
      << v.err;

  // File to file: only `skit run`; valid, with the note.
  const std::string f2f = file("f2f.yml", kFileToFile);
  v = run_skit({"validate", f2f});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_TRUE(has(v.out, "valid (2 nodes, 1 connections, mode oneshot)")) << v.out;
  EXPECT_TRUE(has(v.out, "note: POST /api/v1/process would refuse it")) << v.out;
  EXPECT_TRUE(v.err.empty()) << v.err;

  // The server's own sample: valid everywhere, no note.
  v = run_skit({"validate", (kRepo / "samples/pipelines/oneshot/volume_boost.yml").string()});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_FALSE(has(v.out, "note:")) << v.out;

  // Two inputs: nothing can run it, an error.
  v = run_skit({"validate", file("two.yml", R"(mode: oneshot
nodes:
  a: { kind: streamkit::http_input }
  b: { kind: streamkit::http_input }
  m: { kind: audio::mixer, needs: [a, b] }
  out: { kind: streamkit::http_output, needs: m }
)")});
  EXPECT_EQ(v.exit_code, 2) << v.out;
}

TEST_F(CliNewUser, RunRefusesInputAndOutputAPipelineCannotUseAndWarnsOfDeadEnds) {
  write_file(dir_.file("in.bin"), random_bytes(4096));
  // -o for a pipeline without streamkit::http_output: refused, and no file appears.
  const std::string dangling = file("dangling.yml", kInputWithoutOutput);
  RunResult r = run_skit({"run", dangling, "-i", dir_.file("in.bin"), "-o", dir_.file("out.bin")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(has(r.err, "--output was given but the pipeline has no streamkit::http_output"))
      << r.err;
  EXPECT_FALSE(fs::exists(dir_.file("out.bin")));
  // Without -o it runs, warning that the passthrough's output is dropped.
  r = run_skit({"run", dangling, "-i", dir_.file("in.bin")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "warning: node 'step_1': output 'out' leads nowhere")) << r.err;
  // -i for a file-to-file pipeline: refused.
  const std::string f2f = file("f2f.yml", kFileToFile);
  r = run_skit({"run", f2f, "-i", dir_.file("in.bin")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(has(r.err, "--input was given")) << r.err;
}

TEST_F(CliNewUser, ReadmeDagAndFanOutStayValidForRun) {
  // The README's DAG example, paths made absolute.
  write_file(dir_.file("in.bin"), random_bytes(100000, 3));
  const std::string yml = file("dag.yml", "mode: oneshot\nnodes:\n"
                                          "  reader: { kind: core::file_reader, params: { path: " +
                                              dir_.file("in.bin") +
                                              ", chunk_size: 65536 } }\n"
                                              "  copy_a: { kind: core::file_writer, params: { path: " +
                                              dir_.file("a.bin") +
                                              " }, needs: reader }\n"
                                              "  copy_b:\n    kind: core::file_writer\n"
                                              "    params: { path: " +
                                              dir_.file("b.bin") +
                                              " }\n    needs: { node: reader, mode: best_effort }\n"
                                              "  isolated:\n    kind: core::sink\n"
                                              "    isolation: dedicated\n    needs: reader\n");
  RunResult v = run_skit({"validate", yml});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  RunResult r = run_skit({"run", yml});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir_.file("a.bin")), read_file(dir_.file("in.bin")));
}

TEST_F(CliNewUser, AFailedRunLeavesNoOutputAndKeepsAnEarlierOne) {
  const std::string yml = (kRepo / "samples/pipelines/oneshot/volume_boost.yml").string();
  const std::string out = dir_.file("louder.ogg");
  write_file(out, "an earlier result");
  // Random bytes are not Ogg: the demuxer fails.
  write_file(dir_.file("junk.ogg"), random_bytes(200000, 9));
  RunResult r = run_skit({"run", yml, "-i", dir_.file("junk.ogg"), "-o", out});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(has(r.err, "was not written")) << r.err;
  EXPECT_EQ(read_file(out), "an earlier result") << "a failed run replaced the old output";
  std::size_t leftovers = 0;
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    leftovers += e.path().filename().string().find(".skit-") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(leftovers, 0U) << "a temporary output was left behind";
  // A good run replaces it.
  ASSERT_TRUE(make_sine(dir_.file("tone.ogg"), 440, 0.2, 2.0, 48000, 1, {"-c:a", "libopus"}));
  r = run_skit({"run", yml, "-i", dir_.file("tone.ogg"), "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(decode_f32(out).seconds(), 2.0, 0.03);
}

TEST_F(CliNewUser, ProgressShowsMediaTimeAndSpeedAndTheRunEndsWithASummary) {
  ASSERT_TRUE(make_sine(dir_.file("tone.ogg"), 440, 0.2, 30.0, 48000, 1, {"-c:a", "libopus"}));
  // Paced at 15x, the run lasts about 2 s: progress lines come while media time moves.
  const std::string yml = file("paced.yml", R"(mode: oneshot
steps:
  - kind: streamkit::http_input
  - kind: containers::ogg::demuxer
  - kind: core::pacer
    params: { speed: 15.0 }
  - kind: containers::ogg::muxer
    params: { codec: opus }
  - kind: streamkit::http_output
)");
  const RunResult r =
      run_skit({"run", yml, "-i", dir_.file("tone.ogg"), "-o", dir_.file("out.ogg"), "--progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "skit run: done in ")) << r.err;
  EXPECT_TRUE(has(r.err, "00:00:30.0 of media") || has(r.err, "00:00:29.9 of media")) << r.err;
  EXPECT_TRUE(has(r.err, "real time")) << r.err;
  EXPECT_TRUE(has(r.err, "progress: time=00:00:")) << r.err;
  EXPECT_TRUE(has(r.err, " speed=1")) << "about 15x\n" << r.err;
  // -q: nothing at all.
  const RunResult quiet =
      run_skit({"run", yml, "-i", dir_.file("tone.ogg"), "-o", dir_.file("q.ogg"), "-q"});
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.err, "");
}

TEST_F(CliNewUser, EveryParamProblemOfANodeIsReportedAtOnce) {
  const std::string yml = file("bad.yml", R"(mode: oneshot
steps:
  - kind: streamkit::http_input
  - kind: containers::ogg::demuxer
  - kind: audio::opus::decoder
  - kind: audio::opus::encoder
    params:
      bitrate: 1
      frame_size: 1000
  - kind: containers::ogg::muxer
  - kind: streamkit::http_output
)");
  const RunResult v = run_skit({"validate", yml});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_TRUE(has(v.err, "param 'bitrate': must be >= 6000 (got 1)")) << v.err;
  EXPECT_TRUE(has(v.err, "param 'frame_size': must be one of 120, 240, 480, 960, 1920, 2880 "
                         "(got 1000)"))
      << v.err;
  EXPECT_TRUE(has(v.err, "2 error(s)")) << v.err;
}

TEST_F(CliNewUser, NumbersAreWrittenExactlyAndEnumsAsEnums) {
  RunResult r = run_skit({"nodes", "core::file_reader"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(has(r.out, "range 1..16777216")) << r.out;
  EXPECT_FALSE(has(r.out, "e+0")) << r.out;
  r = run_skit({"nodes", "audio::opus::encoder"});
  EXPECT_TRUE(has(r.out, "one of 120|240|480|960|1920|2880")) << r.out;
  EXPECT_FALSE(has(r.out, "range 120..2880")) << r.out;
  r = run_skit({"nodes", "--json", "audio::opus::encoder"});
  const json schema = json::parse(r.out)[0]["param_schema"]["properties"]["frame_size"];
  EXPECT_EQ(schema["enum"], json::array({120, 240, 480, 960, 1920, 2880})) << schema.dump();
  const std::string yml = file("big.yml", R"(mode: oneshot
steps:
  - kind: core::file_reader
    params: { path: x, chunk_size: 99999999999 }
  - kind: streamkit::http_output
)");
  const RunResult v = run_skit({"validate", yml});
  EXPECT_TRUE(has(v.err, "must be <= 16777216 (got 99999999999)")) << v.err;
}

TEST_F(CliNewUser, UnknownKindsGetASuggestion) {
  const RunResult r = run_skit({"nodes", "audio::opus::encodr"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "did you mean 'audio::opus::encoder'?")) << r.err;
  const RunResult short_name = run_skit({"nodes", "opus::decoder"});
  EXPECT_TRUE(has(short_name.err, "did you mean 'audio::opus::decoder'?")) << short_name.err;
}

TEST_F(CliNewUser, ConfigErrorsPointAtTheirLine) {
  RunResult r = run_skit({"config", "check", file("open.yaml", "server:\n  listen: 0.0.0.0:4545\n")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "open.yaml:2:11: error: server.listen is 0.0.0.0:4545")) << r.err;
  EXPECT_FALSE(has(r.err, ":0:0:")) << r.err;
  r = run_skit({"config", "check", file("null.yaml", "server:\n  grpc_listen: nowhere\n")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "null.yaml:2:16: error: server.grpc_listen must be HOST:PORT")) << r.err;
}

TEST_F(CliNewUser, ConfigDefaultPrintsAFileThatChecksAndMatchesTheDefaults) {
  const RunResult d = run_skit({"config", "default"});
  ASSERT_EQ(d.exit_code, 0);
  for (const char* key : {"listen:", "grpc_listen:", "max_body_bytes: 536870912",
                          "max_sessions: 64", "allowed_file_paths:", "samples_dir:", "#"}) {
    EXPECT_TRUE(has(d.out, key)) << key;
  }
  const RunResult c = run_skit({"config", "check", file("default.yaml", d.out)});
  EXPECT_EQ(c.exit_code, 0) << c.err;
}

TEST_F(CliNewUser, ValidateReadsStandardInputSeveralFilesAndSpeaksJson) {
  const std::string good = (kRepo / "samples/pipelines/oneshot/volume_boost.yml").string();
  const std::string bad = file("bad.yml", "mode: oneshot\nsteps:\n  - kind: audio::gian\n");
  RunResult r = run_skit_with_stdin({"validate", "-"}, read_file(good), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "<stdin>: valid")) << r.out;
  r = run_skit({"validate", "--json", good, bad});
  EXPECT_EQ(r.exit_code, 2);
  const json report = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(report.is_array() && report.size() == 2) << r.out;
  EXPECT_TRUE(report[0]["valid"].get<bool>());
  EXPECT_TRUE(report[0]["entry_points"]["process"]["ok"].get<bool>());
  EXPECT_FALSE(report[1]["valid"].get<bool>());
  EXPECT_EQ(report[1]["errors"][0]["line"], 3) << r.out;
  EXPECT_EQ(report[1]["errors"][0]["code"], "unknown_kind") << r.out;
  EXPECT_TRUE(has(report[1]["errors"][0]["message"].get<std::string>(), "audio::gain"));
}

TEST_F(CliNewUser, AnUnknownLogLevelIsReported) {
  const std::string yml = (kRepo / "samples/pipelines/oneshot/volume_boost.yml").string();
  Process p({"/usr/bin/env", "SKIT_LOG=bogus", SKIT_BINARY, "validate", yml});
  p.wait(30s);
  EXPECT_EQ(p.exit_code(), 0);
  EXPECT_TRUE(has(p.err(), "SKIT_LOG=bogus is not a log level")) << p.err();
}

}  // namespace
}  // namespace skit::testing

#ifdef SKIT_SESSIONS_BENCH
namespace skit::testing {
namespace {
// bench/run sessions measured per-node placement while the server runs grouped by default.
TEST(BenchDefaults, TheSessionsBenchRunsWithTheServersPlacement) {
  Process p({SKIT_SESSIONS_BENCH, "--skit", SKIT_BINARY, "--sessions", "1", "--seconds", "1",
             "--tune-sessions", "1", "--tunes", "2"});
  p.wait(std::chrono::seconds(60));
  EXPECT_EQ(p.exit_code(), 0) << p.err();
  EXPECT_NE(p.out().find("(grouped placement)"), std::string::npos) << p.out();
}
}  // namespace
}  // namespace skit::testing
#endif

namespace skit::testing {
namespace {
// With stderr not a terminal, every log line is one JSON object, FFmpeg's own messages too
// (they used to come out raw before the first node installed the bridge), quotes escaped.
TEST(CliLogs, EveryLogLineIsJsonWhenStderrIsNotATerminal) {
  TempDir dir;
  std::string junk = read_file((fs::path(SKIT_SOURCE_DIR) / "samples/audio/speech.ogg").string());
  for (std::size_t i = 4000; i < junk.size(); i += 997) {
    junk[i] = static_cast<char>(junk[i] ^ 0x55);
  }
  write_file(dir.file("flipped.ogg"), junk);
  write_file(dir.file("any.yml"), R"(mode: oneshot
steps:
  - kind: streamkit::http_input
  - kind: containers::auto::demuxer
  - kind: audio::decoder
  - kind: core::sink
)");
  const std::string boost =
      (fs::path(SKIT_SOURCE_DIR) / "samples/pipelines/oneshot/volume_boost.yml").string();
  for (const std::string& pipeline : {boost, dir.file("any.yml")}) {
    std::vector<std::string> argv = {"/usr/bin/env", "SKIT_LOG=debug", SKIT_BINARY, "run",
                                     pipeline, "-i", dir.file("flipped.ogg")};
    if (pipeline == boost) {
      argv.insert(argv.end(), {"-o", dir.file("out.bin")});
    }
    Process p(argv);
    p.wait(std::chrono::seconds(60));
    std::istringstream lines(p.err());
    std::string line;
    int json_lines = 0;
    int ffmpeg_lines = 0;
    while (std::getline(lines, line)) {
      if (line.rfind("skit run: ", 0) == 0 || line.find(": warning: ") != std::string::npos) {
        continue;  // the command's own result and diagnostics, not log lines
      }
      const json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
      EXPECT_TRUE(parsed.is_object()) << "not a JSON line: " << line;
      ++json_lines;
      ffmpeg_lines += parsed.is_object() &&
                      parsed.value("msg", "").find("ffmpeg: ") != std::string::npos;
    }
    EXPECT_GT(json_lines, 0) << p.err();
    EXPECT_GT(ffmpeg_lines, 0) << "no FFmpeg message: nothing was checked\n" << p.err();
  }
}
}  // namespace
}  // namespace skit::testing
