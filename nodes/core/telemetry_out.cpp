// SPDX-License-Identifier: MPL-2.0
// core::telemetry_out turns data packets (Transcription and Custom by default) into session
// telemetry events, delivered to watchers as WebSocket `nodetelemetry` and gRPC WatchEvents
// events; a sink. See telemetry_events.hpp for how a packet becomes an event.
#include "telemetry_events.hpp"

namespace skit::nodes {

namespace {

struct TelemetryOutParams {
  std::vector<std::string> packet_types = {"Transcription", "Custom"};
  double max_events_per_sec = 100;
  std::vector<std::string> event_type_filter;

  static void describe(ParamSchemaBuilder<TelemetryOutParams>& b) {
    telemetry::describe_common(b);
  }
};

class TelemetryOutNode final : public NodeWithParams<TelemetryOutParams> {
 public:
  static constexpr std::string_view kKind = "core::telemetry_out";
  static constexpr std::string_view kSummary =
      "Turns Transcription/Custom (or Text, Binary) packets into session telemetry events "
      "(nodetelemetry), filtered and rate-limited per event type.";
  static constexpr std::string_view kCategory = "core";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::any()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {}; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    bool unreadable = false;
    auto event = telemetry::event_of(packet, params().packet_types, unreadable);
    if (unreadable && !warned_) {
      warned_ = true;
      ctx.log().warn("a {} packet does not carry a JSON object; skipped",
                     packet_kind_name(packet.header.kind));
    }
    if (event) {
      emitter_.offer(ctx, std::move(*event), params().event_type_filter,
                     params().max_events_per_sec);
    }
    return Status::ok();
  }

  Status finish(NodeContext& ctx) override {
    emitter_.report_drops(ctx, telemetry::Clock::now(), /*final=*/true);
    return Status::ok();
  }

 private:
  telemetry::Emitter emitter_;
  bool warned_ = false;
};
SKIT_REGISTER_NODE(TelemetryOutNode);

}  // namespace
}  // namespace skit::nodes
