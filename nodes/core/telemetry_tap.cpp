// SPDX-License-Identifier: MPL-2.0
// core::telemetry_tap: a passthrough (packets forwarded without a copy) that also emits
// telemetry events, as core::telemetry_out does, and audio levels: every
// audio_sample_interval_ms of media, an `audio.level` event with the window's RMS and peak in
// dBFS (20 log10 of the linear value, full scale 1.0; silence is floored at -120 dBFS).
#include <cmath>

#include "telemetry_events.hpp"

namespace skit::nodes {

namespace {

constexpr double kFloorDbfs = -120.0;

double dbfs(double linear) {
  return linear > 0 ? std::max(kFloorDbfs, 20.0 * std::log10(linear)) : kFloorDbfs;
}

struct TelemetryTapParams {
  std::vector<std::string> packet_types = {"Transcription", "Custom"};
  double max_events_per_sec = 100;
  std::vector<std::string> event_type_filter;
  std::int64_t audio_sample_interval_ms = 1000;

  static void describe(ParamSchemaBuilder<TelemetryTapParams>& b) {
    telemetry::describe_common(b);
    b.field("audio_sample_interval_ms", &TelemetryTapParams::audio_sample_interval_ms,
            "Media time per audio.level event (RMS and peak in dBFS of RawAudio over the "
            "window); 0 = no audio levels.")
        .range(0, 3600000)
        .tunable();
  }
};

class TelemetryTapNode final : public NodeWithParams<TelemetryTapParams> {
 public:
  static constexpr std::string_view kKind = "core::telemetry_tap";
  static constexpr std::string_view kSummary =
      "Passthrough that emits telemetry events for the packets it sees (as telemetry_out) "
      "and audio levels (RMS/peak dBFS every audio_sample_interval_ms).";
  static constexpr std::string_view kCategory = "core";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::any()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::passthrough()}}; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    // The packet goes on first: telemetry never delays the media.
    SKIT_RETURN_IF_ERROR(ctx.output(0).forward(packet));
    if (packet.header.kind == PacketKind::kRawAudio) {
      measure(ctx, packet);
      return Status::ok();
    }
    bool unreadable = false;
    auto event = telemetry::event_of(packet, params().packet_types, unreadable);
    if (unreadable && !warned_) {
      warned_ = true;
      ctx.log().warn("a {} packet does not carry a JSON object; no event",
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
  /// Adds a RawAudio packet to the level window; emits audio.level once the window holds
  /// audio_sample_interval_ms of media (by sample count, so the cadence follows the media,
  /// whatever the packet size).
  void measure(NodeContext& ctx, const PacketView& packet) {
    const std::int64_t interval_ms = params().audio_sample_interval_ms;
    const std::uint32_t rate = packet.header.sample_rate;
    const std::uint16_t channels = packet.header.channels;
    if (interval_ms <= 0 || rate == 0 || channels == 0) {
      return;
    }
    if (rate != rate_ || channels != channels_) {
      reset_window();
      rate_ = rate;
      channels_ = channels;
    }
    if (window_frames_ == 0) {
      window_pts_us_ = packet.header.pts_us;
    }
    const auto samples = packet.samples();
    for (const float v : samples) {
      const double x = std::isfinite(v) ? v : 0.0;
      sum_squares_ += x * x;
      peak_ = std::max(peak_, std::abs(x));
    }
    window_samples_ += samples.size();
    window_frames_ += samples.size() / channels;
    const std::uint64_t needed = static_cast<std::uint64_t>(interval_ms) * rate / 1000;
    if (window_frames_ < std::max<std::uint64_t>(needed, 1)) {
      return;
    }
    const double rms = window_samples_ > 0
                           ? std::sqrt(sum_squares_ / static_cast<double>(window_samples_))
                           : 0.0;
    Json data{{"rms_dbfs", dbfs(rms)},
              {"peak_dbfs", dbfs(peak_)},
              {"rms", rms},
              {"peak", peak_},
              {"sample_rate", rate},
              {"channels", channels},
              {"window_ms", static_cast<double>(window_frames_) * 1000.0 / rate}};
    if (window_pts_us_ >= 0) {
      data["pts_us"] = window_pts_us_;
    }
    reset_window();
    emitter_.offer(ctx, telemetry::Event{"audio.level", std::move(data)},
                   params().event_type_filter, params().max_events_per_sec);
  }

  void reset_window() {
    sum_squares_ = 0;
    peak_ = 0;
    window_samples_ = 0;
    window_frames_ = 0;
    window_pts_us_ = -1;
  }

  telemetry::Emitter emitter_;
  bool warned_ = false;
  std::uint32_t rate_ = 0;
  std::uint16_t channels_ = 0;
  double sum_squares_ = 0;
  double peak_ = 0;
  std::uint64_t window_samples_ = 0;
  std::uint64_t window_frames_ = 0;
  std::int64_t window_pts_us_ = -1;
};
SKIT_REGISTER_NODE(TelemetryTapNode);

}  // namespace
}  // namespace skit::nodes
