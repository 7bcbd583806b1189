// SPDX-License-Identifier: MPL-2.0
// StreamInfo: what a consumer must know about a stream before its first packet (codec,
// rate, channels, codec private data, content type). It travels in-band, as a packet with
// kFlagStreamInfo, ahead of the data (like GStreamer caps events): demuxers and encoders send
// it, decoders and muxers configure themselves from it, and the runtime forwards it through
// Passthrough outputs. Nodes receive it in Node::on_stream_info(), never in process().
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "skit/core/status.hpp"

namespace skit {

struct StreamInfo {
  std::string codec;              // "opus", "aac", "flac", "mp3", "vorbis", "pcm_s16le", ...
  std::uint32_t sample_rate = 0;  // Hz
  std::uint16_t channels = 0;
  std::uint32_t frame_size = 0;      // samples per channel per packet, when constant
  std::int32_t initial_padding = 0;  // decoder delay in samples (Opus pre-skip)
  std::int64_t bit_rate = 0;         // bits per second, 0 = unknown
  std::int64_t duration_us = -1;     // whole stream, when known
  std::string content_type;          // Binary streams: "audio/ogg", "audio/webm", ...
  std::vector<std::byte> extradata;  // codec private data (OpusHead, AudioSpecificConfig)

  [[nodiscard]] std::vector<std::byte> serialize() const;
  static Result<StreamInfo> parse(std::span<const std::byte> bytes);

  bool operator==(const StreamInfo&) const = default;
};

}  // namespace skit
