// SPDX-License-Identifier: MPL-2.0
// Muxer modes not covered by the sample pipelines: MP4 (AAC and Opus; file and fragmented
// stream), WebM in file mode, WAV in float. Each output must decode cleanly with the
// expected codec, rate, channels and length.
#include <gtest/gtest.h>

#include "audio_measure.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

struct MuxCase {
  const char* name;
  const char* encoder;  // empty: raw audio into the muxer (WAV)
  const char* muxer;
  const char* muxer_params;
  const char* codec;
  const char* format_contains;
};

class Mux : public ::testing::TestWithParam<MuxCase> {};

TEST_P(Mux, ProducesCleanMediaOfTheExpectedFormatAndLength) {
  const MuxCase& c = GetParam();
  TempDir dir;
  ASSERT_TRUE(make_sine(dir.file("in.wav"), 440, 0.5, 2.0, 48000, 2));
  std::string yaml = "mode: oneshot\nsteps:\n  - kind: streamkit::http_input\n"
                     "  - kind: containers::wav::demuxer\n";
  if (std::string(c.encoder).size() > 0) {
    yaml += "  - kind: " + std::string(c.encoder) + "\n";
  }
  yaml += "  - kind: " + std::string(c.muxer) + "\n    params: " + c.muxer_params + "\n" +
          "  - kind: streamkit::http_output\n";
  write_file(dir.file("p.yml"), yaml);

  auto r = run_skit({"run", dir.file("p.yml"), "-i", dir.file("in.wav"), "-o", dir.file("out")});

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Probe p = probe(dir.file("out"));
  EXPECT_TRUE(p.err.empty()) << p.err;
  EXPECT_EQ(p.codec, c.codec);
  EXPECT_EQ(p.channels, 2);
  EXPECT_NE(p.format.find(c.format_contains), std::string::npos) << p.format;
  const Decoded d = decode_f32(dir.file("out"));
  EXPECT_TRUE(d.err.empty()) << d.err;
  // Fragmented MP4 with an empty moov has no edit list, so AAC's 1024 priming samples stay in
  // (ffmpeg's own -movflags frag_keyframe+empty_moov output is 2.0267 s too).
  const double tolerance = std::string(c.name) == "mp4_aac_stream" ? 0.03 : 0.025;
  EXPECT_NEAR(d.seconds(), 2.0, tolerance) << "within about one codec frame";
}

INSTANTIATE_TEST_SUITE_P(
    Modes, Mux,
    ::testing::Values(
        MuxCase{"mp4_aac_file", "audio::aac::encoder", "containers::mp4::muxer", "{mode: file}",
                "aac", "mp4"},
        MuxCase{"mp4_aac_stream", "audio::aac::encoder", "containers::mp4::muxer",
                "{mode: stream}", "aac", "mp4"},
        MuxCase{"mp4_opus_file", "audio::opus::encoder", "containers::mp4::muxer", "{mode: file}",
                "opus", "mp4"},
        MuxCase{"webm_file", "audio::opus::encoder", "containers::webm::muxer",
                "{streaming_mode: file}", "opus", "webm"},
        MuxCase{"wav_f32", "", "containers::wav::muxer", "{sample_format: f32}", "pcm_f32le",
                "wav"}),
    [](const ::testing::TestParamInfo<MuxCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace skit::testing
