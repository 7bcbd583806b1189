// SPDX-License-Identifier: MPL-2.0
// core::telemetry_out and core::telemetry_tap in-process: how Custom, Transcription and Text
// packets become events, the packet_types and event_type_filter params, the per-type rate
// limit with its drop report, and the tap's audio levels (RMS and peak in dBFS, window by
// media time) while every packet passes on unchanged.
#include <gtest/gtest.h>

#include <cmath>

#include "audio_util.hpp"
#include "node_harness.hpp"

namespace skit::testing {
namespace {

std::vector<std::string> types_of(const NodeHarness& h) {
  std::vector<std::string> out;
  for (const auto& t : h.telemetry()) {
    out.push_back(t.event_type);
  }
  return out;
}

TEST(TelemetryOut, CustomTranscriptionAndTextBecomeEvents) {
  NodeHarness h("core::telemetry_out",
                {{"packet_types", {"Custom", "Transcription", "Text"}}});
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  ASSERT_TRUE(h.push_text(0, R"({"type_id":"core::telemetry/event@1",)"
                             R"("data":{"event_type":"vad.speech_start","turn_id":"t1"}})",
                          PacketKind::kCustom)
                  .is_ok());
  ASSERT_TRUE(h.push_text(0, R"({"type_id":"vad/event@1","data":{"speech":true}})",
                          PacketKind::kCustom)
                  .is_ok());
  ASSERT_TRUE(h.push_text(0, R"({"text":"go forward ten meters","language":"en"})",
                          PacketKind::kTranscription)
                  .is_ok());
  ASSERT_TRUE(h.push_text(0, "hello").is_ok());
  ASSERT_TRUE(h.push_text(0, "not json", PacketKind::kCustom).is_ok());  // skipped, no failure
  ASSERT_TRUE(h.finish().is_ok());
  ASSERT_EQ(types_of(h), (std::vector<std::string>{"vad.speech_start", "vad/event@1",
                                                   "transcription", "text"}));
  const auto& t = h.telemetry();
  EXPECT_EQ(t[0].data, (Json{{"event_type", "vad.speech_start"}, {"turn_id", "t1"}}));
  EXPECT_EQ(t[1].data, (Json{{"speech", true}}));
  EXPECT_EQ(t[2].data.value("text", ""), "go forward ten meters");
  EXPECT_EQ(t[2].data.value("language", ""), "en");
  EXPECT_EQ(t[3].data, (Json{{"text", "hello"}}));
  EXPECT_GT(t[0].timestamp_us, 1'700'000'000'000'000) << "wall-clock microseconds";
}

TEST(TelemetryOut, DefaultPacketTypesAreTranscriptionAndCustom) {
  NodeHarness h("core::telemetry_out");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_text(0, "ignored").is_ok());
  ASSERT_TRUE(h.push_text(0, "{}", PacketKind::kBinary).is_ok());
  ASSERT_TRUE(h.push_text(0, R"({"text":"kept"})", PacketKind::kTranscription).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(types_of(h), (std::vector<std::string>{"transcription"}));
}

TEST(TelemetryOut, EventTypeFilterMatchesPrefixesAndExactTypes) {
  NodeHarness h("core::telemetry_out", {{"event_type_filter", {"vad.*", "stt.result"}}});
  ASSERT_TRUE(h.ok());
  for (const char* type : {"vad.speech_start", "vad.speech_end", "stt.result", "stt.partial",
                           "tts.start", "vadx"}) {
    const std::string custom = std::string(R"({"type_id":"x","data":{"event_type":")") + type +
                               R"("}})";
    ASSERT_TRUE(h.push_text(0, custom, PacketKind::kCustom).is_ok());
  }
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(types_of(h),
            (std::vector<std::string>{"vad.speech_start", "vad.speech_end", "stt.result"}));
}

TEST(TelemetryOut, RateLimitIsPerEventTypeAndDropsAreReported) {
  NodeHarness h("core::telemetry_out", {{"max_events_per_sec", 5}});
  ASSERT_TRUE(h.ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(h.push_text(0, R"({"type_id":"a","data":{}})", PacketKind::kCustom).is_ok());
    ASSERT_TRUE(h.push_text(0, R"({"type_id":"b","data":{}})", PacketKind::kCustom).is_ok());
  }
  ASSERT_TRUE(h.finish().is_ok());
  int a = 0;
  int b = 0;
  std::uint64_t dropped = 0;
  std::uint64_t dropped_total = 0;
  for (const auto& t : h.telemetry()) {
    a += t.event_type == "a" ? 1 : 0;
    b += t.event_type == "b" ? 1 : 0;
    if (t.event_type == "telemetry.dropped") {
      dropped += t.data.value("dropped_since_last", std::uint64_t{0});
      dropped_total = t.data.value("dropped_total", std::uint64_t{0});
    }
  }
  // A burst far faster than 5/s: each type gets its first second's worth, no more.
  EXPECT_EQ(a, 5);
  EXPECT_EQ(b, 5);
  EXPECT_EQ(dropped, 90U);
  EXPECT_EQ(dropped_total, 90U);
}

TEST(TelemetryOut, RejectsUnknownPacketTypes) {
  const auto errors = NodeHarness::validate("core::telemetry_out", {{"packet_types", {"Audio"}}});
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].to_string().find("packet_types"), std::string::npos) << errors[0].to_string();
  EXPECT_FALSE(NodeHarness::validate("core::telemetry_out", {{"packet_types", "Text"}}).empty());
}

TEST(TelemetryTap, ForwardsEveryPacketAndMeasuresAudioLevelsPerInterval) {
  NodeHarness h("core::telemetry_tap", {{"audio_sample_interval_ms", 100}});
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  const auto tone = sine(1000, 0.5, 48000, 48000);  // 1 s at -6.02 dBFS peak
  ASSERT_TRUE(h.push_audio_chunked(0, tone, 48000, 1, 960).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.packets().size(), 50U) << "every packet passes on";
  ASSERT_EQ(h.telemetry().size(), 10U);
  const double rms_db = 20 * std::log10(0.5 / std::sqrt(2.0));
  const double peak_db = 20 * std::log10(0.5);
  for (std::size_t i = 0; i < h.telemetry().size(); ++i) {
    const auto& t = h.telemetry()[i];
    EXPECT_EQ(t.event_type, "audio.level");
    EXPECT_NEAR(t.data.value("rms_dbfs", 0.0), rms_db, 0.05);
    EXPECT_NEAR(t.data.value("peak_dbfs", 0.0), peak_db, 0.05);
    EXPECT_NEAR(t.data.value("window_ms", 0.0), 100.0, 1e-9);
    EXPECT_EQ(t.data.value("pts_us", -1), static_cast<std::int64_t>(i) * 100000);
  }
}

TEST(TelemetryTap, SilenceIsFlooredAndZeroIntervalTurnsLevelsOff) {
  NodeHarness silent("core::telemetry_tap", {{"audio_sample_interval_ms", 20}});
  ASSERT_TRUE(silent.ok());
  const std::vector<float> zeros(960, 0.0F);
  ASSERT_TRUE(silent.push_audio(0, zeros, 48000, 1, 0).is_ok());
  ASSERT_EQ(silent.telemetry().size(), 1U);
  EXPECT_EQ(silent.telemetry()[0].data.value("rms_dbfs", 0.0), -120.0);

  NodeHarness off("core::telemetry_tap", {{"audio_sample_interval_ms", 0}});
  ASSERT_TRUE(off.ok());
  ASSERT_TRUE(off.push_audio(0, sine(440, 0.5, 48000, 48000), 48000, 1, 0).is_ok());
  ASSERT_TRUE(off.finish().is_ok());
  EXPECT_TRUE(off.telemetry().empty());
  EXPECT_EQ(off.packets().size(), 1U);
}

}  // namespace
}  // namespace skit::testing
