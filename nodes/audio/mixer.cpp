// SPDX-License-Identifier: MPL-2.0
// audio::mixer sums N RawAudio inputs (the dynamic family in_0, in_1, ...) on a common media
// timeline. Each input's packets are placed by pts_us, so inputs that arrive in different
// packet sizes, or start at different times, line up sample-accurately. The mix is emitted in
// 20 ms packets once every still-open input has covered the next output frame; sums saturate
// at [-1, 1]. An input that ends contributes silence from then on; the output runs until the
// last input ends. Mono inputs are spread to every output channel, and multichannel inputs are
// averaged down when the mix is mono.
//
// The runtime delivers one packet at a time from whichever input has data, so the node buffers
// per input. An open input that has not delivered audio for the next frame holds the mix back
// for at most sync_timeout_ms (wall clock, measured while other inputs have audio waiting);
// after that it is mixed as silence until it catches up, and its audio for time already mixed
// is dropped.
//
// Clocked mode (`clocked: {...}`, StreamKit's): the mixer runs on a clock of its own instead of
// the inputs' timestamps. Every frame_samples_per_channel / sample_rate (20 ms by default) it
// mixes what each input has buffered and fills silence for an input that has nothing (a
// missing or stalled input never holds the mix back); with generate_silence it emits a silent
// frame when no input has audio, so the output never stops. Each input has a jitter buffer of
// jitter_buffer_frames frames; an input that runs ahead waits for the clock (backpressure: a
// file input loses nothing and is mixed in real time). The output format is fixed by the
// first audio to arrive (its channel count; the clock's sample rate, which every input must
// have); nothing is emitted before it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include <spdlog/spdlog.h>

#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

using Clock = std::chrono::steady_clock;

/// Packets whose pts is within this of the end of the previous packet of the same input are
/// appended back to back: timestamp rounding and jitter must not insert or remove samples.
constexpr std::int64_t kContiguityToleranceUs = 5000;

std::string input_name(std::size_t index) { return "in_" + std::to_string(index); }

/// Frame position at `rate` of a time in microseconds (>= 0), rounded to nearest; split so
/// large timestamps (wall-clock epochs) cannot overflow.
std::int64_t us_to_frames(std::int64_t us, std::uint32_t rate) {
  return us / 1000000 * rate + (us % 1000000 * rate + 500000) / 1000000;
}

/// Time in microseconds of frame position `frames` (>= 0), rounded down.
std::int64_t frames_to_us(std::int64_t frames, std::uint32_t rate) {
  return frames / rate * 1000000 + frames % rate * 1000000 / rate;
}

/// The `clocked` object, decoded and checked.
struct ClockedConfig {
  std::int64_t sample_rate = 48000;
  std::int64_t frame_samples_per_channel = 960;
  std::int64_t jitter_buffer_frames = 3;
  bool generate_silence = true;
};

/// Decodes `clocked` (null: off); errors name the field.
Result<std::optional<ClockedConfig>> decode_clocked(const Json& clocked) {
  if (clocked.is_null()) {
    return std::optional<ClockedConfig>{};
  }
  if (!clocked.is_object()) {
    return Status(ErrorCode::kInvalidParam, "expected an object or null, got " + clocked.dump(),
                  {.param = "clocked"});
  }
  ClockedConfig c;
  for (const auto& [key, value] : clocked.items()) {
    auto integer = [&](std::int64_t& out, std::int64_t min, std::int64_t max) -> Status {
      if (!value.is_number_integer() || value.get<std::int64_t>() < min ||
          value.get<std::int64_t>() > max) {
        return Status(ErrorCode::kInvalidParam,
                      "clocked." + key + " must be an integer from " + std::to_string(min) +
                          " to " + std::to_string(max) + " (got " + value.dump() + ")",
                      {.param = "clocked"});
      }
      out = value.get<std::int64_t>();
      return Status::ok();
    };
    if (key == "sample_rate") {
      SKIT_RETURN_IF_ERROR(integer(c.sample_rate, 8000, 192000));
    } else if (key == "frame_samples_per_channel") {
      SKIT_RETURN_IF_ERROR(integer(c.frame_samples_per_channel, 16, 19200));
    } else if (key == "jitter_buffer_frames") {
      SKIT_RETURN_IF_ERROR(integer(c.jitter_buffer_frames, 1, 100));
    } else if (key == "generate_silence") {
      if (!value.is_boolean()) {
        return Status(ErrorCode::kInvalidParam,
                      "clocked.generate_silence must be true or false (got " + value.dump() + ")",
                      {.param = "clocked"});
      }
      c.generate_silence = value.get<bool>();
    } else {
      return Status(ErrorCode::kInvalidParam,
                    "unknown clocked." + key +
                        " (known: sample_rate, frame_samples_per_channel, jitter_buffer_frames, "
                        "generate_silence)",
                    {.param = "clocked"});
    }
  }
  return std::optional<ClockedConfig>(c);
}

struct MixerParams {
  std::int64_t num_inputs = 0;
  std::int64_t sync_timeout_ms = 100;
  Json clocked;

  static void describe(ParamSchemaBuilder<MixerParams>& b) {
    b.field("num_inputs", &MixerParams::num_inputs,
            "Number of connected inputs (in_0 .. in_N-1). 0 = learn the inputs as their packets "
            "arrive; the first output is then held for sync_timeout_ms so that every input can "
            "deliver its first packet. Set it when an input may start late.")
        .range(0, 256);
    b.field("sync_timeout_ms", &MixerParams::sync_timeout_ms,
            "How long (wall clock) an open input that has no audio for the next output frame "
            "may hold the mix back while other inputs have audio waiting. After that it is "
            "mixed as silence until it catches up, and its audio for time already mixed is "
            "dropped. 0 = wait forever (StreamKit's null).")
        .range(0, 3600000);
    b.field("clocked", &MixerParams::clocked,
            "Clocked mode (null = off): {sample_rate: 48000, frame_samples_per_channel: 960, "
            "jitter_buffer_frames: 3, generate_silence: true}. The mixer emits a frame every "
            "frame_samples_per_channel / sample_rate from its own clock, mixing what each "
            "input has and silence for the others, instead of aligning inputs by timestamp.");
  }

  [[nodiscard]] Status validate() const { return decode_clocked(clocked).status(); }
};

class MixerNode final : public NodeWithParams<MixerParams> {
 public:
  static constexpr std::string_view kKind = "audio::mixer";
  static constexpr std::string_view kSummary =
      "Mixes N RawAudio inputs aligned by timestamps; saturating sum, 20 ms output packets.";
  static constexpr std::string_view kCategory = "audio/filters";
  static constexpr std::string_view kInputCountParam = "num_inputs";
  static std::vector<InputPinSpec> inputs() {
    return {{"in", {PacketType::raw_audio()}, Cardinality::kDynamic}};
  }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::raw_audio()}}; }
  // 20 ms at 192 kHz, 8 channels, f32.
  static std::size_t max_packet_bytes(const Params& /*p*/) { return 128 * 1024; }

  explicit MixerNode(MixerParams p) : NodeWithParams(p) {
    inputs_.resize(static_cast<std::size_t>(p.num_inputs));
    if (auto clocked = decode_clocked(p.clocked); clocked) {  // validate() reported errors
      clock_ = *clocked;
    }
  }

  Status start(NodeContext& ctx) override {
    if (clock_) {
      frame_us_ = static_cast<double>(clock_->frame_samples_per_channel) * 1e6 /
                  static_cast<double>(clock_->sample_rate);
      clock_start_ = Clock::now();
      ctx.wake_at(tick_time(0));
    }
    return Status::ok();
  }

  Status on_timer(NodeContext& ctx) override {
    return clock_ ? run_due_ticks(ctx) : Status::ok();
  }

  Status process(NodeContext& ctx, const PacketView& packet) override {
    if (clock_) {
      return clocked_process(ctx, packet);
    }
    SKIT_RETURN_IF_ERROR(know(packet.input_index));
    const std::size_t index = packet.input_index;
    Input& in = inputs_[index];
    const PacketHeader& h = packet.header;
    if (h.kind != PacketKind::kRawAudio) {
      return Status(ErrorCode::kInvalidArgument,
                    input_name(index) + " received a " + std::string(packet_kind_name(h.kind)) +
                        " packet; the mixer takes RawAudio");
    }
    if (h.sample_rate == 0 || h.channels == 0) {
      return Status(ErrorCode::kInvalidArgument,
                    input_name(index) + " received audio without a sample rate or channel count");
    }
    if (packet.data.size() % (sizeof(float) * h.channels) != 0) {
      return Status(ErrorCode::kCorruptMedia, input_name(index) + ": packet of " +
                                                  std::to_string(packet.data.size()) +
                                                  " bytes is not whole f32 frames of " +
                                                  std::to_string(h.channels) + " channels");
    }
    if (first_packet_at_ == Clock::time_point{}) {
      first_packet_at_ = Clock::now();
    }
    if (rate_ == 0) {
      rate_ = h.sample_rate;
      rate_from_ = index;
    } else if (h.sample_rate != rate_) {
      return Status(ErrorCode::kInvalidArgument,
                    input_name(index) + " is " + std::to_string(h.sample_rate) +
                        " Hz but the mix runs at " + std::to_string(rate_) + " Hz (set by " +
                        input_name(rate_from_) +
                        "); all inputs must share a sample rate (put an audio::resampler "
                        "before it)");
    }
    if (in.channels != 0 && in.channels != h.channels) {
      return Status(ErrorCode::kInvalidArgument,
                    input_name(index) + " changed from " + std::to_string(in.channels) + " to " +
                        std::to_string(h.channels) + " channels mid-stream");
    }
    if (in.channels == 0) {
      in.channels = h.channels;
      if (out_channels_ != 0) {
        SKIT_RETURN_IF_ERROR(check_channels(index));
      }
    }
    place(ctx, index, packet);
    return emit_ready(ctx, /*flush=*/false);
  }

  Status on_input_end(NodeContext& ctx, std::size_t input) override {
    SKIT_RETURN_IF_ERROR(know(input));
    inputs_[input].ended = true;
    return clock_ ? Status::ok() : emit_ready(ctx, /*flush=*/false);
  }

  Status finish(NodeContext& ctx) override {
    for (auto& in : inputs_) {
      in.ended = true;
    }
    return clock_ ? clocked_drain(ctx) : emit_ready(ctx, /*flush=*/true);
  }

 private:
  struct Input {
    bool ended = false;
    bool lagging = false;        // timed out: mixed as silence until it catches up
    std::uint16_t channels = 0;  // 0 until its first packet
    bool has_data = false;
    std::int64_t start = 0;      // frame position of samples[head]
    std::vector<float> samples;  // interleaved, this input's channel count
    std::size_t head = 0;        // floats of `samples` already consumed
    std::int64_t next_pts_us = -1;  // where the next packet should start if contiguous
    std::int64_t dropped_frames = 0;

    [[nodiscard]] std::int64_t frames() const {
      return static_cast<std::int64_t>((samples.size() - head) / channels);
    }
    [[nodiscard]] std::int64_t end() const { return start + frames(); }
    [[nodiscard]] const float* at(std::int64_t pos) const {
      return samples.data() + head + static_cast<std::size_t>(pos - start) * channels;
    }
    /// Drops buffered frames before position `pos`.
    void consume_until(std::int64_t pos) {
      if (!has_data || pos <= start) {
        return;
      }
      const std::int64_t n = std::min(pos - start, frames());
      head += static_cast<std::size_t>(n) * channels;
      start = pos;
      if (head == samples.size()) {
        samples.clear();
        head = 0;
      } else if (head > 64 * 1024 && head * 2 > samples.size()) {
        samples.erase(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(head));
        head = 0;
      }
    }
  };

  /// Registers input `index` (and every lower index: the family is dense).
  Status know(std::size_t index) {
    if (params().num_inputs > 0 && index >= static_cast<std::size_t>(params().num_inputs)) {
      return Status(ErrorCode::kInvalidParam,
                    input_name(index) + " is connected but num_inputs is " +
                        std::to_string(params().num_inputs),
                    {.param = "num_inputs"});
    }
    if (index >= inputs_.size()) {
      inputs_.resize(index + 1);
    }
    return Status::ok();
  }

  /// Whether input `index` can be mapped onto the output's channels.
  Status check_channels(std::size_t index) const {
    const std::uint16_t c = inputs_[index].channels;
    if (c == out_channels_ || c == 1 || out_channels_ == 1) {
      return Status::ok();
    }
    return Status(ErrorCode::kInvalidArgument,
                  input_name(index) + " has " + std::to_string(c) + " channels but the mix has " +
                      std::to_string(out_channels_) +
                      " (only mono inputs are spread and mono mixes downmix; put an "
                      "audio::resampler with channels before it)");
  }

  /// Appends a packet to its input's buffer at the frame position its pts says.
  void place(NodeContext& ctx, std::size_t index, const PacketView& packet) {
    Input& in = inputs_[index];
    const auto samples = packet.samples();
    const auto frames = static_cast<std::int64_t>(samples.size() / in.channels);
    if (frames == 0) {
      return;
    }
    const std::int64_t pts = packet.header.pts_us;
    std::int64_t pos = 0;
    if (in.has_data && (pts < 0 || in.next_pts_us < 0 ||
                        std::abs(pts - in.next_pts_us) <= kContiguityToleranceUs)) {
      pos = in.end();  // back to back with the previous packet
    } else if (pts >= 0) {
      pos = us_to_frames(pts, rate_);
    } else {
      pos = started_ ? cursor_ : 0;  // no timestamps: it starts now
    }
    in.next_pts_us = pts >= 0 ? pts + frames_to_us(frames, rate_) : -1;

    std::int64_t first = pos;  // first position of this packet that is kept
    if (started_ && cursor_ > pos) {
      const std::int64_t late = std::min(cursor_ - pos, frames);
      if (in.dropped_frames == 0) {
        ctx.log().warn("{} delivered {} us of audio for time already mixed; dropped",
                       input_name(index), frames_to_us(late, rate_));
      }
      in.dropped_frames += late;
      first = cursor_;
    }
    const bool empty = !in.has_data || in.frames() == 0;
    if (!empty) {
      first = std::max(first, in.end());  // an overlap keeps the audio already buffered
    }
    if (first < pos + frames) {
      if (empty) {
        in.samples.clear();
        in.head = 0;
        in.start = first;  // anything between the cursor and here is silence
      } else if (first > in.end()) {
        // A gap in the input's timeline is silence.
        in.samples.resize(in.samples.size() + static_cast<std::size_t>(first - in.end()) * in.channels,
                          0.0F);
      }
      in.samples.insert(in.samples.end(),
                        samples.begin() + static_cast<std::ptrdiff_t>((first - pos) * in.channels),
                        samples.end());
      in.has_data = true;
    }
    if (in.lagging && in.has_data && in.end() > cursor_) {
      in.lagging = false;  // caught up
    }
  }

  [[nodiscard]] bool any_data() const {
    return std::any_of(inputs_.begin(), inputs_.end(), [](const Input& in) { return in.has_data; });
  }

  /// The stall timer: true once something has been held back for sync_timeout_ms.
  bool stall_expired(Clock::time_point now) {
    if (params().sync_timeout_ms == 0) {
      return false;
    }
    if (!stalled_since_) {
      stalled_since_ = now;
      return false;
    }
    if (now - *stalled_since_ < std::chrono::milliseconds(params().sync_timeout_ms)) {
      return false;
    }
    stalled_since_.reset();
    return true;
  }

  /// Open, non-lagging inputs that do not cover [cursor, cursor + frame) become lagging.
  void mark_lagging(NodeContext& ctx, std::int64_t frame) {
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
      Input& in = inputs_[i];
      if (!in.ended && !in.lagging && (!in.has_data || in.end() < cursor_ + frame)) {
        in.lagging = true;
        ctx.log().warn("{} has no audio after {} ms; mixing it as silence until it catches up",
                       input_name(i), params().sync_timeout_ms);
      }
    }
  }

  /// Fixes the timeline origin (the earliest buffered audio) and the output channels once
  /// every known input has delivered audio, ended, or timed out. False while it is too early.
  Result<bool> try_start(NodeContext& ctx, Clock::time_point now) {
    if (!any_data()) {
      return false;
    }
    if (!finishing_) {
      if (params().num_inputs == 0) {
        // The inputs are learned as they arrive: give each a chance to show up first.
        if (params().sync_timeout_ms == 0 ||
            now - first_packet_at_ < std::chrono::milliseconds(params().sync_timeout_ms)) {
          return false;
        }
      }
      const bool missing = std::any_of(inputs_.begin(), inputs_.end(), [](const Input& in) {
        return !in.ended && !in.lagging && !in.has_data;
      });
      if (missing) {
        if (!stall_expired(now)) {
          return false;
        }
        for (std::size_t i = 0; i < inputs_.size(); ++i) {
          if (!inputs_[i].ended && !inputs_[i].has_data) {
            inputs_[i].lagging = true;
            ctx.log().warn("{} has no audio after {} ms; mixing it as silence until it arrives",
                           input_name(i), params().sync_timeout_ms);
          }
        }
      }
    }
    std::int64_t origin = std::numeric_limits<std::int64_t>::max();
    out_channels_ = 0;
    for (const auto& in : inputs_) {
      if (in.has_data) {
        origin = std::min(origin, in.start);
      }
      out_channels_ = std::max(out_channels_, in.channels);
    }
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
      if (inputs_[i].channels != 0) {
        SKIT_RETURN_IF_ERROR(check_channels(i));
      }
    }
    started_ = true;
    stalled_since_.reset();
    cursor_ = origin;
    ctx.log().debug("mixing {} inputs at {} Hz, {} channels, from {} us", inputs_.size(), rate_,
                    out_channels_, frames_to_us(cursor_, rate_));
    return true;
  }

  /// Emits every output frame that all open inputs cover; with `flush` (every input ended),
  /// everything that is left, the last frame possibly short.
  Status emit_ready(NodeContext& ctx, bool flush) {
    finishing_ = flush;
    if (rate_ == 0) {
      return Status::ok();  // no audio yet
    }
    const auto now = Clock::now();
    const std::int64_t frame = std::max<std::int64_t>(rate_ / 50, 1);
    if (!started_) {
      auto started = try_start(ctx, now);
      if (!started) {
        return started.status();
      }
      if (!*started) {
        return Status::ok();
      }
    }
    while (true) {
      std::int64_t last = cursor_;  // end of the audio buffered anywhere
      bool blocked = false;
      for (const auto& in : inputs_) {
        if (in.has_data) {
          last = std::max(last, in.end());
        }
        blocked = blocked ||
                  (!in.ended && !in.lagging && (!in.has_data || in.end() < cursor_ + frame));
      }
      if (flush) {
        if (last <= cursor_) {
          return Status::ok();
        }
        SKIT_RETURN_IF_ERROR(emit(ctx, std::min(frame, last - cursor_)));
        continue;
      }
      if (!blocked) {
        if (last < cursor_ + frame) {
          // Only ended or lagging inputs hold audio here, and not a whole frame: the rest may
          // still come from a lagging input, or it is the final frame, sent by finish().
          return Status::ok();
        }
        SKIT_RETURN_IF_ERROR(emit(ctx, frame));
        stalled_since_.reset();
        continue;
      }
      if (last <= cursor_) {
        stalled_since_.reset();  // nothing is waiting to be mixed: no one is held back
        return Status::ok();
      }
      if (!stall_expired(now)) {
        return Status::ok();
      }
      mark_lagging(ctx, frame);
    }
  }

  /// Mixes `n` frames at the cursor and publishes them.
  Status emit(NodeContext& ctx, std::int64_t n) {
    const std::size_t oc = out_channels_;
    const std::size_t floats = static_cast<std::size_t>(n) * oc;
    auto& out = ctx.output(0);
    auto buffer = out.loan(floats * sizeof(float));
    if (!buffer) {
      return buffer.status();
    }
    auto* dst = reinterpret_cast<float*>(buffer->data());
    std::fill(dst, dst + floats, 0.0F);
    for (const auto& in : inputs_) {
      if (!in.has_data) {
        continue;
      }
      const std::int64_t from = std::max(cursor_, in.start);
      const std::int64_t to = std::min(cursor_ + n, in.end());
      const std::size_t ic = in.channels;
      for (std::int64_t p = from; p < to; ++p) {
        const float* src = in.at(p);
        float* d = dst + static_cast<std::size_t>(p - cursor_) * oc;
        if (ic == oc) {
          for (std::size_t c = 0; c < oc; ++c) {
            d[c] += src[c];
          }
        } else if (ic == 1) {
          for (std::size_t c = 0; c < oc; ++c) {
            d[c] += src[0];
          }
        } else {  // oc == 1: average down
          float sum = 0.0F;
          for (std::size_t c = 0; c < ic; ++c) {
            sum += src[c];
          }
          d[0] += sum / static_cast<float>(ic);
        }
      }
    }
    for (std::size_t i = 0; i < floats; ++i) {
      const float v = dst[i];
      dst[i] = std::isnan(v) ? 0.0F : std::clamp(v, -1.0F, 1.0F);  // saturate, never wrap
    }
    const std::int64_t pts = frames_to_us(cursor_, rate_);
    const PacketHeader h{.kind = PacketKind::kRawAudio,
                         .pts_us = pts,
                         .duration_us = frames_to_us(cursor_ + n, rate_) - pts,
                         .sample_rate = rate_,
                         .channels = static_cast<std::uint16_t>(oc)};
    SKIT_RETURN_IF_ERROR(out.publish(floats * sizeof(float), h));
    cursor_ += n;
    for (auto& in : inputs_) {
      in.consume_until(cursor_);
    }
    return Status::ok();
  }

  // ---- clocked mode ------------------------------------------------------------------------

  [[nodiscard]] Clock::time_point tick_time(std::int64_t tick) const {
    return clock_start_ + std::chrono::microseconds(
                              static_cast<std::int64_t>(static_cast<double>(tick) * frame_us_));
  }

  /// Checks a packet and appends its samples to the input's jitter buffer; while the buffer
  /// holds more than jitter_buffer_frames frames, waits for the clock (running its ticks).
  Status clocked_process(NodeContext& ctx, const PacketView& packet) {
    SKIT_RETURN_IF_ERROR(know(packet.input_index));
    const std::size_t index = packet.input_index;
    Input& in = inputs_[index];
    const PacketHeader& h = packet.header;
    if (h.kind != PacketKind::kRawAudio || h.channels == 0) {
      return Status(ErrorCode::kInvalidArgument,
                    input_name(index) + " received a " + std::string(packet_kind_name(h.kind)) +
                        " packet; the mixer takes RawAudio");
    }
    if (h.sample_rate != static_cast<std::uint32_t>(clock_->sample_rate)) {
      return Status(ErrorCode::kInvalidArgument,
                    input_name(index) + " is " + std::to_string(h.sample_rate) +
                        " Hz but the clocked mix runs at " + std::to_string(clock_->sample_rate) +
                        " Hz (clocked.sample_rate; put an audio::resampler before it)");
    }
    if (packet.data.size() % (sizeof(float) * h.channels) != 0) {
      return Status(ErrorCode::kCorruptMedia, input_name(index) + ": packet is not whole f32 frames");
    }
    if (in.channels != 0 && in.channels != h.channels) {
      return Status(ErrorCode::kInvalidArgument,
                    input_name(index) + " changed from " + std::to_string(in.channels) + " to " +
                        std::to_string(h.channels) + " channels mid-stream");
    }
    if (in.channels == 0) {
      in.channels = h.channels;
      if (out_channels_ == 0) {
        // The first audio fixes the output: the most channels among the inputs known so far.
        for (const auto& other : inputs_) {
          out_channels_ = std::max(out_channels_, other.channels);
        }
        rate_ = static_cast<std::uint32_t>(clock_->sample_rate);
      }
      SKIT_RETURN_IF_ERROR(check_channels(index));
    }
    const auto samples = packet.samples();
    in.samples.insert(in.samples.end(), samples.begin(), samples.end());
    in.has_data = true;
    const auto limit = static_cast<std::int64_t>(clock_->jitter_buffer_frames *
                                                 clock_->frame_samples_per_channel);
    while (in.frames() > limit) {
      SKIT_RETURN_IF_ERROR(run_due_ticks(ctx));
      if (in.frames() <= limit) {
        break;
      }
      if (!ctx.sleep_until(tick_time(next_tick_))) {
        return Status(ErrorCode::kCancelled, "stopped");
      }
    }
    return run_due_ticks(ctx);
  }

  /// Emits every frame whose time has come (after a stall of more than a few frames the clock
  /// restarts from now instead of bursting), then asks for the next tick.
  Status run_due_ticks(NodeContext& ctx) {
    const auto now = Clock::now();
    constexpr std::int64_t kMaxCatchUp = 5;
    std::int64_t due = 0;
    while (tick_time(next_tick_ + due) <= now) {
      ++due;
      if (due > kMaxCatchUp) {
        ctx.log().warn("clocked mixer fell {} ms behind; its clock restarts",
                       static_cast<std::int64_t>(std::chrono::duration<double, std::milli>(
                                                     now - tick_time(next_tick_))
                                                     .count()));
        clock_start_ = now - std::chrono::microseconds(
                                 static_cast<std::int64_t>(static_cast<double>(next_tick_) * frame_us_));
        due = 1;
        break;
      }
    }
    for (std::int64_t i = 0; i < due; ++i) {
      SKIT_RETURN_IF_ERROR(clocked_tick(ctx, /*draining=*/false));
    }
    ctx.wake_at(tick_time(next_tick_));
    return Status::ok();
  }

  /// One frame from the clock: what each input has (up to a frame), silence for the rest.
  Status clocked_tick(NodeContext& ctx, bool draining) {
    const auto frame = static_cast<std::int64_t>(clock_->frame_samples_per_channel);
    ++next_tick_;
    if (out_channels_ == 0) {
      return Status::ok();  // no audio yet: no output format
    }
    std::int64_t available = 0;
    for (const auto& in : inputs_) {
      if (in.channels != 0) {
        available = std::max(available, std::min(frame, in.frames()));
      }
    }
    if (available == 0 && (draining || !clock_->generate_silence)) {
      return Status::ok();
    }
    // Frames are placed at the clock's position: cursor_ counts the frames emitted.
    for (auto& in : inputs_) {
      in.start = cursor_;
    }
    return emit(ctx, draining ? available : frame);
  }

  /// End of every input: what is still buffered goes out, at the clock's pace.
  Status clocked_drain(NodeContext& ctx) {
    while (std::any_of(inputs_.begin(), inputs_.end(),
                       [](const Input& in) { return in.channels != 0 && in.frames() > 0; })) {
      if (!ctx.sleep_until(tick_time(next_tick_))) {
        return Status(ErrorCode::kCancelled, "stopped");
      }
      SKIT_RETURN_IF_ERROR(clocked_tick(ctx, /*draining=*/true));
    }
    return Status::ok();
  }

  std::optional<ClockedConfig> clock_;
  Clock::time_point clock_start_{};
  double frame_us_ = 0;
  std::int64_t next_tick_ = 0;

  std::vector<Input> inputs_;
  std::uint32_t rate_ = 0;
  std::size_t rate_from_ = 0;
  std::uint16_t out_channels_ = 0;
  bool started_ = false;
  bool finishing_ = false;
  std::int64_t cursor_ = 0;  // frame position of the next output frame
  Clock::time_point first_packet_at_{};
  std::optional<Clock::time_point> stalled_since_;
};
SKIT_REGISTER_NODE(MixerNode);

}  // namespace
}  // namespace skit::nodes
