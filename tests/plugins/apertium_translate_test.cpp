// SPDX-License-Identifier: MPL-2.0
// plugin::native::apertium_translate on Debian's apertium-eng-spa, every stage in-process:
// the same Spanish as `apertium eng-spa` (run by the test) on a set of sentences, and one
// fixed expected translation.
#include <gtest/gtest.h>

#include "audio_measure.hpp"
#include "plugin_test_common.hpp"

namespace skit::testing {
namespace {

std::string trim(const std::string& s) {
  auto a = s.find_first_not_of(" \t\n"), b = s.find_last_not_of(" \t\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string apertium_cli(const std::string& english) {
  auto r = run_tool({"bash", "-c", "printf '%s\\n' \"$0\" | apertium eng-spa", english});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return trim(r.out);
}

std::string translate(PluginInstance& node, const std::string& english) {
  auto out = node.text(english);
  EXPECT_EQ(out.packets.size(), 1u);
  if (out.packets.empty()) return "";
  EXPECT_EQ(out.packets[0].type, CPacketType_Text);
  return out.packets[0].text;
}

TEST(ApertiumTranslatePlugin, MetadataIsValid) {
  PluginLibrary lib(plugin_path("skit_apertium_translate"));
  expect_valid_metadata(lib.metadata(), "apertium_translate");
  EXPECT_EQ(lib.metadata().inputs[0].accepts_types_count, 2u);
}

TEST(ApertiumTranslatePlugin, AFixedSentence) {
  PluginLibrary lib(plugin_path("skit_apertium_translate"));
  auto node = lib.create({{"pair", "eng-spa"}});
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(translate(*node, "The cat is sleeping on the red chair."),
            "El gato está durmiendo en la silla roja.");
}

TEST(ApertiumTranslatePlugin, SameAsTheApertiumCommand) {
  PluginLibrary lib(plugin_path("skit_apertium_translate"));
  auto node = lib.create(nlohmann::json::object());
  ASSERT_NE(node, nullptr);
  const std::vector<std::string> sentences = {
      "I have a dog",
      "The weather is nice today.",
      "My brother's house is very big.",
      "Where is the train station?",
      "She reads a book every night, and he writes letters.",
      "We would like two cups of coffee, please!",
      "The children were playing in the garden yesterday.",
      "Turn left at the next corner.",
      "Special [characters] like ^ and $ survive / intact.",
      "Dashwood had leisure to consider how much there might be prudently in his power."};
  for (const auto& s : sentences) {
    std::string ours = translate(*node, s);
    std::string cli = apertium_cli(s);
    std::printf("  %s\n  -> %s\n", s.c_str(), ours.c_str());
    EXPECT_EQ(ours, cli) << "for: " << s;
  }
}

TEST(ApertiumTranslatePlugin, TranscriptionInput) {
  PluginLibrary lib(plugin_path("skit_apertium_translate"));
  auto node = lib.create(nlohmann::json::object());
  ASSERT_NE(node, nullptr);
  std::string t = nlohmann::json{{"text", "please open the door"}, {"language", "en"},
                                 {"segments", nlohmann::json::array()}}.dump();
  auto out = node->process(CPacket{CPacketType_Transcription, t.data(), t.size()});
  ASSERT_EQ(out.packets.size(), 1u);
  EXPECT_EQ(out.packets[0].text, apertium_cli("please open the door"));
}

TEST(ApertiumTranslatePlugin, UnknownPairIsRefused) {
  PluginLibrary lib(plugin_path("skit_apertium_translate"));
  std::string error;
  EXPECT_EQ(lib.create({{"pair", "xxx-yyy"}}, &error), nullptr);
  EXPECT_NE(error.find("xxx-yyy.mode"), std::string::npos) << error;
}

}  // namespace
}  // namespace skit::testing
