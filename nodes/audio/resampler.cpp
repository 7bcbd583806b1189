// SPDX-License-Identifier: MPL-2.0
// audio::resampler converts RawAudio to target_sample_rate (and optionally to a channel count)
// with libswresample, and re-frames the result into packets of output_frame_size frames.
// Output timestamps run continuously from the first input pts, counted in output frames, so
// they never drift. At the end the resampler's delay is flushed and the last, possibly short,
// packet is sent. A change of input format mid-stream flushes and reconfigures.
#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "ffmpeg/libav.hpp"
#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

struct ResamplerParams {
  std::int64_t target_sample_rate = 0;
  std::int64_t chunk_frames = 960;
  std::int64_t output_frame_size = 960;
  std::int64_t channels = 0;

  static void describe(ParamSchemaBuilder<ResamplerParams>& b) {
    b.field("target_sample_rate", &ResamplerParams::target_sample_rate,
            "Output sample rate in Hz (8000 to 192000).")
        .range(8000, 192000)
        .required();
    b.field("chunk_frames", &ResamplerParams::chunk_frames,
            "Input frames handed to the resampler per step (bounds the work per call; the "
            "output does not depend on it).")
        .range(16, 65536);
    b.field("output_frame_size", &ResamplerParams::output_frame_size,
            "Frames per output packet: 120, 240, 480, 960, 1920 or 2880 (Opus frame sizes), "
            "or 0 to send whatever each input packet yields (no re-framing). The last packet "
            "may be shorter.")
        .one_of({0, 120, 240, 480, 960, 1920, 2880});
    b.field("channels", &ResamplerParams::channels,
            "Output channels: 0 keeps the input's, 1 downmixes to mono, 2 makes stereo (other "
            "counts use FFmpeg's default layouts).")
        .range(0, 8);
  }
};

class ResamplerNode final : public NodeWithParams<ResamplerParams> {
 public:
  static constexpr std::string_view kKind = "audio::resampler";
  static constexpr std::string_view kSummary =
      "Converts RawAudio to another sample rate / channel count (libswresample), re-framed to "
      "output_frame_size.";
  static constexpr std::string_view kCategory = "audio/filters";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::raw_audio()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::raw_audio()}}; }
  static std::size_t max_packet_bytes(const Params& p) {
    // A re-framed packet of up to 8 channels, or 128 KiB pieces when not re-framing.
    return std::max<std::size_t>(128 * 1024,
                                 static_cast<std::size_t>(p.output_frame_size) * 8 * sizeof(float));
  }

  using NodeWithParams::NodeWithParams;

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
    if (!swr_ || h.sample_rate != in_rate_ || h.channels != in_channels_) {
      if (swr_) {
        ctx.log().info("input format changed ({} Hz/{} ch -> {} Hz/{} ch); reconfiguring",
                       in_rate_, in_channels_, h.sample_rate, h.channels);
        SKIT_RETURN_IF_ERROR(drain(ctx));
      }
      SKIT_RETURN_IF_ERROR(configure(h.sample_rate, h.channels));
    }
    if (first_pts_ < 0) {
      first_pts_ = std::max<std::int64_t>(h.pts_us, 0);
    }
    const auto in = packet.samples();
    const std::size_t in_frames = in.size() / in_channels_;
    const auto chunk = static_cast<std::size_t>(params().chunk_frames);
    for (std::size_t f = 0; f < in_frames; f += chunk) {
      const std::size_t n = std::min(chunk, in_frames - f);
      SKIT_RETURN_IF_ERROR(convert(in.data() + f * in_channels_, static_cast<int>(n)));
    }
    return send(ctx, /*final=*/false);
  }

  Status finish(NodeContext& ctx) override {
    if (!swr_) {
      return Status::ok();  // no audio
    }
    return drain(ctx);
  }

 private:
  Status configure(std::uint32_t rate, std::uint16_t channels) {
    const int out_channels = params().channels > 0 ? static_cast<int>(params().channels) : channels;
    AVChannelLayout in_layout{};
    AVChannelLayout out_layout{};
    av_channel_layout_default(&in_layout, channels);
    av_channel_layout_default(&out_layout, out_channels);
    SwrContext* raw = nullptr;
    int rc = swr_alloc_set_opts2(&raw, &out_layout, AV_SAMPLE_FMT_FLT,
                                 static_cast<int>(params().target_sample_rate), &in_layout,
                                 AV_SAMPLE_FMT_FLT, static_cast<int>(rate), 0, nullptr);
    av_channel_layout_uninit(&in_layout);
    av_channel_layout_uninit(&out_layout);
    if (rc < 0) {
      return av::error(ErrorCode::kInternal, "swr_alloc_set_opts2", rc);
    }
    swr_.reset(raw);
    if (out_channels != channels && (channels == 1 || out_channels == 1)) {
      // Mono is copied to every channel, and a mono downmix is the average: FFmpeg's default
      // matrices use 1/sqrt(2) (3 dB quieter up, clipping-prone down).
      std::vector<double> matrix(static_cast<std::size_t>(out_channels) * channels,
                                 channels == 1 ? 1.0 : 1.0 / channels);
      rc = swr_set_matrix(raw, matrix.data(), channels);
      if (rc < 0) {
        return av::error(ErrorCode::kInternal, "swr_set_matrix", rc);
      }
    } else if (out_channels != channels) {
      av_opt_set_double(raw, "rematrix_maxval", 1.0, 0);  // other downmixes must not clip
    }
    rc = swr_init(raw);
    if (rc < 0) {
      return av::error(ErrorCode::kInternal, "swr_init", rc);
    }
    in_rate_ = rate;
    in_channels_ = channels;
    out_channels_ = static_cast<std::uint16_t>(out_channels);
    return Status::ok();
  }

  /// Feeds `frames` interleaved frames (null = flush) and appends the output to pending_.
  Status convert(const float* data, int frames) {
    const int max_out = swr_get_out_samples(swr_.get(), frames);
    if (max_out < 0) {
      return av::error(ErrorCode::kInternal, "swr_get_out_samples", max_out);
    }
    const std::size_t old = pending_.size();
    pending_.resize(old + static_cast<std::size_t>(max_out) * out_channels_);
    auto* dst = reinterpret_cast<std::uint8_t*>(pending_.data() + old);
    const auto* src = reinterpret_cast<const std::uint8_t*>(data);
    const int n = swr_convert(swr_.get(), &dst, max_out, data != nullptr ? &src : nullptr,
                              data != nullptr ? frames : 0);
    if (n < 0) {
      pending_.resize(old);
      return av::error(ErrorCode::kInternal, "swr_convert", n);
    }
    pending_.resize(old + static_cast<std::size_t>(n) * out_channels_);
    return Status::ok();
  }

  /// Flushes the resampler's delay and sends everything pending.
  Status drain(NodeContext& ctx) {
    SKIT_RETURN_IF_ERROR(convert(nullptr, 0));
    return send(ctx, /*final=*/true);
  }

  /// Sends pending output: whole output_frame_size packets, and with `final` the rest.
  Status send(NodeContext& ctx, bool final) {
    const std::size_t frame_floats =
        params().output_frame_size > 0
            ? static_cast<std::size_t>(params().output_frame_size) * out_channels_
            : pending_.size();
    std::size_t used = 0;
    while (frame_floats > 0 && pending_.size() - used >= frame_floats) {
      SKIT_RETURN_IF_ERROR(publish(ctx, std::span<const float>(pending_).subspan(used, frame_floats)));
      used += frame_floats;
    }
    if (final && used < pending_.size()) {
      SKIT_RETURN_IF_ERROR(publish(ctx, std::span<const float>(pending_).subspan(used)));
      used = pending_.size();
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(used));
    return Status::ok();
  }

  Status publish(NodeContext& ctx, std::span<const float> samples) {
    const auto rate = static_cast<std::uint32_t>(params().target_sample_rate);
    auto& out = ctx.output(0);
    // Without re-framing a packet is split to fit the slots; a re-framed one always fits.
    const std::size_t max_frames =
        std::max<std::size_t>(out.max_packet_bytes() / sizeof(float) / out_channels_, 1);
    while (!samples.empty()) {
      const std::size_t frames = std::min(samples.size() / out_channels_, max_frames);
      const std::size_t floats = frames * out_channels_;
      const std::int64_t pts = first_pts_ + frames_to_us(frames_out_, rate);
      frames_out_ += static_cast<std::int64_t>(frames);
      const PacketHeader h{.kind = PacketKind::kRawAudio,
                           .pts_us = pts,
                           .duration_us = first_pts_ + frames_to_us(frames_out_, rate) - pts,
                           .sample_rate = rate,
                           .channels = out_channels_};
      SKIT_RETURN_IF_ERROR(out.write(std::as_bytes(samples.first(floats)), h));
      samples = samples.subspan(floats);
    }
    return Status::ok();
  }

  static std::int64_t frames_to_us(std::int64_t frames, std::uint32_t rate) {
    return frames / rate * 1000000 + frames % rate * 1000000 / rate;  // no overflow
  }

  av::SwrPtr swr_;
  std::uint32_t in_rate_ = 0;
  std::uint16_t in_channels_ = 0;
  std::uint16_t out_channels_ = 0;
  std::vector<float> pending_;  // resampled, not yet sent (interleaved, out_channels_)
  std::int64_t first_pts_ = -1;
  std::int64_t frames_out_ = 0;
};
SKIT_REGISTER_NODE(ResamplerNode);

}  // namespace
}  // namespace skit::nodes
