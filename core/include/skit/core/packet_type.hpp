// SPDX-License-Identifier: MPL-2.0
// The pin type system: what a pin produces or accepts, and whether two pins may be connected.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace skit {

/// Packet kinds, named as StreamKit names them in its schema API.
enum class PacketKind : std::uint8_t {
  kAny,            // type-system only: matches anything
  kPassthrough,    // output type equals the (resolved) input type
  kRawAudio,       // interleaved samples with rate/channels
  kEncodedAudio,   // codec packets (Opus, AAC, ...)
  kRawVideo,       // frame descriptors (I420/NV12/RGBA8)
  kEncodedVideo,
  kText,
  kTranscription,  // JSON transcription object
  kCustom,         // JSON with a type_id
  kBinary,         // opaque bytes
};

enum class SampleFormat : std::uint8_t { kF32, kS16Le };
enum class PixelFormat : std::uint8_t { kAny, kI420, kNv12, kRgba8 };

/// A packet type with its format fields; zero / empty fields are wildcards.
struct PacketType {
  PacketKind kind = PacketKind::kAny;
  std::uint32_t sample_rate = 0;  // RawAudio; 0 = any
  std::uint16_t channels = 0;     // RawAudio; 0 = any
  SampleFormat sample_format = SampleFormat::kF32;
  std::string codec;              // EncodedAudio/EncodedVideo: "opus", "aac", "vp9"...; "" = any
  PixelFormat pixel_format = PixelFormat::kAny;
  std::uint32_t width = 0;        // RawVideo; 0 = any
  std::uint32_t height = 0;
  std::string type_id;            // Custom

  static PacketType any() { return {}; }
  static PacketType passthrough() { return {.kind = PacketKind::kPassthrough}; }
  static PacketType binary() { return {.kind = PacketKind::kBinary}; }
  static PacketType text() { return {.kind = PacketKind::kText}; }
  static PacketType raw_audio(std::uint32_t rate = 0, std::uint16_t channels = 0) {
    return {.kind = PacketKind::kRawAudio, .sample_rate = rate, .channels = channels};
  }
  static PacketType encoded_audio(std::string codec = {}) {
    return {.kind = PacketKind::kEncodedAudio, .codec = std::move(codec)};
  }

  bool operator==(const PacketType&) const = default;
};

std::string_view packet_kind_name(PacketKind kind);
/// Human form, e.g. "RawAudio(48000 Hz, 2 ch, f32)" or "EncodedAudio(opus)".
std::string to_string(const PacketType& type);
/// StreamKit's JSON shape: "Binary" or {"RawAudio": {...}}.
nlohmann::json to_json(const PacketType& type);

/// True when a packet of type `produced` may flow into a pin accepting `accepted`.
bool can_connect(const PacketType& produced, const PacketType& accepted);
bool can_connect_any(const PacketType& produced, const std::vector<PacketType>& accepted);

/// The packet registry served by the schema API (id, label, colour, compatibility rule).
nlohmann::json packet_schema_json();

}  // namespace skit
