// SPDX-License-Identifier: MPL-2.0
// Pin type compatibility (can_connect) and the JSON / text shapes of packet types.
#include "skit/core/packet_type.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace skit {
namespace {

using nlohmann::json;

PacketType raw_audio(std::uint32_t rate, std::uint16_t channels, SampleFormat format) {
  PacketType t = PacketType::raw_audio(rate, channels);
  t.sample_format = format;
  return t;
}

PacketType custom(std::string type_id) {
  return {.kind = PacketKind::kCustom, .type_id = std::move(type_id)};
}

TEST(PacketTypeCanConnect, RawAudioWithEqualFormatsConnects) {
  EXPECT_TRUE(can_connect(PacketType::raw_audio(48000, 2), PacketType::raw_audio(48000, 2)));
}

TEST(PacketTypeCanConnect, RawAudioSampleRateZeroIsAWildcardOnEitherSide) {
  EXPECT_TRUE(can_connect(PacketType::raw_audio(0, 2), PacketType::raw_audio(48000, 2)));
  EXPECT_TRUE(can_connect(PacketType::raw_audio(44100, 2), PacketType::raw_audio(0, 2)));
}

TEST(PacketTypeCanConnect, RawAudioChannelsZeroIsAWildcardOnEitherSide) {
  EXPECT_TRUE(can_connect(PacketType::raw_audio(48000, 0), PacketType::raw_audio(48000, 1)));
  EXPECT_TRUE(can_connect(PacketType::raw_audio(48000, 6), PacketType::raw_audio(48000, 0)));
}

TEST(PacketTypeCanConnect, RawAudioFullyWildcardAcceptsAnyRateAndChannels) {
  EXPECT_TRUE(can_connect(PacketType::raw_audio(16000, 1), PacketType::raw_audio()));
  EXPECT_TRUE(can_connect(PacketType::raw_audio(), PacketType::raw_audio(96000, 8)));
}

TEST(PacketTypeCanConnect, RawAudioDifferentSampleRatesDoNotConnect) {
  EXPECT_FALSE(can_connect(PacketType::raw_audio(44100, 2), PacketType::raw_audio(48000, 2)));
}

TEST(PacketTypeCanConnect, RawAudioDifferentChannelCountsDoNotConnect) {
  EXPECT_FALSE(can_connect(PacketType::raw_audio(48000, 1), PacketType::raw_audio(48000, 2)));
}

TEST(PacketTypeCanConnect, RawAudioSampleFormatMustMatchExactlyEvenWithWildcardRate) {
  EXPECT_FALSE(can_connect(raw_audio(48000, 2, SampleFormat::kS16Le),
                           raw_audio(48000, 2, SampleFormat::kF32)));
  EXPECT_FALSE(
      can_connect(raw_audio(0, 0, SampleFormat::kF32), raw_audio(0, 0, SampleFormat::kS16Le)));
  EXPECT_TRUE(can_connect(raw_audio(0, 0, SampleFormat::kS16Le),
                          raw_audio(48000, 2, SampleFormat::kS16Le)));
}

TEST(PacketTypeCanConnect, AnyOnTheAcceptingSideTakesEveryKind) {
  for (const PacketType& produced :
       {PacketType::binary(), PacketType::text(), PacketType::raw_audio(48000, 2),
        PacketType::encoded_audio("opus"), custom("x")}) {
    EXPECT_TRUE(can_connect(produced, PacketType::any())) << to_string(produced);
  }
}

TEST(PacketTypeCanConnect, AnyOnTheProducingSideFeedsEveryKind) {
  for (const PacketType& accepted :
       {PacketType::binary(), PacketType::text(), PacketType::raw_audio(48000, 2),
        PacketType::encoded_audio("opus"), custom("x")}) {
    EXPECT_TRUE(can_connect(PacketType::any(), accepted)) << to_string(accepted);
  }
}

TEST(PacketTypeCanConnect, BinaryAndTextDoNotConnectEitherWay) {
  EXPECT_FALSE(can_connect(PacketType::binary(), PacketType::text()));
  EXPECT_FALSE(can_connect(PacketType::text(), PacketType::binary()));
  EXPECT_TRUE(can_connect(PacketType::binary(), PacketType::binary()));
  EXPECT_TRUE(can_connect(PacketType::text(), PacketType::text()));
}

TEST(PacketTypeCanConnect, BinaryDoesNotConnectToRawAudio) {
  EXPECT_FALSE(can_connect(PacketType::binary(), PacketType::raw_audio()));
  EXPECT_FALSE(can_connect(PacketType::raw_audio(), PacketType::binary()));
}

TEST(PacketTypeCanConnect, EncodedAudioEmptyCodecIsAWildcardOnEitherSide) {
  EXPECT_TRUE(can_connect(PacketType::encoded_audio(), PacketType::encoded_audio("opus")));
  EXPECT_TRUE(can_connect(PacketType::encoded_audio("aac"), PacketType::encoded_audio()));
  EXPECT_TRUE(can_connect(PacketType::encoded_audio("opus"), PacketType::encoded_audio("opus")));
}

TEST(PacketTypeCanConnect, EncodedAudioDifferentCodecsDoNotConnect) {
  EXPECT_FALSE(can_connect(PacketType::encoded_audio("opus"), PacketType::encoded_audio("aac")));
}

TEST(PacketTypeCanConnect, EncodedAudioDoesNotConnectToRawAudio) {
  EXPECT_FALSE(can_connect(PacketType::encoded_audio(), PacketType::raw_audio()));
}

TEST(PacketTypeCanConnect, CustomTypesConnectOnlyWithTheSameTypeId) {
  EXPECT_TRUE(can_connect(custom("a.b"), custom("a.b")));
  EXPECT_FALSE(can_connect(custom("a.b"), custom("a.c")));
}

TEST(PacketTypeCanConnectAny, ConnectsWhenOneAcceptedTypeMatches) {
  EXPECT_TRUE(can_connect_any(PacketType::text(), {PacketType::binary(), PacketType::text()}));
  EXPECT_FALSE(
      can_connect_any(PacketType::text(), {PacketType::binary(), PacketType::raw_audio()}));
}

TEST(PacketTypeCanConnectAny, AnEmptyAcceptListConnectsNothing) {
  EXPECT_FALSE(can_connect_any(PacketType::binary(), {}));
}

TEST(PacketTypeToJson, SimpleKindsAreBareStrings) {
  EXPECT_EQ(to_json(PacketType::binary()), json("Binary"));
  EXPECT_EQ(to_json(PacketType::text()), json("Text"));
  EXPECT_EQ(to_json(PacketType::any()), json("Any"));
  EXPECT_EQ(to_json(PacketType::passthrough()), json("Passthrough"));
}

TEST(PacketTypeToJson, RawAudioIsAnObjectKeyedByKindWithItsFields) {
  const json j = to_json(raw_audio(48000, 2, SampleFormat::kS16Le));
  ASSERT_TRUE(j.is_object());
  ASSERT_EQ(j.size(), 1U);
  EXPECT_EQ(j, json::parse(R"({"RawAudio": {"sample_rate": 48000, "channels": 2,
                                            "sample_format": "S16Le"}})"));
}

TEST(PacketTypeToJson, RawAudioWildcardsAreZeroAndFormatDefaultsToF32) {
  EXPECT_EQ(to_json(PacketType::raw_audio()),
            json::parse(R"({"RawAudio": {"sample_rate": 0, "channels": 0,
                                         "sample_format": "F32"}})"));
}

TEST(PacketTypeToJson, EncodedAudioCarriesItsCodecOrNullForAny) {
  EXPECT_EQ(to_json(PacketType::encoded_audio("opus")),
            json::parse(R"({"EncodedAudio": {"codec": "opus"}})"));
  EXPECT_EQ(to_json(PacketType::encoded_audio()),
            json::parse(R"({"EncodedAudio": {"codec": null}})"));
}

TEST(PacketTypeToJson, CustomCarriesItsTypeId) {
  EXPECT_EQ(to_json(custom("skit.meta")), json::parse(R"({"Custom": {"type_id": "skit.meta"}})"));
}

TEST(PacketTypeToString, NamesKindAndFormatWithStarsForWildcards) {
  EXPECT_EQ(to_string(PacketType::binary()), "Binary");
  EXPECT_EQ(to_string(PacketType::raw_audio(48000, 2)), "RawAudio(48000 Hz, 2 ch, f32)");
  EXPECT_EQ(to_string(PacketType::raw_audio()), "RawAudio(* Hz, * ch, f32)");
  EXPECT_EQ(to_string(PacketType::encoded_audio("opus")), "EncodedAudio(opus)");
  EXPECT_EQ(to_string(PacketType::encoded_audio()), "EncodedAudio(*)");
}

}  // namespace
}  // namespace skit
