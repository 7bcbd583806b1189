// SPDX-License-Identifier: MPL-2.0
// plugin::native::gain (the SDK example) through the C ABI: +6.02 dB measured, live tuning,
// bad params refused with the plugin's message.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "audio_measure.hpp"
#include "plugin_test_common.hpp"

namespace skit::testing {
namespace {

std::vector<float> sine(double freq, double amp, double seconds, int rate, int channels) {
  std::vector<float> x(static_cast<size_t>(seconds * rate) * channels);
  for (size_t i = 0; i < x.size(); ++i) {
    double t = double(i / channels) / rate;
    x[i] = static_cast<float>(amp * std::sin(2 * std::numbers::pi * freq * t));
  }
  return x;
}

TEST(GainPlugin, MetadataIsValid) {
  PluginLibrary lib(plugin_path("skit_gain"));
  expect_valid_metadata(lib.metadata(), "gain");
  auto schema = nlohmann::json::parse(lib.metadata().param_schema);
  EXPECT_TRUE(schema["properties"].contains("gain_db"));
}

TEST(GainPlugin, SixDbDoublesTheAmplitude) {
  PluginLibrary lib(plugin_path("skit_gain"));
  auto node = lib.create({{"gain_db", 6.0206}});
  ASSERT_NE(node, nullptr);
  auto in = sine(440, 0.25, 1.0, 48000, 2);
  auto out = node->audio(in, 48000, 2);
  ASSERT_EQ(out.packets.size(), 1u);
  EXPECT_EQ(out.packets[0].pin, "out");
  EXPECT_EQ(out.packets[0].sample_rate, 48000u);
  EXPECT_EQ(out.packets[0].channels, 2);
  double gain_db = rms_db(out.packets[0].samples) - rms_db(in);
  std::printf("gain plugin: gain_db 6.0206 measured %+.3f dB\n", gain_db);
  EXPECT_NEAR(gain_db, kSixDb, 0.01);
}

TEST(GainPlugin, TunedLive) {
  PluginLibrary lib(plugin_path("skit_gain"));
  auto node = lib.create(nlohmann::json::object());
  ASSERT_NE(node, nullptr);
  auto in = sine(1000, 0.5, 0.1, 48000, 1);
  EXPECT_NEAR(rms_db(node->audio(in, 48000, 1).packets.at(0).samples) - rms_db(in), 0.0, 0.01);
  EXPECT_EQ(node->update_params({{"gain_db", -20.0}}), "");
  EXPECT_NEAR(rms_db(node->audio(in, 48000, 1).packets.at(0).samples) - rms_db(in), -20.0, 0.01);
  EXPECT_NE(node->update_params({{"gain_db", "loud"}}).find("gain_db"), std::string::npos);
  EXPECT_NE(node->update_params({{"gain", 2}}).find("unknown param 'gain'"), std::string::npos);
}

TEST(GainPlugin, BadParamsRefusedAtCreation) {
  PluginLibrary lib(plugin_path("skit_gain"));
  std::string error;
  EXPECT_EQ(lib.create({{"gain_db", 100}}, &error), nullptr);
  EXPECT_NE(error.find("gain_db must be in [-60, 20]"), std::string::npos) << error;
}

TEST(GainPlugin, WrongPacketKindFailsWithAMessage) {
  PluginLibrary lib(plugin_path("skit_gain"));
  auto node = lib.create(nlohmann::json::object());
  ASSERT_NE(node, nullptr);
  try {
    node->text("hello");
    FAIL() << "a Text packet was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("expected a RawAudio packet"), std::string::npos);
  }
}

}  // namespace
}  // namespace skit::testing
