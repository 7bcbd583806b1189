// SPDX-License-Identifier: MPL-2.0
// plugin::native::espeak_tts on the real espeak-ng: a sentence becomes audio of plausible
// length and level; rate changes the length; a bad voice is refused.
#include <gtest/gtest.h>

#include "audio_measure.hpp"
#include "plugin_test_common.hpp"

namespace skit::testing {
namespace {

const std::string kSentence = "The quick brown fox jumps over the lazy dog near the river.";

TEST(EspeakTtsPlugin, MetadataIsValid) {
  PluginLibrary lib(plugin_path("skit_espeak_tts"));
  const auto& m = lib.metadata();
  expect_valid_metadata(m, "espeak_tts");
  ASSERT_NE(m.outputs[0].produces_type.audio_format, nullptr);
  EXPECT_EQ(m.outputs[0].produces_type.audio_format->sample_rate, 22050u);
  EXPECT_EQ(m.outputs[0].produces_type.audio_format->channels, 1);
}

TEST(EspeakTtsPlugin, ASentenceBecomesAudioOfPlausibleLength) {
  PluginLibrary lib(plugin_path("skit_espeak_tts"));
  auto node = lib.create({{"voice", "en-us"}});
  ASSERT_NE(node, nullptr);
  auto out = node->text(kSentence);
  out.append(node->flush());
  ASSERT_FALSE(out.packets.empty());
  for (const auto& p : out.packets) {
    EXPECT_EQ(p.type, CPacketType_RawAudio);
    EXPECT_EQ(p.sample_rate, 22050u);
    EXPECT_EQ(p.channels, 1);
  }
  auto audio = out.audio();
  double seconds = audio.size() / 22050.0;
  double level = rms_db(audio);
  std::printf("espeak_tts: 11-word sentence -> %.2f s in %zu packets, RMS %.1f dBFS\n", seconds,
              out.packets.size(), level);
  EXPECT_GT(seconds, 1.5);
  EXPECT_LT(seconds, 6.0);
  EXPECT_GT(level, -35.0);  // speech, not silence
  EXPECT_GT(out.packets.size(), 3u) << "audio is streamed in chunks, not one blob";
}

TEST(EspeakTtsPlugin, RateChangesTheLength) {
  PluginLibrary lib(plugin_path("skit_espeak_tts"));
  auto slow = lib.create({{"rate", 100}});
  auto fast = lib.create({{"rate", 300}});
  ASSERT_NE(slow, nullptr);
  ASSERT_NE(fast, nullptr);
  double slow_s = slow->text(kSentence).audio().size() / 22050.0;
  double fast_s = fast->text(kSentence).audio().size() / 22050.0;
  std::printf("espeak_tts: rate 100 -> %.2f s, rate 300 -> %.2f s\n", slow_s, fast_s);
  EXPECT_GT(slow_s, 2.0 * fast_s);
  // Tuned live, the fast one slows down.
  EXPECT_EQ(fast->update_params({{"rate", 100}}), "");
  EXPECT_NEAR(fast->text(kSentence).audio().size() / 22050.0, slow_s, 0.1 * slow_s);
}

TEST(EspeakTtsPlugin, BadParamsAreRefused) {
  PluginLibrary lib(plugin_path("skit_espeak_tts"));
  std::string error;
  EXPECT_EQ(lib.create({{"voice", "no-such-voice"}}, &error), nullptr);
  EXPECT_NE(error.find("no voice 'no-such-voice'"), std::string::npos) << error;
  EXPECT_EQ(lib.create({{"rate", 5}}, &error), nullptr);
  EXPECT_NE(error.find("rate must be in [80, 450]"), std::string::npos) << error;
  auto node = lib.create(nlohmann::json::object());
  ASSERT_NE(node, nullptr);
  EXPECT_NE(node->update_params({{"voice", "xx-none"}}).find("no voice"), std::string::npos);
  EXPECT_FALSE(node->text("Still speaking after a refused tune.").audio().empty());
}

TEST(EspeakTtsPlugin, EmptyTextMakesNoAudio) {
  PluginLibrary lib(plugin_path("skit_espeak_tts"));
  auto node = lib.create(nlohmann::json::object());
  ASSERT_NE(node, nullptr);
  EXPECT_TRUE(node->text("   ").packets.empty());
}

}  // namespace
}  // namespace skit::testing
