// SPDX-License-Identifier: MPL-2.0
// audio::resampler: tone frequency and level across rate changes, durations, re-framing,
// timestamps, channel conversion, the resampler's delay at the end, and params.
#include <gtest/gtest.h>

#include "audio_util.hpp"
#include "node_harness.hpp"

namespace skit::testing {
namespace {


TEST(Resampler, Downsamples48kTo16kKeepingA1kHzTone) {
  NodeHarness h("audio::resampler", {{"target_sample_rate", 16000}});
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  const auto in = sine(1000, 0.5, 48000, 48000);  // 1 s
  ASSERT_TRUE(h.push_audio_chunked(0, in, 48000, 1, 960, 1000000).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  // Duration within one output frame (960) of the input's 16000 frames.
  EXPECT_LE(std::abs(static_cast<long>(out.size()) - 16000L), 960L) << out.size();
  // Steady part, 0.5 s of whole 1 kHz cycles.
  const std::span<const float> mid(out.data() + 4000, 8000);
  EXPECT_NEAR(goertzel(mid, 1000, 16000), 0.5, 0.01);
  EXPECT_LT(goertzel(mid, 2000, 16000), 0.005);
  EXPECT_NEAR(zero_crossing_freq(mid, 16000), 1000.0, 2.0);
  // Packets: 960 frames at 16 kHz (60 ms), pts continuous from the first input pts.
  std::int64_t pts = 1000000;
  for (std::size_t i = 0; i < h.packets().size(); ++i) {
    const auto& p = h.packets()[i];
    ASSERT_EQ(p.header.sample_rate, 16000U);
    ASSERT_EQ(p.header.channels, 1U);
    ASSERT_EQ(p.header.pts_us, pts) << i;
    if (i + 1 < h.packets().size()) {
      ASSERT_EQ(p.frames(), 960U) << i;
      ASSERT_EQ(p.header.duration_us, 60000) << i;
    }
    pts += p.header.duration_us;
  }
}

TEST(Resampler, UpsamplesKeepingTheTone) {
  NodeHarness h("audio::resampler", {{"target_sample_rate", 48000}, {"output_frame_size", 480}});
  ASSERT_TRUE(h.ok());
  const auto in = sine(440, 0.25, 16000, 16000, 2);
  ASSERT_TRUE(h.push_audio_chunked(0, in, 16000, 2, 333).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  ASSERT_EQ(h.packets().front().header.channels, 2U);
  const auto left = channel(out, 2, 0);
  const auto right = channel(out, 2, 1);
  EXPECT_LE(std::abs(static_cast<long>(left.size()) - 48000L), 480L);
  const std::span<const float> mid(left.data() + 12000, 24000);
  EXPECT_NEAR(goertzel(mid, 440, 48000), 0.25, 0.005);
  EXPECT_NEAR(zero_crossing_freq(mid, 48000), 440.0, 1.0);
  EXPECT_NEAR(goertzel(std::span<const float>(right.data() + 12000, 24000), 440, 48000), 0.25, 0.005);
  for (std::size_t i = 0; i + 1 < h.packets().size(); ++i) {
    ASSERT_EQ(h.packets()[i].frames(), 480U);
  }
}

TEST(Resampler, DownmixesStereoToMono) {
  NodeHarness h("audio::resampler", {{"target_sample_rate", 16000}, {"channels", 1}});
  ASSERT_TRUE(h.ok());
  // Left and right carry different tones: mono holds both at half level.
  std::vector<float> in(48000 * 2);
  const auto l = sine(500, 0.6, 48000, 48000);
  const auto r = sine(1500, 0.4, 48000, 48000);
  for (std::size_t i = 0; i < 48000; ++i) {
    in[2 * i] = l[i];
    in[2 * i + 1] = r[i];
  }
  ASSERT_TRUE(h.push_audio_chunked(0, in, 48000, 2, 1024).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  ASSERT_EQ(h.packets().front().header.channels, 1U);
  const auto out = h.audio();
  EXPECT_LE(std::abs(static_cast<long>(out.size()) - 16000L), 960L);
  const std::span<const float> mid(out.data() + 4000, 8000);
  EXPECT_NEAR(goertzel(mid, 500, 16000), 0.3, 0.01);
  EXPECT_NEAR(goertzel(mid, 1500, 16000), 0.2, 0.01);
}

TEST(Resampler, SpreadsMonoToStereoAtFullLevel) {
  NodeHarness h("audio::resampler", {{"target_sample_rate", 48000}, {"channels", 2}});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_audio_chunked(0, constant(0.5F, 9600), 48000, 1, 960).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), 2U * 9600U);
  EXPECT_EQ(h.packets().front().header.channels, 2U);
  for (float v : out) {
    ASSERT_NEAR(v, 0.5F, 1e-5F);
  }
}

TEST(Resampler, FlushesItsDelayAtTheEnd) {
  // One short packet: everything comes out at finish(), nothing is lost to the filter delay.
  NodeHarness h("audio::resampler", {{"target_sample_rate", 24000}, {"output_frame_size", 0}});
  ASSERT_TRUE(h.ok());
  const auto in = constant(0.5F, 4800);  // 100 ms at 48 kHz
  ASSERT_TRUE(h.push_audio(0, in, 48000, 1, 0).is_ok());
  const std::size_t before = h.audio().size();
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  EXPECT_LT(before, 2400U);
  EXPECT_NEAR(static_cast<double>(out.size()), 2400.0, 2.0);
  EXPECT_NEAR(out[1200], 0.5F, 0.01F);
}

TEST(Resampler, WithoutReframingEachInputPacketYieldsOutput) {
  NodeHarness h("audio::resampler", {{"target_sample_rate", 48000}, {"output_frame_size", 0}});
  ASSERT_TRUE(h.ok());
  const auto in = sine(1000, 0.5, 48000, 4800);
  ASSERT_TRUE(h.push_audio_chunked(0, in, 48000, 1, 480).is_ok());
  EXPECT_EQ(h.packets().size(), 10U);  // same rate: no delay
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    ASSERT_NEAR(out[i], in[i], 1e-5F);
  }
}

TEST(Resampler, ReconfiguresWhenTheInputFormatChanges) {
  NodeHarness h("audio::resampler", {{"target_sample_rate", 16000}});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_audio_chunked(0, sine(1000, 0.5, 48000, 24000), 48000, 1, 960).is_ok());
  ASSERT_TRUE(h.push_audio_chunked(0, sine(1000, 0.5, 32000, 16000), 32000, 1, 640, 500000).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  EXPECT_LE(std::abs(static_cast<long>(out.size()) - 16000L), 960L);
  std::int64_t pts = 0;
  for (const auto& p : h.packets()) {
    ASSERT_EQ(p.header.pts_us, pts);
    pts += p.header.duration_us;
  }
}

TEST(Resampler, Params) {
  auto missing = NodeHarness::validate("audio::resampler", Json::object());
  ASSERT_EQ(missing.size(), 1U);
  EXPECT_EQ(missing[0].where().param, "target_sample_rate");
  NodeHarness h("audio::resampler");
  EXPECT_FALSE(h.ok());
  EXPECT_EQ(h.create_status().code(), ErrorCode::kInvalidParam);

  EXPECT_FALSE(NodeHarness::validate("audio::resampler", {{"target_sample_rate", 7999}}).empty());
  EXPECT_FALSE(NodeHarness::validate("audio::resampler", {{"target_sample_rate", 192001}}).empty());
  EXPECT_FALSE(NodeHarness::validate("audio::resampler",
                                     {{"target_sample_rate", 16000}, {"output_frame_size", 1000}})
                   .empty());
  EXPECT_FALSE(NodeHarness::validate("audio::resampler", {{"target_sample_rate", 16000}, {"channels", 9}}).empty());
  EXPECT_FALSE(NodeHarness::validate("audio::resampler", {{"target_sample_rate", 16000}, {"chunk_frames", 0}}).empty());
  for (int size : {0, 120, 240, 480, 960, 1920, 2880}) {
    EXPECT_TRUE(NodeHarness::validate("audio::resampler",
                                      {{"target_sample_rate", 16000}, {"output_frame_size", size}})
                    .empty())
        << size;
  }
  const auto schema = NodeRegistry::builtin().find("audio::resampler")->params->json_schema();
  EXPECT_EQ(schema["required"], Json::array({"target_sample_rate"}));
  EXPECT_EQ(schema["properties"]["chunk_frames"]["default"], 960);
  EXPECT_EQ(schema["properties"]["output_frame_size"]["default"], 960);
  EXPECT_EQ(schema["properties"]["channels"]["default"], 0);
}

}  // namespace
}  // namespace skit::testing
