// SPDX-License-Identifier: MPL-2.0
// The NodeHarness itself, on existing nodes: a filter (audio::gain), zero-copy forwarding and
// StreamInfo pass-through (core::passthrough), a pull-mode demuxer (containers::wav::demuxer)
// and params validation through the registry.
#include "node_harness.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "audio_util.hpp"

namespace skit::testing {
namespace {

TEST(NodeHarness, RunsAFilterWithItsParams) {
  NodeHarness h("audio::gain", {{"gain", 0.5}});
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  const auto in = constant(0.8F, 480, 2);
  ASSERT_TRUE(h.push_audio(0, in, 48000, 2, 1000).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  ASSERT_EQ(h.packets().size(), 1U);
  const auto& p = h.packets()[0];
  EXPECT_EQ(p.header.kind, PacketKind::kRawAudio);
  EXPECT_EQ(p.header.pts_us, 1000);
  EXPECT_EQ(p.header.duration_us, 10000);
  EXPECT_EQ(p.header.sample_rate, 48000U);
  EXPECT_EQ(p.header.channels, 2U);
  EXPECT_EQ(p.frames(), 480U);
  for (float v : p.samples()) {
    ASSERT_FLOAT_EQ(v, 0.4F);
  }
  // Live tuning goes through the node's real schema.
  ASSERT_TRUE(h.tune({{"gain", 2.0}}).is_ok());
  EXPECT_FALSE(h.tune({{"gain", 9.0}}).is_ok());
}

TEST(NodeHarness, CreationUsesTheRealParamsValidation) {
  NodeHarness bad("audio::gain", {{"gain", 9.0}});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.create_status().code(), ErrorCode::kInvalidParam);
  EXPECT_EQ(bad.create_status().where().param, "gain");

  NodeHarness unknown("audio::nope");
  EXPECT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.create_status().code(), ErrorCode::kUnknownKind);

  const auto errors = NodeHarness::validate("audio::gain", {{"gain", "loud"}, {"extra", 1}});
  EXPECT_EQ(errors.size(), 2U);
}

TEST(NodeHarness, ForwardsAndPassesStreamInfoThrough) {
  NodeHarness h("core::passthrough");
  ASSERT_TRUE(h.ok());
  StreamInfo info;
  info.codec = "opus";
  info.sample_rate = 48000;
  info.channels = 2;
  ASSERT_TRUE(h.push_stream_info(0, info, PacketKind::kEncodedAudio).is_ok());
  ASSERT_NE(h.input_info(0), nullptr);
  EXPECT_EQ(h.input_info(0)->codec, "opus");
  ASSERT_TRUE(h.push_text(0, "abc", PacketKind::kBinary, 5).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  ASSERT_EQ(h.stream_infos().size(), 1U);
  EXPECT_EQ(h.stream_infos()[0], info);
  ASSERT_EQ(h.packets().size(), 1U);
  EXPECT_EQ(h.packets()[0].text(), "abc");
  EXPECT_EQ(h.packets()[0].header.pts_us, 5);
}

TEST(NodeHarness, FeedsAPullModeDemuxer) {
  // A 16-bit mono 8 kHz WAV file, built by hand.
  const std::uint32_t rate = 8000;
  std::vector<std::int16_t> pcm(800);
  for (std::size_t i = 0; i < pcm.size(); ++i) {
    pcm[i] = static_cast<std::int16_t>(static_cast<int>(i) * 40 - 16000);
  }
  std::vector<std::byte> wav;
  auto put = [&wav](const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    wav.insert(wav.end(), b, b + n);
  };
  auto u32 = [&put](std::uint32_t v) { put(&v, 4); };
  auto u16 = [&put](std::uint16_t v) { put(&v, 2); };
  const auto data_bytes = static_cast<std::uint32_t>(pcm.size() * 2);
  put("RIFF", 4);
  u32(36 + data_bytes);
  put("WAVEfmt ", 8);
  u32(16);
  u16(1);  // PCM
  u16(1);  // mono
  u32(rate);
  u32(rate * 2);
  u16(2);
  u16(16);
  put("data", 4);
  u32(data_bytes);
  put(pcm.data(), data_bytes);

  NodeHarness h("containers::wav::demuxer");
  ASSERT_TRUE(h.ok());
  h.queue_input_bytes(wav, /*chunk=*/100);
  h.end_pulled_input();
  ASSERT_TRUE(h.run_source().is_ok());
  const auto out = h.audio();
  ASSERT_EQ(out.size(), pcm.size());
  for (std::size_t i = 0; i < pcm.size(); ++i) {
    ASSERT_NEAR(out[i], pcm[i] / 32768.0F, 1e-6F) << i;
  }
  EXPECT_EQ(h.packets().front().header.sample_rate, rate);
  EXPECT_EQ(h.packets().front().header.pts_us, 0);
}

TEST(NodeHarness, ReadInputWithoutEndIsAnErrorNotAHang) {
  NodeHarness h("containers::wav::demuxer");
  ASSERT_TRUE(h.ok());
  const char junk[] = "RIFF";
  h.queue_input_bytes(std::as_bytes(std::span(junk, 4)));
  EXPECT_FALSE(h.run_source().is_ok());
}

TEST(NodeHarness, RejectsPacketsAfterEndOfInput) {
  NodeHarness h("audio::gain");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.end_input(0).is_ok());
  const auto in = constant(0.1F, 10);
  EXPECT_FALSE(h.push_audio(0, in, 48000, 1, 0).is_ok());
}

TEST(NodeHarness, EnforcesTheSlotSize) {
  NodeHarness h("audio::gain");  // 128 KiB slots
  ASSERT_TRUE(h.ok());
  const auto in = constant(0.1F, 40000);  // 160 KB
  const Status s = h.push_audio(0, in, 48000, 1, 0);
  EXPECT_FALSE(s.is_ok());
}

TEST(NodeHarness, SleepUntilSleepsOrSkips) {
  NodeHarness h("core::pacer", {{"speed", 1.0}});
  ASSERT_TRUE(h.ok());
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  EXPECT_TRUE(h.sleep_until(t0 + std::chrono::milliseconds(30)));
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(30));
  h.set_skip_sleep(true);
  const auto t1 = Clock::now();
  EXPECT_TRUE(h.sleep_until(t1 + std::chrono::seconds(10)));
  EXPECT_LT(Clock::now() - t1, std::chrono::seconds(1));
  EXPECT_GE(h.requested_sleep(), std::chrono::seconds(9));
  h.request_stop();
  EXPECT_FALSE(h.sleep_until(Clock::now() + std::chrono::seconds(10)));
}

}  // namespace
}  // namespace skit::testing
