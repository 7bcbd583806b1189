// SPDX-License-Identifier: MPL-2.0
// audio::pacer releases RawAudio frames in real time (scaled by speed), for consumers that
// expect a live stream (MoQ, WebRTC, HTTP live). Packets are forwarded without copying, at
// start + (audio released so far) / speed, via ctx.sleep_until (which a stop interrupts).
//
// With generate_silence the output stays continuous:
//   * a gap in the input's timestamps is filled with 20 ms silence frames, each released at
//     its real-time slot;
//   * when the input stalls (a packet arrives after its slot has passed by more than a
//     frame), the pacer first sends the silence the stall lasted — at most buffer_size
//     frames, released at once to catch up, as StreamKit's pacer does with missed ticks — and
//     shifts later timestamps by it, so the output timeline keeps pace with the wall clock.
// The node API calls a node only when a packet arrives, so silence for a stall goes out when
// the input resumes, not during the stall (see docs: no timer hook in the runtime yet).
// initial_sample_rate/initial_channels give the format of the silence that covers the time
// between start-up (prepare) and the first packet.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include <spdlog/spdlog.h>

#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

using Clock = std::chrono::steady_clock;

/// Timestamp gaps up to this are rounding, not silence.
constexpr std::int64_t kGapToleranceUs = 2000;

struct AudioPacerParams {
  double speed = 1.0;
  std::int64_t buffer_size = 32;
  bool generate_silence = true;
  std::int64_t initial_sample_rate = 0;
  std::int64_t initial_channels = 0;

  static void describe(ParamSchemaBuilder<AudioPacerParams>& b) {
    b.field("speed", &AudioPacerParams::speed,
            "Playback speed multiplier (1.0 = real time, 2.0 = twice as fast).")
        .range(0.01, 1000.0)
        .tunable();
    b.field("buffer_size", &AudioPacerParams::buffer_size,
            "Most 20 ms silence frames sent at once to catch up after an input stall (about "
            "640 ms at the default 32); a longer stall is not made up. Frames waiting for "
            "release queue in the input connection.")
        .range(1, 4096);
    b.field("generate_silence", &AudioPacerParams::generate_silence,
            "Keep the output continuous: fill timestamp gaps and input stalls with silence "
            "frames.");
    b.field("initial_sample_rate", &AudioPacerParams::initial_sample_rate,
            "Sample rate of the silence that covers start-up before the first input frame "
            "(0 = none; set together with initial_channels).")
        .range(0, 192000);
    b.field("initial_channels", &AudioPacerParams::initial_channels,
            "Channels of that start-up silence (0 = none; set together with "
            "initial_sample_rate).")
        .range(0, 8);
  }

  [[nodiscard]] Status validate() const {
    if ((initial_sample_rate == 0) != (initial_channels == 0)) {
      return Status(ErrorCode::kInvalidParam,
                    "initial_sample_rate and initial_channels must be set together",
                    {.param = initial_sample_rate == 0 ? "initial_sample_rate" : "initial_channels"});
    }
    return Status::ok();
  }
};

class AudioPacerNode final : public NodeWithParams<AudioPacerParams> {
 public:
  static constexpr std::string_view kKind = "audio::pacer";
  static constexpr std::string_view kSummary =
      "Releases RawAudio in real time (scaled by speed); fills gaps and stalls with silence.";
  static constexpr std::string_view kCategory = "audio/filters";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::raw_audio()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::passthrough()}}; }
  static std::size_t max_packet_bytes(const Params& /*p*/) { return 128 * 1024; }

  using NodeWithParams::NodeWithParams;

  Status prepare(NodeContext& /*ctx*/) override {
    prepared_at_ = Clock::now();
    return Status::ok();
  }

  Status process(NodeContext& ctx, const PacketView& packet) override {
    const PacketHeader& h = packet.header;
    if (h.kind != PacketKind::kRawAudio || h.sample_rate == 0 || h.channels == 0) {
      return Status(ErrorCode::kInvalidArgument,
                    "expected RawAudio with a sample rate and channel count");
    }
    if (packet.data.size() % (sizeof(float) * h.channels) != 0) {
      return Status(ErrorCode::kCorruptMedia,
                    "packet of " + std::to_string(packet.data.size()) +
                        " bytes is not whole f32 frames of " + std::to_string(h.channels) +
                        " channels");
    }
    const bool silence = params().generate_silence;
    if (!started_) {
      started_ = true;
      next_release_ = Clock::now();
      out_end_us_ = std::max<std::int64_t>(h.pts_us, 0);
      if (params().initial_sample_rate > 0 && silence && prepared_at_) {
        rate_ = static_cast<std::uint32_t>(params().initial_sample_rate);
        channels_ = static_cast<std::uint16_t>(params().initial_channels);
        next_release_ = *prepared_at_;  // the time since start-up is a stall to cover
      }
    }
    if (rate_ == 0) {
      rate_ = h.sample_rate;
      channels_ = h.channels;
    }

    // A gap in the input's timestamps: silence, released in real time.
    if (silence && h.pts_us >= 0 && last_end_pts_ >= 0 &&
        h.pts_us - last_end_pts_ > kGapToleranceUs) {
      SKIT_RETURN_IF_ERROR(send_silence(ctx, h.pts_us - last_end_pts_, /*paced=*/true));
    }

    // An input stall: the output ran dry for `late`.
    const auto now = Clock::now();
    const double speed = params().speed;
    if (silence) {
      const auto late = std::chrono::duration<double, std::micro>(now - next_release_).count();
      const double frame_us = silence_frame_us();
      if (late * speed > frame_us) {
        const auto frames = std::min<std::int64_t>(static_cast<std::int64_t>(late * speed / frame_us),
                                                   params().buffer_size);
        const std::int64_t before = out_end_us_;
        SKIT_RETURN_IF_ERROR(send_silence(ctx, static_cast<std::int64_t>(frames * frame_us),
                                          /*paced=*/false));
        shift_us_ += out_end_us_ - before;
        ++stalls_;
        if (stalls_ == 1 || stalls_ % 100 == 0) {
          ctx.log().info("input stalled ({} so far); sent {} ms of silence", stalls_,
                         (out_end_us_ - before) / 1000);
        }
        if (next_release_ < now - std::chrono::microseconds(static_cast<std::int64_t>(frame_us / speed))) {
          next_release_ = now;  // longer than buffer_size frames: the rest is not made up
        }
      }
    } else if (next_release_ < now - std::chrono::milliseconds(100)) {
      next_release_ = now - std::chrono::milliseconds(100);  // do not bank time in a stall
    }

    if (next_release_ > Clock::now() && !ctx.sleep_until(next_release_)) {
      return Status(ErrorCode::kCancelled, "stopped");
    }
    PacketView out = packet;
    if (h.pts_us >= 0) {
      out.header.pts_us = h.pts_us + shift_us_;
    }
    SKIT_RETURN_IF_ERROR(ctx.output(0).forward(out));
    const std::size_t frames = packet.data.size() / sizeof(float) / h.channels;
    const double media_us = static_cast<double>(frames) * 1e6 / h.sample_rate;
    next_release_ += to_duration(media_us / params().speed);
    const auto duration_us = static_cast<std::int64_t>(std::llround(media_us));
    last_end_pts_ = h.pts_us >= 0 ? h.pts_us + duration_us : -1;
    out_end_us_ = (h.pts_us >= 0 ? out.header.pts_us : out_end_us_) + duration_us;
    rate_ = h.sample_rate;
    channels_ = h.channels;
    return Status::ok();
  }

 private:
  static Clock::duration to_duration(double us) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::micro>(us));
  }

  /// Duration of one 20 ms silence frame at the current rate (whole frames).
  [[nodiscard]] double silence_frame_us() const {
    return static_cast<double>(std::max<std::uint32_t>(rate_ / 50, 1)) * 1e6 / rate_;
  }

  /// Sends `total_us` of silence in 20 ms frames at the current format; `paced` releases each
  /// at its real-time slot, otherwise they go at once (their slots have passed).
  Status send_silence(NodeContext& ctx, std::int64_t total_us, bool paced) {
    auto& out = ctx.output(0);
    const std::size_t max_frames =
        std::max<std::size_t>(out.max_packet_bytes() / sizeof(float) / channels_, 1);
    const auto frame = std::min<std::size_t>(std::max<std::uint32_t>(rate_ / 50, 1), max_frames);
    auto left = static_cast<std::int64_t>(
        std::llround(static_cast<double>(total_us) * rate_ / 1e6));  // frames
    while (left > 0) {
      const auto n = std::min<std::size_t>(frame, static_cast<std::size_t>(left));
      const double media_us = static_cast<double>(n) * 1e6 / rate_;
      if (paced && next_release_ > Clock::now() && !ctx.sleep_until(next_release_)) {
        return Status(ErrorCode::kCancelled, "stopped");
      }
      const std::size_t bytes = n * channels_ * sizeof(float);
      auto buffer = out.loan(bytes);
      if (!buffer) {
        return buffer.status();
      }
      std::fill(buffer->begin(), buffer->end(), std::byte{0});
      const auto duration = static_cast<std::int64_t>(std::llround(media_us));
      const PacketHeader h{.kind = PacketKind::kRawAudio,
                           .pts_us = out_end_us_,
                           .duration_us = duration,
                           .sample_rate = rate_,
                           .channels = channels_};
      SKIT_RETURN_IF_ERROR(out.publish(bytes, h));
      out_end_us_ += duration;
      next_release_ += to_duration(media_us / params().speed);
      silence_frames_ += 1;
      left -= static_cast<std::int64_t>(n);
    }
    return Status::ok();
  }

  std::optional<Clock::time_point> prepared_at_;
  bool started_ = false;
  Clock::time_point next_release_{};
  std::uint32_t rate_ = 0;
  std::uint16_t channels_ = 0;
  std::int64_t last_end_pts_ = -1;  // input timeline: end of the last packet
  std::int64_t out_end_us_ = 0;     // output timeline: end of the last packet sent
  std::int64_t shift_us_ = 0;       // output pts = input pts + shift (silence inserted)
  std::uint64_t stalls_ = 0;
  std::uint64_t silence_frames_ = 0;
};
SKIT_REGISTER_NODE(AudioPacerNode);

}  // namespace
}  // namespace skit::nodes
