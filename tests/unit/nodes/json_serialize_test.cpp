// SPDX-License-Identifier: MPL-2.0
// core::json_serialize: exact bytes for Text, Transcription and Custom packets, compact,
// pretty and NDJSON; Binary, audio descriptors, invalid JSON and params.
#include <gtest/gtest.h>

#include "audio_util.hpp"
#include "node_harness.hpp"

namespace skit::testing {
namespace {

constexpr std::string_view kTranscription =
    R"({ "text": "Hello world", "segments": [ { "text": "Hello world", "start_time_ms": 0,
        "end_time_ms": 1200, "confidence": 0.5 } ], "language": "en" })";

TEST(JsonSerialize, TextBecomesAJsonString) {
  NodeHarness h("core::json_serialize");
  ASSERT_TRUE(h.ok()) << h.create_status().to_string();
  ASSERT_TRUE(h.push_text(0, "say \"hi\"\n", PacketKind::kText, 1234).is_ok());
  ASSERT_TRUE(h.push_text(0, "héllo wörld", PacketKind::kText).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  ASSERT_EQ(h.texts(), (std::vector<std::string>{R"("say \"hi\"\n")", R"("héllo wörld")"}));
  EXPECT_EQ(h.packets()[0].header.kind, PacketKind::kBinary);
  EXPECT_EQ(h.packets()[0].header.pts_us, 1234);
}

TEST(JsonSerialize, TranscriptionCompact) {
  NodeHarness h("core::json_serialize");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_text(0, kTranscription, PacketKind::kTranscription).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.text(),
            R"({"language":"en","segments":[{"confidence":0.5,"end_time_ms":1200,)"
            R"("start_time_ms":0,"text":"Hello world"}],"text":"Hello world"})");
}

TEST(JsonSerialize, PrettyAndNewlineDelimited) {
  NodeHarness h("core::json_serialize", {{"pretty", true}, {"newline_delimited", true}});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_text(0, R"({"type_id":"vad/event@1","data":{"speech":true}})",
                          PacketKind::kCustom)
                  .is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.text(),
            "{\n"
            "  \"data\": {\n"
            "    \"speech\": true\n"
            "  },\n"
            "  \"type_id\": \"vad/event@1\"\n"
            "}\n");
}

TEST(JsonSerialize, NdjsonIsOneLinePerPacket) {
  NodeHarness h("core::json_serialize", {{"newline_delimited", true}});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_text(0, "a").is_ok());
  ASSERT_TRUE(h.push_text(0, kTranscription, PacketKind::kTranscription).is_ok());
  ASSERT_TRUE(h.push_text(0, "b").is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  const std::string all = h.text();
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 3);
  EXPECT_EQ(all.substr(0, 4), "\"a\"\n");
  EXPECT_EQ(all.substr(all.size() - 4), "\"b\"\n");
}

TEST(JsonSerialize, BinaryIsReSerializedWhenItIsJson) {
  NodeHarness h("core::json_serialize");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_text(0, "[1, 2,  3]", PacketKind::kBinary).is_ok());
  ASSERT_TRUE(h.push_text(0, "plain text", PacketKind::kBinary).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.texts(), (std::vector<std::string>{"[1,2,3]", "\"plain text\""}));
}

TEST(JsonSerialize, AudioIsDescribedNotDumped) {
  NodeHarness h("core::json_serialize");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_audio(0, constant(0.1F, 960, 2), 48000, 2, 40000).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.text(),
            R"({"bytes":7680,"channels":2,"duration_us":20000,"kind":"RawAudio",)"
            R"("pts_us":40000,"sample_rate":48000})");
}

TEST(JsonSerialize, InvalidJsonInATranscriptionIsAnError) {
  NodeHarness h("core::json_serialize");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_text(0, "{}", PacketKind::kCustom).is_ok());
  const Status s = h.push_text(0, "{\"text\": ", PacketKind::kTranscription);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), ErrorCode::kCorruptMedia);
  EXPECT_NE(s.message().find("#2"), std::string::npos) << s.message();
}

TEST(JsonSerialize, LargeDocumentsSpanSeveralPackets) {
  NodeHarness h("core::json_serialize");
  ASSERT_TRUE(h.ok());
  const std::string big(600 * 1024, 'x');
  ASSERT_TRUE(h.push_text(0, big).is_ok());
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_GE(h.packets().size(), 3U);
  EXPECT_EQ(h.text(), "\"" + big + "\"");
}

TEST(JsonSerialize, Params) {
  EXPECT_TRUE(NodeHarness::validate("core::json_serialize", Json::object()).empty());
  EXPECT_FALSE(NodeHarness::validate("core::json_serialize", {{"pretty", "yes"}}).empty());
  EXPECT_FALSE(NodeHarness::validate("core::json_serialize", {{"indent", 2}}).empty());
  const auto schema = NodeRegistry::builtin().find("core::json_serialize")->params->json_schema();
  EXPECT_EQ(schema["properties"]["pretty"]["default"], false);
  EXPECT_EQ(schema["properties"]["newline_delimited"]["default"], false);
}

}  // namespace
}  // namespace skit::testing
