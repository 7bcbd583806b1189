// SPDX-License-Identifier: MPL-2.0
// audio::tone: a test source (GStreamer's audiotestsrc): a sine wave, silence or white noise as
// RawAudio f32 frames, endless or for a duration, released in real time or as fast as the
// pipeline takes it. It gives a live session a source that never runs dry, and tests a signal
// whose level and frequency are known. Frequency and amplitude can be tuned while it runs; the
// phase stays continuous across a change.
#include <chrono>
#include <cmath>
#include <numbers>
#include <random>

#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

struct ToneParams {
  std::string wave = "sine";
  double frequency = 440.0;
  double amplitude = 0.25;
  std::int64_t sample_rate = 48000;
  std::int64_t channels = 1;
  std::int64_t frame_size = 960;
  std::int64_t duration_ms = 0;
  bool realtime = true;

  static void describe(ParamSchemaBuilder<ToneParams>& b) {
    b.field("wave", &ToneParams::wave, "Waveform: sine, silence or white-noise.")
        .choices({"sine", "silence", "white-noise"});
    b.field("frequency", &ToneParams::frequency, "Sine frequency in Hz.")
        .range(1, 96000)
        .tunable();
    b.field("amplitude", &ToneParams::amplitude, "Peak level, 0 to 1 (0.25 is -12 dBFS).")
        .range(0, 1)
        .tunable();
    b.field("sample_rate", &ToneParams::sample_rate, "Samples per second.").range(8000, 192000);
    b.field("channels", &ToneParams::channels, "Channels (the same signal on each).").range(1, 8);
    b.field("frame_size", &ToneParams::frame_size,
            "Samples per channel per packet (960 = 20 ms at 48 kHz).")
        .range(16, 65536);
    b.field("duration_ms", &ToneParams::duration_ms,
            "Length of the signal in milliseconds; 0 never ends (live sessions).")
        .range(0, 86400000);
    b.field("realtime", &ToneParams::realtime,
            "Release frames at the media rate (live), or as fast as the pipeline takes them.");
  }
};

class ToneNode final : public NodeWithParams<ToneParams> {
 public:
  static constexpr std::string_view kKind = "audio::tone";
  static constexpr std::string_view kSummary =
      "Test source: sine, silence or white noise as RawAudio, endless or timed, in real time.";
  static constexpr std::string_view kCategory = "audio/sources";
  static std::vector<InputPinSpec> inputs() { return {}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::raw_audio()}}; }
  static std::size_t max_packet_bytes(const Params& p) {
    return static_cast<std::size_t>(p.frame_size * p.channels) * sizeof(float);
  }

  using NodeWithParams::NodeWithParams;

  Status prepare(NodeContext& /*ctx*/) override {
    const auto rate = static_cast<double>(params().sample_rate);
    total_ = params().duration_ms == 0
                 ? -1
                 : static_cast<std::int64_t>(std::llround(params().duration_ms * rate / 1000.0));
    return Status::ok();
  }

  Result<Produced> produce(NodeContext& ctx) override {
    const ToneParams& p = params();
    std::int64_t frames = p.frame_size;
    if (total_ >= 0) {
      frames = std::min(frames, total_ - produced_);
      if (frames <= 0) {
        return Produced::kDone;
      }
    }
    const auto rate = static_cast<std::int64_t>(p.sample_rate);
    const std::int64_t pts_us = produced_ * 1'000'000 / rate;
    if (p.realtime) {
      if (!started_) {
        start_ = std::chrono::steady_clock::now();
        started_ = true;
      }
      const auto due = start_ + std::chrono::microseconds(pts_us);
      if (due > std::chrono::steady_clock::now() && !ctx.sleep_until(due)) {
        return Produced::kDone;  // stopped
      }
    }
    auto& out = ctx.output(0);
    const std::size_t channels = static_cast<std::size_t>(p.channels);
    auto buffer = out.loan(static_cast<std::size_t>(frames) * channels * sizeof(float));
    if (!buffer) {
      return buffer.status();
    }
    auto* samples = reinterpret_cast<float*>(buffer->data());
    const double step = 2.0 * std::numbers::pi * p.frequency / static_cast<double>(rate);
    for (std::int64_t i = 0; i < frames; ++i) {
      float v = 0.0F;
      if (p.wave == "sine") {
        v = static_cast<float>(p.amplitude * std::sin(phase_));
        phase_ = std::fmod(phase_ + step, 2.0 * std::numbers::pi);
      } else if (p.wave == "white-noise") {
        v = static_cast<float>(p.amplitude * noise_(rng_));
      }
      for (std::size_t c = 0; c < channels; ++c) {
        samples[static_cast<std::size_t>(i) * channels + c] = v;
      }
    }
    produced_ += frames;
    SKIT_RETURN_IF_ERROR(out.publish(
        static_cast<std::size_t>(frames) * channels * sizeof(float),
        PacketHeader{.kind = PacketKind::kRawAudio,
                     .pts_us = pts_us,
                     .duration_us = frames * 1'000'000 / rate,
                     .sample_rate = static_cast<std::uint32_t>(rate),
                     .channels = static_cast<std::uint16_t>(channels)}));
    return Produced::kMore;
  }

 private:
  std::int64_t total_ = -1;  // frames to produce; -1: endless
  std::int64_t produced_ = 0;
  double phase_ = 0;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_;
  std::mt19937 rng_{12345};
  std::uniform_real_distribution<double> noise_{-1.0, 1.0};
};
SKIT_REGISTER_NODE(ToneNode);

}  // namespace

}  // namespace skit::nodes
