// SPDX-License-Identifier: MPL-2.0
// audio::mixer: levels of mixed tones, saturation, inputs that end early, inputs in different
// packet sizes and start times, channel mapping, sync timeout and params.
#include <gtest/gtest.h>

#include <thread>

#include "audio_util.hpp"
#include "node_harness.hpp"

namespace skit::testing {
namespace {

constexpr std::uint32_t kRate = 48000;

/// Pushes two mono signals, alternating packets (the runtime's round-robin), then finishes.
Status mix_two(NodeHarness& h, const std::vector<float>& a, std::size_t a_frames_per_packet,
               const std::vector<float>& b, std::size_t b_frames_per_packet,
               std::int64_t b_start_us = 0) {
  std::size_t ia = 0;
  std::size_t ib = 0;
  while (ia < a.size() || ib < b.size()) {
    if (ia < a.size()) {
      const std::size_t n = std::min(a_frames_per_packet, a.size() - ia);
      SKIT_RETURN_IF_ERROR(h.push_audio(0, std::span(a).subspan(ia, n), kRate, 1,
                                        NodeHarness::frames_to_us(ia, kRate)));
      ia += n;
    }
    if (ib < b.size()) {
      const std::size_t n = std::min(b_frames_per_packet, b.size() - ib);
      SKIT_RETURN_IF_ERROR(h.push_audio(1, std::span(b).subspan(ib, n), kRate, 1,
                                        b_start_us + NodeHarness::frames_to_us(ib, kRate)));
      ib += n;
    }
  }
  return h.finish();
}

void expect_continuous_20ms_packets(const NodeHarness& h, std::int64_t first_pts = 0) {
  std::int64_t pts = first_pts;
  const auto& packets = h.packets();
  for (std::size_t i = 0; i < packets.size(); ++i) {
    const auto& p = packets[i];
    ASSERT_EQ(p.header.kind, PacketKind::kRawAudio);
    ASSERT_EQ(p.header.sample_rate, kRate);
    ASSERT_EQ(p.header.pts_us, pts) << "packet " << i;
    if (i + 1 < packets.size()) {
      ASSERT_EQ(p.frames(), 960U) << "packet " << i;
    }
    pts += p.header.duration_us;
  }
}

TEST(Mixer, KeepsBothTonesAtTheirLevels) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  const auto a = sine(440, 0.4, kRate, kRate);
  const auto b = sine(1000, 0.3, kRate, kRate);
  ASSERT_TRUE(mix_two(h, a, 960, b, 960).is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), static_cast<std::size_t>(kRate));
  EXPECT_EQ(h.packets().size(), 50U);
  expect_continuous_20ms_packets(h);
  EXPECT_NEAR(goertzel(out, 440, kRate), 0.4, 0.005);
  EXPECT_NEAR(goertzel(out, 1000, kRate), 0.3, 0.005);
  EXPECT_LT(goertzel(out, 700, kRate), 0.002);
  EXPECT_LT(goertzel(out, 2000, kRate), 0.002);
  // A sum is a sum: sample for sample.
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], a[i] + b[i], 1e-6F) << i;
  }
}

TEST(Mixer, SaturatesAtPlusMinusOneWithoutWrapping) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(h.ok());
  const auto a = sine(100, 0.9, kRate, 9600);
  const auto b = sine(100, 0.9, kRate, 9600);  // in phase: peaks at 1.8
  ASSERT_TRUE(mix_two(h, a, 960, b, 960).is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), a.size());
  std::size_t clipped = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const float want = std::clamp(a[i] + b[i], -1.0F, 1.0F);
    ASSERT_NEAR(out[i], want, 1e-6F) << i;
    ASSERT_LE(std::abs(out[i]), 1.0F);
    // Never wraps: the sign follows the sum.
    if (std::abs(a[i]) > 1e-3F) {
      ASSERT_EQ(out[i] > 0, a[i] > 0) << i;
    }
    clipped += std::abs(out[i]) == 1.0F ? 1 : 0;
  }
  EXPECT_GT(clipped, out.size() / 4);

  NodeHarness dc("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(mix_two(dc, constant(-0.8F, 960), 960, constant(-0.7F, 960), 960).is_ok());
  for (float v : dc.audio()) {
    ASSERT_EQ(v, -1.0F);
  }
}

TEST(Mixer, AnInputThatEndsEarlyDoesNotStall) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(h.ok());
  const auto a = sine(440, 0.5, kRate, kRate);              // 1 s
  const auto b = sine(1000, 0.25, kRate, kRate * 3 / 10);   // 0.3 s, then ends
  std::size_t ib = 0;
  for (std::size_t ia = 0; ia < a.size(); ia += 960) {
    ASSERT_TRUE(h.push_audio(0, std::span(a).subspan(ia, 960), kRate, 1,
                             NodeHarness::frames_to_us(ia, kRate))
                    .is_ok());
    if (ib < b.size()) {
      ASSERT_TRUE(h.push_audio(1, std::span(b).subspan(ib, 960), kRate, 1,
                               NodeHarness::frames_to_us(ib, kRate))
                      .is_ok());
      ib += 960;
      if (ib >= b.size()) {
        ASSERT_TRUE(h.end_input(1).is_ok());
      }
    }
  }
  // Before in_0 ends, everything it delivered is already mixed: nothing waits for in_1.
  EXPECT_EQ(h.audio().size(), a.size());
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), a.size());  // the longest input
  expect_continuous_20ms_packets(h);
  const std::span<const float> head(out.data(), b.size());
  const std::span<const float> tail(out.data() + b.size(), out.size() - b.size());
  EXPECT_NEAR(goertzel(head, 1000, kRate), 0.25, 0.005);
  EXPECT_LT(goertzel(tail, 1000, kRate), 0.002);
  for (std::size_t i = b.size(); i < out.size(); ++i) {
    ASSERT_NEAR(out[i], a[i], 1e-6F);
  }
}

TEST(Mixer, OutputRunsToTheEndOfTheLongestInputWithAShortLastPacket) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(mix_two(h, constant(0.1F, 1000), 1000, constant(0.2F, 2500), 500).is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), 2500U);
  expect_continuous_20ms_packets(h);
  EXPECT_EQ(h.packets().back().frames(), 2500U - 2 * 960U);
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], i < 1000 ? 0.3F : 0.2F, 1e-6F) << i;
  }
}

TEST(Mixer, InputsInDifferentPacketSizesLineUp) {
  // The same tone, inverted on in_1 and sent in other packet sizes: any misalignment, even by
  // one sample, leaves a residue.
  const auto a = sine(440, 0.5, kRate, kRate / 2);
  std::vector<float> b(a.size());
  std::transform(a.begin(), a.end(), b.begin(), [](float v) { return -v; });
  for (auto [na, nb] : {std::pair{441U, 1000U}, std::pair{256U, 960U}, std::pair{1920U, 7U}}) {
    NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE(mix_two(h, a, na, b, nb).is_ok());
    const auto out = h.audio();
    ASSERT_EQ(out.size(), a.size()) << na << "/" << nb;
    EXPECT_LT(max_abs(out), 1e-6F) << na << "/" << nb;
    expect_continuous_20ms_packets(h);
  }
}

TEST(Mixer, PlacesInputsByTimestamp) {
  // in_1 starts 500 ms into the mix: silence before it, not a shift.
  NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(mix_two(h, constant(0.25F, kRate), 480, constant(0.5F, kRate / 4), 960, 500000).is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), static_cast<std::size_t>(kRate));
  for (std::size_t i = 0; i < out.size(); ++i) {
    const bool b_plays = i >= kRate / 2 && i < kRate / 2 + kRate / 4;
    ASSERT_NEAR(out[i], b_plays ? 0.75F : 0.25F, 1e-6F) << i;
  }
}

TEST(Mixer, TimelineStartsAtTheEarliestInput) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(h.ok());
  // in_0 starts at 2 s, in_1 at 2.1 s; pushed in_0 first.
  ASSERT_TRUE(h.push_audio(0, constant(0.1F, 9600), kRate, 1, 2000000).is_ok());
  EXPECT_TRUE(h.packets().empty());  // in_1 has not shown up yet
  ASSERT_TRUE(h.push_audio(1, constant(0.2F, 4800), kRate, 1, 2100000).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  expect_continuous_20ms_packets(h, 2000000);
  const auto out = h.audio();
  ASSERT_EQ(out.size(), 9600U);
  EXPECT_NEAR(out[4799], 0.1F, 1e-6F);
  EXPECT_NEAR(out[4800], 0.3F, 1e-6F);
}

TEST(Mixer, SpreadsMonoToStereo) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(h.ok());
  std::vector<float> stereo(960 * 2);
  for (std::size_t i = 0; i < 960; ++i) {
    stereo[2 * i] = 0.1F;
    stereo[2 * i + 1] = 0.2F;
  }
  ASSERT_TRUE(h.push_audio(0, stereo, kRate, 2, 0).is_ok());
  ASSERT_TRUE(h.push_audio(1, constant(0.3F, 960), kRate, 1, 0).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  ASSERT_EQ(h.packets().size(), 1U);
  EXPECT_EQ(h.packets()[0].header.channels, 2U);
  const auto out = h.audio();
  ASSERT_EQ(out.size(), 1920U);
  for (std::size_t i = 0; i < 960; ++i) {
    ASSERT_NEAR(out[2 * i], 0.4F, 1e-6F);
    ASSERT_NEAR(out[2 * i + 1], 0.5F, 1e-6F);
  }
}

TEST(Mixer, RejectsAnInputAtAnotherRateNamingIt) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_audio(0, constant(0.1F, 960), 48000, 1, 0).is_ok());
  const Status s = h.push_audio(1, constant(0.1F, 882), 44100, 1, 0);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("in_1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("44100"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("resampler"), std::string::npos) << s.message();
}

TEST(Mixer, RejectsIncompatibleChannelCountsNamingTheInput) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}}, 2);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_audio(0, constant(0.1F, 960, 2), kRate, 2, 0).is_ok());
  const Status s = h.push_audio(1, constant(0.1F, 960, 6), kRate, 6, 0);
  Status end = s.is_ok() ? h.finish() : s;
  ASSERT_FALSE(end.is_ok());
  EXPECT_NE(end.message().find("in_"), std::string::npos) << end.message();
}

TEST(Mixer, LearnsItsInputsWithoutNumInputs) {
  NodeHarness h("audio::mixer", Json::object(), 3);
  ASSERT_TRUE(h.ok());
  for (std::size_t k = 0; k < 5; ++k) {
    for (std::size_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(h.push_audio(i, constant(0.1F * static_cast<float>(i + 1), 960), kRate, 1,
                               NodeHarness::frames_to_us(k * 960, kRate))
                      .is_ok());
    }
  }
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), 5U * 960U);
  for (float v : out) {
    ASSERT_NEAR(v, 0.6F, 1e-6F);
  }
}

TEST(Mixer, WaitsForASlowInputThenTimesItOut) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}, {"sync_timeout_ms", 50}}, 2);
  ASSERT_TRUE(h.ok());
  std::size_t frames = 0;
  auto push_a = [&] {
    ASSERT_TRUE(h.push_audio(0, constant(0.25F, 960), kRate, 1,
                             NodeHarness::frames_to_us(frames, kRate))
                    .is_ok());
    frames += 960;
  };
  for (int i = 0; i < 5; ++i) {
    push_a();
  }
  EXPECT_TRUE(h.packets().empty());  // in_1 may still come: wait
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  push_a();
  EXPECT_EQ(h.audio().size(), frames);  // timed out: in_1 is mixed as silence
  // in_1's late audio for time already mixed is dropped; the rest plays.
  ASSERT_TRUE(h.push_audio(1, constant(0.5F, 9600), kRate, 1, 0).is_ok());
  push_a();
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), 9600U);
  expect_continuous_20ms_packets(h);
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], i < 6 * 960 ? 0.25F : i < 7 * 960 ? 0.75F : 0.5F, 1e-6F) << i;
  }
}

TEST(Mixer, ZeroTimeoutWaitsForever) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}, {"sync_timeout_ms", 0}}, 2);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_audio(0, constant(0.25F, 960), kRate, 1, 0).is_ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(h.push_audio(0, constant(0.25F, 960), kRate, 1, 20000).is_ok());
  EXPECT_TRUE(h.packets().empty());
  ASSERT_TRUE(h.push_audio(1, constant(0.5F, 1920), kRate, 1, 0).is_ok());
  EXPECT_EQ(h.audio().size(), 1920U);
  ASSERT_TRUE(h.finish().is_ok());
  for (float v : h.audio()) {
    ASSERT_NEAR(v, 0.75F, 1e-6F);
  }
}

TEST(Mixer, ToleratesTimestampRoundingBetweenPackets) {
  // 44.1 kHz packets of 1024 frames: pts rounded to whole microseconds drift from the exact
  // sample clock; the mixer must neither drop nor insert samples.
  NodeHarness h("audio::mixer", {{"num_inputs", 1}}, 1);
  ASSERT_TRUE(h.ok());
  const auto a = sine(441, 0.5, 44100, 44100 * 2);
  std::int64_t pts = 0;
  for (std::size_t f = 0; f < a.size() / 1; f += 1024) {
    const std::size_t n = std::min<std::size_t>(1024, a.size() - f);
    ASSERT_TRUE(h.push_audio(0, std::span(a).subspan(f, n), 44100, 1, pts).is_ok());
    pts += static_cast<std::int64_t>(n) * 1000000 / 44100;  // truncated, as write_audio does
  }
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), a.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], a[i], 1e-6F) << i;
  }
  EXPECT_EQ(h.packets().front().frames(), 882U);  // 20 ms at 44.1 kHz
}

TEST(Mixer, GapInAnInputIsSilence) {
  NodeHarness h("audio::mixer", {{"num_inputs", 1}}, 1);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_audio(0, constant(0.5F, 960), kRate, 1, 0).is_ok());
  ASSERT_TRUE(h.push_audio(0, constant(0.5F, 960), kRate, 1, 40000).is_ok());  // 20 ms gap
  ASSERT_TRUE(h.finish().is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), 3U * 960U);
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i], (i >= 960 && i < 1920) ? 0.0F : 0.5F) << i;
  }
}

TEST(Mixer, Params) {
  EXPECT_TRUE(NodeHarness::validate("audio::mixer", Json::object()).empty());
  EXPECT_TRUE(NodeHarness::validate("audio::mixer", {{"num_inputs", 4}, {"sync_timeout_ms", 0}}).empty());
  EXPECT_FALSE(NodeHarness::validate("audio::mixer", {{"num_inputs", -1}}).empty());
  EXPECT_FALSE(NodeHarness::validate("audio::mixer", {{"sync_timeout_ms", "soon"}}).empty());
  EXPECT_FALSE(NodeHarness::validate("audio::mixer", {{"clocked", true}}).empty());
  const auto* d = NodeRegistry::builtin().find("audio::mixer");
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->inputs.size(), 1U);
  EXPECT_EQ(d->inputs[0].name, "in");
  EXPECT_EQ(d->inputs[0].cardinality, Cardinality::kDynamic);
  EXPECT_EQ(d->params->json_schema()["properties"]["sync_timeout_ms"]["default"], 100);

  NodeHarness h("audio::mixer", {{"num_inputs", 1}}, 2);
  ASSERT_TRUE(h.ok());
  const Status s = h.push_audio(1, constant(0.1F, 960), kRate, 1, 0);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("in_1"), std::string::npos);
}

// ---- clocked mode --------------------------------------------------------------------------

TEST(ClockedMixer, AMissingInputDoesNotHoldTheMixAndOutputKeepsRealTime) {
  NodeHarness h("audio::mixer", {{"num_inputs", 2}, {"clocked", Json::object()}}, 2);
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(h.start().is_ok());
  const auto tone = sine(1000, 0.5, kRate, kRate / 2);  // 0.5 s on in_0; in_1 never sends
  ASSERT_TRUE(h.push_audio_chunked(0, tone, kRate, 1, 960).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t frames = 0;
  std::vector<float> all;
  for (const auto& p : h.packets()) {
    EXPECT_EQ(p.header.pts_us, NodeHarness::frames_to_us(frames, kRate));
    frames += p.frames();
    all.insert(all.end(), p.samples().begin(), p.samples().end());
  }
  EXPECT_EQ(frames, kRate / 2U) << "every input frame, in 20 ms frames";
  EXPECT_EQ(h.packets().front().frames(), 960U);
  EXPECT_NEAR(max_abs(all), 0.5F, 1e-4F) << "the input at its level, silence for the other";
  // The clock paces the output: half a second of audio takes about half a second.
  EXPECT_GT(wall_s, 0.40) << wall_s;
  EXPECT_LT(wall_s, 1.0) << wall_s;
}

TEST(ClockedMixer, GeneratesSilenceWhenNoInputHasAudio) {
  NodeHarness h("audio::mixer", {{"clocked", {{"frame_samples_per_channel", 480}}}}, 1);
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  ASSERT_TRUE(h.start().is_ok());
  ASSERT_TRUE(h.timer().has_value()) << "a clocked mixer asks for its first tick at start";
  ASSERT_TRUE(h.fire_timer().is_ok());
  EXPECT_TRUE(h.packets().empty()) << "no format before the first audio";
  const auto tone = sine(1000, 0.5, kRate, 480);
  ASSERT_TRUE(h.push_audio(0, tone, kRate, 1, 0).is_ok());
  for (int i = 0; i < 5 && h.timer(); ++i) {
    ASSERT_TRUE(h.fire_timer().is_ok());
  }
  ASSERT_GE(h.packets().size(), 5U);
  EXPECT_NEAR(max_abs(h.packets()[0].samples()), 0.5F, 1e-4F);
  for (std::size_t i = 1; i < h.packets().size(); ++i) {
    EXPECT_EQ(h.packets()[i].frames(), 480U);
    EXPECT_EQ(max_abs(h.packets()[i].samples()), 0.0F) << "silence for the missing input";
  }
}

TEST(ClockedMixer, RejectsBadClockedParams) {
  for (const Json& bad : {Json{{"clocked", {{"sample_rate", 100}}}},
                          Json{{"clocked", {{"jitter", 3}}}}, Json{{"clocked", 5}},
                          Json{{"clocked", {{"generate_silence", "yes"}}}}}) {
    const auto errors = NodeHarness::validate("audio::mixer", bad);
    ASSERT_FALSE(errors.empty()) << bad.dump();
    EXPECT_NE(errors[0].to_string().find("clocked"), std::string::npos) << errors[0].to_string();
  }
  NodeHarness h("audio::mixer", {{"clocked", {{"sample_rate", 16000}}}}, 1);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.start().is_ok());
  const auto tone = sine(1000, 0.5, kRate, 960);
  const Status s = h.push_audio(0, tone, kRate, 1, 0);
  EXPECT_NE(s.message().find("16000"), std::string::npos) << s.to_string();
}

}  // namespace
}  // namespace skit::testing
