// SPDX-License-Identifier: MPL-2.0
// audio::gain scales f32 samples by a linear factor; tunable while running (between packets).
#include <cstring>

#include "skit/core/registry.hpp"

namespace skit::nodes {

struct GainParams {
  double gain = 1.0;

  static void describe(ParamSchemaBuilder<GainParams>& b) {
    b.field("gain", &GainParams::gain,
            "Linear gain (0 mutes, 0.5 is -6 dB, 1 unity, 2.0 is +6 dB).")
        .range(0.0, 4.0)
        .tunable();
  }
};

class GainNode final : public NodeWithParams<GainParams> {
 public:
  static constexpr std::string_view kKind = "audio::gain";
  static constexpr std::string_view kSummary = "Scales audio by a linear gain; tunable live.";
  static constexpr std::string_view kCategory = "audio/filters";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::raw_audio()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::raw_audio()}}; }
  static std::size_t max_packet_bytes(const Params& /*p*/) { return 128 * 1024; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    auto& out = ctx.output(0);
    const auto in = packet.samples();
    if (packet.data.size() > out.max_packet_bytes()) {
      return Status(ErrorCode::kResourceExhausted, "audio packet larger than 128 KiB");
    }
    auto buffer = out.loan(packet.data.size());
    if (!buffer) {
      return buffer.status();
    }
    // The input slot may be shared with other consumers: write the result to our own slot.
    auto* dst = reinterpret_cast<float*>(buffer->data());
    const auto g = static_cast<float>(params().gain);
    for (std::size_t i = 0; i < in.size(); ++i) {
      dst[i] = in[i] * g;
    }
    return out.publish(packet.data.size(), packet.header);
  }
};
SKIT_REGISTER_NODE(GainNode);

}  // namespace skit::nodes
