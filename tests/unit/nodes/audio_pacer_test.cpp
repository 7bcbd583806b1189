// SPDX-License-Identifier: MPL-2.0
// audio::pacer: real-time release at a speed, every sample forwarded, silence for timestamp
// gaps and input stalls, stop, tuning and params.
#include <gtest/gtest.h>

#include <thread>

#include "audio_util.hpp"
#include "node_harness.hpp"

namespace skit::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

TEST(AudioPacer, ReleasesAtTenTimesRealTimeAndForwardsEverySample) {
  // No silence filling: on a slow (sanitized, loaded) machine the harness can fall behind
  // real time, which the pacer would rightly fill with silence; that has its own tests.
  NodeHarness h("audio::pacer", {{"speed", 10.0}, {"generate_silence", false}});
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  const auto in = sine(440, 0.5, 48000, 96000, 2);  // 2 s stereo
  const auto t0 = Clock::now();
  ASSERT_TRUE(h.push_audio_chunked(0, in, 48000, 2, 960, 0).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  const auto elapsed = Clock::now() - t0;
  // 100 packets of 20 ms at 10x: the last leaves 99 * 2 ms = 198 ms after the first.
  EXPECT_GE(elapsed, milliseconds(150));
  EXPECT_LE(elapsed, milliseconds(1500)) << "well under the 2 s of real time (loaded CI machines included)";
  EXPECT_EQ(h.audio(), in);
  ASSERT_EQ(h.packets().size(), 100U);
  for (std::size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(h.packets()[i].header.pts_us, static_cast<std::int64_t>(i) * 20000);
  }
}

TEST(AudioPacer, SchedulesByMediaDuration) {
  NodeHarness h("audio::pacer", {{"speed", 2.0}});
  ASSERT_TRUE(h.ok());
  h.set_skip_sleep(true);
  const auto t0 = Clock::now();
  ASSERT_TRUE(h.push_audio_chunked(0, constant(0.1F, 48000), 48000, 1, 480).is_ok());
  // 100 packets of 10 ms at 2x: the last is due 99 * 5 ms after the first.
  const auto due = std::chrono::duration_cast<milliseconds>(h.last_sleep_deadline() - t0).count();
  EXPECT_GE(due, 495);
  EXPECT_LE(due, 545);
  EXPECT_EQ(h.sleep_calls(), 99U);
  EXPECT_EQ(h.audio().size(), 48000U);
}

TEST(AudioPacer, FillsATimestampGapWithSilence) {
  NodeHarness h("audio::pacer", Json::object());
  ASSERT_TRUE(h.ok());
  h.set_skip_sleep(true);
  ASSERT_TRUE(h.push_audio_chunked(0, constant(0.5F, 4800), 48000, 1, 960, 0).is_ok());
  ASSERT_TRUE(h.push_audio_chunked(0, constant(0.5F, 4800), 48000, 1, 960, 300000).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  const auto& p = h.packets();
  ASSERT_EQ(p.size(), 5U + 10U + 5U);
  std::int64_t pts = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    ASSERT_EQ(p[i].header.pts_us, pts) << i;
    ASSERT_EQ(p[i].frames(), 960U);
    const bool gap = i >= 5 && i < 15;
    for (float v : p[i].samples()) {
      ASSERT_EQ(v, gap ? 0.0F : 0.5F) << i;
    }
    pts += p[i].header.duration_us;
  }
}

TEST(AudioPacer, LeavesGapsAloneWithoutGenerateSilence) {
  NodeHarness h("audio::pacer", {{"generate_silence", false}});
  ASSERT_TRUE(h.ok());
  h.set_skip_sleep(true);
  ASSERT_TRUE(h.push_audio_chunked(0, constant(0.5F, 4800), 48000, 1, 960, 0).is_ok());
  ASSERT_TRUE(h.push_audio_chunked(0, constant(0.5F, 4800), 48000, 1, 960, 300000).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  ASSERT_EQ(h.packets().size(), 10U);
  EXPECT_EQ(h.packets()[5].header.pts_us, 300000);
}

TEST(AudioPacer, CoversAnInputStallWithSilenceAndKeepsTheTimelineContinuous) {
  NodeHarness h("audio::pacer", Json::object());
  ASSERT_TRUE(h.ok());
  const auto a = constant(0.5F, 960 * 3);
  ASSERT_TRUE(h.push_audio_chunked(0, a, 48000, 1, 960, 0).is_ok());  // ~40 ms
  std::this_thread::sleep_for(milliseconds(200));                     // upstream stalls
  ASSERT_TRUE(h.push_audio_chunked(0, a, 48000, 1, 960, 60000).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  const auto& p = h.packets();
  std::size_t silent = 0;
  std::size_t audio_frames = 0;
  std::int64_t pts = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    ASSERT_EQ(p[i].header.pts_us, pts) << i;  // no overlap, no hole
    pts += p[i].header.duration_us;
    if (p[i].samples()[0] == 0.0F) {
      ++silent;
    } else {
      audio_frames += p[i].frames();
    }
  }
  EXPECT_EQ(audio_frames, 2 * a.size());  // every input sample still goes out
  // The stall ran ~180 ms past the 4th packet's slot: about 9 frames of 20 ms.
  EXPECT_GE(silent, 6U);
  EXPECT_LE(silent, 12U);
}

TEST(AudioPacer, CatchUpIsBoundedByBufferSize) {
  NodeHarness h("audio::pacer", {{"buffer_size", 3}});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_audio(0, constant(0.5F, 960), 48000, 1, 0).is_ok());
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_TRUE(h.push_audio(0, constant(0.5F, 960), 48000, 1, 20000).is_ok());
  ASSERT_EQ(h.packets().size(), 1U + 3U + 1U);
  EXPECT_EQ(h.packets()[4].header.pts_us, 80000);
}

TEST(AudioPacer, InitialFormatCoversStartUp) {
  NodeHarness h("audio::pacer", {{"initial_sample_rate", 16000}, {"initial_channels", 1}});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.prepare().is_ok());
  std::this_thread::sleep_for(milliseconds(100));  // the first frame takes a while
  ASSERT_TRUE(h.push_audio(0, constant(0.5F, 960, 2), 48000, 2, 0).is_ok());
  const auto& p = h.packets();
  ASSERT_GE(p.size(), 4U);
  ASSERT_LE(p.size(), 8U);
  EXPECT_EQ(p.front().header.sample_rate, 16000U);
  EXPECT_EQ(p.front().header.channels, 1U);
  EXPECT_EQ(p.front().frames(), 320U);
  EXPECT_EQ(p.back().header.sample_rate, 48000U);
  EXPECT_EQ(p.back().header.pts_us, static_cast<std::int64_t>(p.size() - 1) * 20000);
}

TEST(AudioPacer, StopInterruptsTheWait) {
  NodeHarness h("audio::pacer", {{"speed", 0.01}});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_audio(0, constant(0.5F, 960), 48000, 1, 0).is_ok());
  h.request_stop();
  const auto t0 = Clock::now();
  const Status s = h.push_audio(0, constant(0.5F, 960), 48000, 1, 20000);
  EXPECT_EQ(s.code(), ErrorCode::kCancelled);
  EXPECT_LT(Clock::now() - t0, milliseconds(500));
}

TEST(AudioPacer, SpeedIsTunable) {
  NodeHarness h("audio::pacer", Json::object());
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.tune({{"speed", 20.0}}).is_ok());
  const auto t0 = Clock::now();
  ASSERT_TRUE(h.push_audio_chunked(0, constant(0.1F, 48000), 48000, 1, 960).is_ok());
  EXPECT_LT(Clock::now() - t0, milliseconds(400));  // 1 s at 20x ~ 49 ms
  EXPECT_FALSE(h.tune({{"buffer_size", 5}}).is_ok());
}

TEST(AudioPacer, Params) {
  EXPECT_TRUE(NodeHarness::validate("audio::pacer", Json::object()).empty());
  EXPECT_FALSE(NodeHarness::validate("audio::pacer", {{"speed", 0}}).empty());
  EXPECT_FALSE(NodeHarness::validate("audio::pacer", {{"buffer_size", 0}}).empty());
  const auto lone = NodeHarness::validate("audio::pacer", {{"initial_sample_rate", 48000}});
  ASSERT_EQ(lone.size(), 1U);
  EXPECT_NE(lone[0].message().find("together"), std::string::npos);
  EXPECT_TRUE(NodeHarness::validate("audio::pacer",
                                    {{"initial_sample_rate", 48000}, {"initial_channels", 2}})
                  .empty());
  const auto schema = NodeRegistry::builtin().find("audio::pacer")->params->json_schema();
  EXPECT_EQ(schema["properties"]["buffer_size"]["default"], 32);
  EXPECT_EQ(schema["properties"]["generate_silence"]["default"], true);
  EXPECT_EQ(schema["properties"]["speed"]["tunable"], true);
}

}  // namespace
}  // namespace skit::testing
