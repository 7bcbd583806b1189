// SPDX-License-Identifier: MPL-2.0
// core::text_chunker: exact chunks for clauses, sentences and words, min_length joining,
// streamed tokens, UTF-8 split across packets, CJK punctuation, invalid input and params.
#include <gtest/gtest.h>

#include "node_harness.hpp"

namespace skit::testing {
namespace {

using Chunks = std::vector<std::string>;

/// Runs the chunker over `pieces` (one packet each) and returns every chunk.
Chunks chunk(const Json& params, const std::vector<std::string>& pieces,
             PacketKind kind = PacketKind::kText) {
  NodeHarness h("core::text_chunker", params);
  EXPECT_TRUE(h.ok()) << h.create_status().to_string();
  for (const auto& p : pieces) {
    const Status s = h.push_text(0, p, kind);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  const Status s = h.finish();
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  for (const auto& p : h.packets()) {
    EXPECT_EQ(p.header.kind, PacketKind::kText);
  }
  return h.texts();
}

TEST(TextChunker, ClausesByDefault) {
  EXPECT_EQ(chunk(Json::object(), {"Hello there, my friend. How are", " you today? I am fine"}),
            (Chunks{"Hello there,", "my friend.", "How are you today?", "I am fine"}));
}

TEST(TextChunker, EmitsAsSoonAsABoundaryIsComplete) {
  NodeHarness h("core::text_chunker");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_text(0, "The quick brown fox jumps.").is_ok());
  EXPECT_TRUE(h.packets().empty());  // "jumps." may be "jumps.com": wait for the space
  ASSERT_TRUE(h.push_text(0, " Over").is_ok());
  EXPECT_EQ(h.texts(), (Chunks{"The quick brown fox jumps."}));
  ASSERT_TRUE(h.finish().is_ok());
  EXPECT_EQ(h.texts(), (Chunks{"The quick brown fox jumps.", "Over"}));
}

TEST(TextChunker, ShortPiecesJoinTheNext) {
  EXPECT_EQ(chunk({{"min_length", 10}}, {"Hi, there. Ok, so this is it; done"}),
            (Chunks{"Hi, there.", "Ok, so this is it;", "done"}));
  EXPECT_EQ(chunk({{"min_length", 0}}, {"Hi, there. Ok"}), (Chunks{"Hi,", "there.", "Ok"}));
}

TEST(TextChunker, SentencesIgnoreClausePunctuation) {
  EXPECT_EQ(chunk({{"split_mode", "sentences"}},
                  {"Well, this is one sentence; really. Is it? Yes!! \"Quoted.\" Then 3.14 is pi."}),
            (Chunks{"Well, this is one sentence; really.", "Is it? Yes!!", "\"Quoted.\" Then 3.14 is pi."}));
}

TEST(TextChunker, ClausesSplitAtSpacedDashesAndColons) {
  EXPECT_EQ(chunk({{"min_length", 5}}, {"First part - second part: a list\u2014not this \u2014 but this"}),
            (Chunks{"First part -", "second part:", "a list\u2014not this \u2014", "but this"}));
}

TEST(TextChunker, Words) {
  EXPECT_EQ(chunk({{"split_mode", "words"}, {"chunk_words", 3}},
                  {"one two th", "ree four  five\nsix seven"}),
            (Chunks{"one two three", "four  five\nsix", "seven"}));
}

TEST(TextChunker, JoinsUtf8SplitAcrossBinaryPackets) {
  const std::string text = "Grüße aus Köln, schön hier. ";
  // Cut inside the two-byte "ü" and "ö".
  const std::size_t cut1 = text.find("\xC3\xBC") + 1;
  const std::size_t cut2 = text.find("\xC3\xB6") + 1;
  EXPECT_EQ(chunk({{"min_length", 5}},
                  {text.substr(0, cut1), text.substr(cut1, cut2 - cut1), text.substr(cut2)},
                  PacketKind::kBinary),
            (Chunks{"Grüße aus Köln,", "schön hier."}));
}

TEST(TextChunker, CjkPunctuationNeedsNoSpace) {
  EXPECT_EQ(chunk({{"min_length", 2}}, {"你好。今天天气很好，我们走吧！"}),
            (Chunks{"你好。", "今天天气很好，", "我们走吧！"}));
  // min_length counts characters, not bytes: "你好。" is 3 characters (9 bytes).
  EXPECT_EQ(chunk({{"min_length", 4}}, {"你好。世界。"}), (Chunks{"你好。世界。"}));
}

TEST(TextChunker, RejectsInvalidUtf8) {
  NodeHarness h("core::text_chunker");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.push_text(0, "abc", PacketKind::kBinary).is_ok());
  const Status s = h.push_text(0, "d\xFF", PacketKind::kBinary);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), ErrorCode::kCorruptMedia);
  EXPECT_NE(s.message().find("byte 4"), std::string::npos) << s.message();

  NodeHarness cut("core::text_chunker");
  ASSERT_TRUE(cut.push_text(0, "ab\xC3", PacketKind::kBinary).is_ok());
  EXPECT_FALSE(cut.finish().is_ok());  // ends inside a character
}

TEST(TextChunker, NothingInNothingOut) {
  EXPECT_TRUE(chunk(Json::object(), {}).empty());
  EXPECT_TRUE(chunk(Json::object(), {"   ", "\n"}).empty());
}

TEST(TextChunker, Params) {
  EXPECT_TRUE(NodeHarness::validate("core::text_chunker", Json::object()).empty());
  EXPECT_FALSE(NodeHarness::validate("core::text_chunker", {{"split_mode", "paragraphs"}}).empty());
  EXPECT_FALSE(NodeHarness::validate("core::text_chunker", {{"chunk_words", 0}}).empty());
  EXPECT_FALSE(NodeHarness::validate("core::text_chunker", {{"min_length", -1}}).empty());
  const auto schema = NodeRegistry::builtin().find("core::text_chunker")->params->json_schema();
  EXPECT_EQ(schema["properties"]["split_mode"]["default"], "clauses");
  EXPECT_EQ(schema["properties"]["min_length"]["default"], 10);
  EXPECT_EQ(schema["properties"]["chunk_words"]["default"], 5);
}

}  // namespace
}  // namespace skit::testing
