// SPDX-License-Identifier: MPL-2.0
// core::json_serialize turns packets into JSON bytes (Binary), e.g. to write transcriptions to
// a file or an HTTP response:
//   Text                 -> a JSON string ("hello" -> "\"hello\"")
//   Transcription/Custom -> their JSON payload, re-serialized (compact or pretty)
//   Binary               -> its payload re-serialized if it is JSON, else a JSON string if it
//                           is UTF-8 text
//   audio/video          -> a small object describing the packet (kind, pts_us, duration_us,
//                           sample_rate, channels, bytes), never the samples
// newline_delimited appends '\n' to each document (NDJSON). A document larger than one output
// slot is split across consecutive Binary packets (a byte stream).
#include <string>

#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

struct JsonSerializeParams {
  bool pretty = false;
  bool newline_delimited = false;

  static void describe(ParamSchemaBuilder<JsonSerializeParams>& b) {
    b.field("pretty", &JsonSerializeParams::pretty,
            "Pretty-print with two-space indentation (default: compact, one line).");
    b.field("newline_delimited", &JsonSerializeParams::newline_delimited,
            "Append a newline after each document (NDJSON).");
  }
};

class JsonSerializeNode final : public NodeWithParams<JsonSerializeParams> {
 public:
  static constexpr std::string_view kKind = "core::json_serialize";
  static constexpr std::string_view kSummary =
      "Text/Transcription/Custom packets -> JSON bytes (pretty or compact, optional NDJSON).";
  static constexpr std::string_view kCategory = "core";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::any()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::binary()}}; }
  static std::size_t max_packet_bytes(const Params& /*p*/) { return 256 * 1024; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    ++packets_;
    const std::string_view payload(reinterpret_cast<const char*>(packet.data.data()),
                                   packet.data.size());
    Json doc;
    switch (packet.header.kind) {
      case PacketKind::kText:
        doc = std::string(payload);
        break;
      case PacketKind::kTranscription:
      case PacketKind::kCustom: {
        doc = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
        if (doc.is_discarded()) {
          return Status(ErrorCode::kCorruptMedia,
                        "packet #" + std::to_string(packets_) + " (" +
                            std::string(packet_kind_name(packet.header.kind)) +
                            ") does not carry valid JSON");
        }
        break;
      }
      case PacketKind::kBinary: {
        doc = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
        if (doc.is_discarded()) {
          doc = std::string(payload);  // not JSON: a string (invalid UTF-8 becomes U+FFFD)
        }
        break;
      }
      default:
        doc = Json{{"kind", packet_kind_name(packet.header.kind)},
                   {"pts_us", packet.header.pts_us},
                   {"duration_us", packet.header.duration_us},
                   {"bytes", packet.data.size()}};
        if (packet.header.kind == PacketKind::kRawAudio) {
          doc["sample_rate"] = packet.header.sample_rate;
          doc["channels"] = packet.header.channels;
        }
        break;
    }
    std::string text = doc.dump(params().pretty ? 2 : -1, ' ', /*ensure_ascii=*/false,
                                Json::error_handler_t::replace);
    if (params().newline_delimited) {
      text += '\n';
    }
    auto& out = ctx.output(0);
    std::string_view rest = text;
    const std::size_t max = std::max<std::size_t>(out.max_packet_bytes(), 1);
    while (!rest.empty()) {
      const std::string_view piece = rest.substr(0, max);
      SKIT_RETURN_IF_ERROR(out.write(std::as_bytes(std::span<const char>(piece.data(), piece.size())),
                                     PacketHeader{.kind = PacketKind::kBinary,
                                                  .pts_us = packet.header.pts_us,
                                                  .duration_us = packet.header.duration_us}));
      rest.remove_prefix(piece.size());
    }
    return Status::ok();
  }

 private:
  std::uint64_t packets_ = 0;
};
SKIT_REGISTER_NODE(JsonSerializeNode);

}  // namespace
}  // namespace skit::nodes
