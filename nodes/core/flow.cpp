// SPDX-License-Identifier: MPL-2.0
// Flow-control nodes: core::passthrough forwards packets unchanged (zero copy), core::sink
// discards them, core::pacer releases them at media rate.
#include <chrono>

#include "skit/core/registry.hpp"

namespace skit::nodes {

class PassthroughNode final : public NodeWithParams<NoParams> {
 public:
  static constexpr std::string_view kKind = "core::passthrough";
  static constexpr std::string_view kSummary = "Forwards every packet unchanged.";
  static constexpr std::string_view kCategory = "core";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::any()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::passthrough()}}; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    return ctx.output(0).forward(packet);
  }
};
SKIT_REGISTER_NODE(PassthroughNode);

class SinkNode final : public NodeWithParams<NoParams> {
 public:
  static constexpr std::string_view kKind = "core::sink";
  static constexpr std::string_view kSummary = "Discards every packet (terminates side branches).";
  static constexpr std::string_view kCategory = "core";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::any()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {}; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& /*ctx*/, const PacketView& /*packet*/) override {
    return Status::ok();
  }
};
SKIT_REGISTER_NODE(SinkNode);

struct PacerParams {
  double speed = 1.0;
  std::int64_t buffer_size = 16;
  std::int64_t initial_burst_packets = 0;

  static void describe(ParamSchemaBuilder<PacerParams>& b) {
    b.field("speed", &PacerParams::speed, "Playback speed multiplier (2.0 = twice real time).")
        .range(0.01, 1000.0)
        .tunable();
    b.field("buffer_size", &PacerParams::buffer_size,
            "Packets queued ahead of release (the ring depth bounds it).")
        .range(1, 4096);
    b.field("initial_burst_packets", &PacerParams::initial_burst_packets,
            "Packets released at 10x speed first, to pre-fill client buffers.")
        .range(0, 100000);
  }
};

/// Releases packets at media rate: packet k leaves at start + (sum of durations before k) /
/// speed. Timing follows duration_us, or pts when packets carry no duration.
class PacerNode final : public NodeWithParams<PacerParams> {
 public:
  static constexpr std::string_view kKind = "core::pacer";
  static constexpr std::string_view kSummary =
      "Releases packets at their media rate (duration_us or pts), scaled by speed.";
  static constexpr std::string_view kCategory = "core";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::any()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::passthrough()}}; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    using Clock = std::chrono::steady_clock;
    const auto now = Clock::now();
    if (!started_) {
      started_ = true;
      next_release_ = now;
      first_pts_ = packet.header.pts_us;
    }
    if (next_release_ > now && !ctx.sleep_until(next_release_)) {
      return Status(ErrorCode::kCancelled, "stopped");
    }
    SKIT_RETURN_IF_ERROR(ctx.output(0).forward(packet));
    double media_us = static_cast<double>(packet.header.duration_us);
    if (media_us <= 0 && packet.header.pts_us >= 0 && last_pts_ >= 0) {
      media_us = static_cast<double>(packet.header.pts_us - last_pts_);
    }
    last_pts_ = packet.header.pts_us;
    double speed = params().speed;
    if (sent_ < params().initial_burst_packets) {
      speed *= 10.0;
    }
    ++sent_;
    next_release_ += std::chrono::microseconds(static_cast<std::int64_t>(media_us / speed));
    // Do not bank time when the upstream stalls: never schedule in the past.
    next_release_ = std::max(next_release_, now - std::chrono::milliseconds(100));
    return Status::ok();
  }

 private:
  bool started_ = false;
  std::chrono::steady_clock::time_point next_release_{};
  std::int64_t first_pts_ = -1;
  std::int64_t last_pts_ = -1;
  std::int64_t sent_ = 0;
};
SKIT_REGISTER_NODE(PacerNode);

}  // namespace skit::nodes
