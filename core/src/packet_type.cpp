// SPDX-License-Identifier: MPL-2.0
#include <nlohmann/json.hpp>
#include <sstream>

#include "skit/core/packet_type.hpp"
#include "skit/core/pins.hpp"

namespace skit {

std::string_view packet_kind_name(PacketKind kind) {
  switch (kind) {
    case PacketKind::kAny: return "Any";
    case PacketKind::kPassthrough: return "Passthrough";
    case PacketKind::kRawAudio: return "RawAudio";
    case PacketKind::kEncodedAudio: return "EncodedAudio";
    case PacketKind::kRawVideo: return "RawVideo";
    case PacketKind::kEncodedVideo: return "EncodedVideo";
    case PacketKind::kText: return "Text";
    case PacketKind::kTranscription: return "Transcription";
    case PacketKind::kCustom: return "Custom";
    case PacketKind::kBinary: return "Binary";
  }
  return "?";
}

std::string_view connection_mode_name(ConnectionMode mode) {
  return mode == ConnectionMode::kReliable ? "reliable" : "best_effort";
}

namespace {
std::string_view pixel_format_name(PixelFormat f) {
  switch (f) {
    case PixelFormat::kAny: return "*";
    case PixelFormat::kI420: return "I420";
    case PixelFormat::kNv12: return "Nv12";
    case PixelFormat::kRgba8: return "Rgba8";
  }
  return "?";
}
}  // namespace

std::string to_string(const PacketType& t) {
  std::ostringstream out;
  out << packet_kind_name(t.kind);
  switch (t.kind) {
    case PacketKind::kRawAudio:
      out << '(' << (t.sample_rate ? std::to_string(t.sample_rate) + " Hz" : std::string("* Hz"))
          << ", " << (t.channels ? std::to_string(t.channels) + " ch" : std::string("* ch")) << ", "
          << (t.sample_format == SampleFormat::kF32 ? "f32" : "s16le") << ')';
      break;
    case PacketKind::kEncodedAudio:
    case PacketKind::kEncodedVideo:
      out << '(' << (t.codec.empty() ? "*" : t.codec) << ')';
      break;
    case PacketKind::kRawVideo:
      out << '(' << (t.width ? std::to_string(t.width) : "*") << 'x'
          << (t.height ? std::to_string(t.height) : "*") << ", "
          << pixel_format_name(t.pixel_format) << ')';
      break;
    case PacketKind::kCustom:
      out << '(' << t.type_id << ')';
      break;
    default:
      break;
  }
  return out.str();
}

nlohmann::json to_json(const PacketType& t) {
  using nlohmann::json;
  switch (t.kind) {
    case PacketKind::kRawAudio:
      return json{{"RawAudio",
                   {{"sample_rate", t.sample_rate},
                    {"channels", t.channels},
                    {"sample_format", t.sample_format == SampleFormat::kF32 ? "F32" : "S16Le"}}}};
    case PacketKind::kEncodedAudio:
      return json{{"EncodedAudio", {{"codec", t.codec.empty() ? json() : json(t.codec)}}}};
    case PacketKind::kEncodedVideo:
      return json{{"EncodedVideo", {{"codec", t.codec.empty() ? json() : json(t.codec)}}}};
    case PacketKind::kRawVideo:
      return json{{"RawVideo",
                   {{"width", t.width ? json(t.width) : json()},
                    {"height", t.height ? json(t.height) : json()},
                    {"pixel_format", pixel_format_name(t.pixel_format)}}}};
    case PacketKind::kCustom:
      return json{{"Custom", {{"type_id", t.type_id}}}};
    default:
      return json(packet_kind_name(t.kind));
  }
}

bool can_connect(const PacketType& produced, const PacketType& accepted) {
  if (produced.kind == PacketKind::kAny || accepted.kind == PacketKind::kAny) {
    return true;
  }
  if (produced.kind != accepted.kind) {
    return false;
  }
  auto wild_eq = [](auto a, auto b, auto wildcard) { return a == wildcard || b == wildcard || a == b; };
  switch (produced.kind) {
    case PacketKind::kRawAudio:
      return wild_eq(produced.sample_rate, accepted.sample_rate, 0U) &&
             wild_eq(produced.channels, accepted.channels, std::uint16_t{0}) &&
             produced.sample_format == accepted.sample_format;
    case PacketKind::kEncodedAudio:
    case PacketKind::kEncodedVideo:
      return produced.codec.empty() || accepted.codec.empty() || produced.codec == accepted.codec;
    case PacketKind::kRawVideo:
      return wild_eq(produced.width, accepted.width, 0U) &&
             wild_eq(produced.height, accepted.height, 0U) &&
             wild_eq(produced.pixel_format, accepted.pixel_format, PixelFormat::kAny);
    case PacketKind::kCustom:
      return produced.type_id == accepted.type_id;
    default:
      return true;
  }
}

bool can_connect_any(const PacketType& produced, const std::vector<PacketType>& accepted) {
  for (const auto& a : accepted) {
    if (can_connect(produced, a)) {
      return true;
    }
  }
  return false;
}

nlohmann::json packet_schema_json() {
  using nlohmann::json;
  auto exact = json{{"kind", "exact"}};
  auto fields = [](std::initializer_list<std::pair<const char*, json>> list) {
    json out = json::array();
    for (const auto& [name, wildcard] : list) {
      json f{{"name", name}};
      if (!wildcard.is_null()) {
        f["wildcard_value"] = wildcard;
      }
      out.push_back(f);
    }
    return json{{"kind", "structfieldwildcard"}, {"fields", out}};
  };
  return json::array({
      {{"id", "RawAudio"}, {"label", "Raw Audio"}, {"color", "#f39c12"},
       {"display_template", "Raw Audio ({sample_rate|*} Hz, {channels|*} ch, {sample_format})"},
       {"compatibility", fields({{"sample_rate", 0}, {"channels", 0}, {"sample_format", json()}})}},
      {{"id", "EncodedAudio"}, {"label", "Encoded Audio"}, {"color", "#ff6b6b"},
       {"display_template", "Encoded Audio ({codec|*})"},
       {"compatibility", fields({{"codec", json()}})}},
      {{"id", "RawVideo"}, {"label", "Raw Video"}, {"color", "#1abc9c"},
       {"display_template", "Raw Video ({width|*}x{height|*}, {pixel_format})"},
       {"compatibility", fields({{"width", json()}, {"height", json()}, {"pixel_format", json()}})}},
      {{"id", "EncodedVideo"}, {"label", "Encoded Video"}, {"color", "#2980b9"},
       {"compatibility", fields({{"codec", json()}})}},
      {{"id", "Text"}, {"label", "Text"}, {"color", "#4ecdc4"}, {"compatibility", exact}},
      {{"id", "Transcription"}, {"label", "Transcription"}, {"color", "#9b59b6"},
       {"compatibility", exact}},
      {{"id", "Custom"}, {"label", "Custom"}, {"color", "#e67e22"},
       {"compatibility", fields({{"type_id", json()}})}},
      {{"id", "Binary"}, {"label", "Binary"}, {"color", "#45b7d1"}, {"compatibility", exact}},
      {{"id", "Any"}, {"label", "Any"}, {"color", "#96ceb4"}, {"compatibility", {{"kind", "any"}}}},
  });
}

}  // namespace skit
