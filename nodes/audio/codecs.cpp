// SPDX-License-Identifier: MPL-2.0
// Audio codecs on libavcodec. Decoders turn EncodedAudio packets into RawAudio f32
// (interleaved, at the stream's rate and channels); encoders do the reverse and announce their
// codec private data with a StreamInfo packet first. Both carry pts/duration through and
// drain at end of stream.
#include <algorithm>
#include <cstring>

#include "ffmpeg/libav.hpp"
#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

constexpr AVRational kUs = av::kMicroseconds;

/// EncodedAudio -> RawAudio, configured from the input's StreamInfo.
template <typename Self>
class DecoderNode : public NodeWithParams<NoParams> {
 public:
  static constexpr std::string_view kCategory = "audio/codecs";
  static std::vector<InputPinSpec> inputs() {
    return {{"in", {PacketType::encoded_audio(std::string(Self::kCodec))}}};
  }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::raw_audio()}}; }
  static std::size_t max_packet_bytes(const NoParams& /*p*/) { return 64 * 1024; }

  using NodeWithParams::NodeWithParams;

  Status on_stream_info(NodeContext& /*ctx*/, std::size_t /*input*/, const StreamInfo& info) override {
    if (decoder_) {
      return Status::ok();  // a repeated announcement (e.g. a chained stream) changes nothing
    }
    if (info.codec != Self::kCodec) {
      return Status(ErrorCode::kInvalidArgument, std::string(Self::kKind) + " cannot decode '" +
                                                     info.codec + "' (expects " +
                                                     std::string(Self::kCodec) + ")");
    }
    const AVCodec* codec = avcodec_find_decoder(av::codec_id(info.codec));
    if (codec == nullptr) {
      return Status(ErrorCode::kInternal, "libavcodec has no " + info.codec + " decoder");
    }
    AVCodecParameters* par = avcodec_parameters_alloc();
    Status s = av::apply_stream_info(info, *par);
    decoder_.reset(avcodec_alloc_context3(codec));
    if (s.is_ok()) {
      avcodec_parameters_to_context(decoder_.get(), par);
    }
    avcodec_parameters_free(&par);
    SKIT_RETURN_IF_ERROR(s);
    decoder_->pkt_timebase = kUs;
    const int rc = avcodec_open2(decoder_.get(), codec, nullptr);
    if (rc < 0) {
      return av::error(ErrorCode::kCorruptMedia, "cannot open the " + info.codec + " decoder", rc);
    }
    packet_ = av::make_packet();
    frame_ = av::make_frame();
    return Status::ok();
  }

  Status process(NodeContext& ctx, const PacketView& packet) override {
    if (!decoder_) {
      return Status(ErrorCode::kInvalidArgument,
                    "received audio before its stream info (is a demuxer or encoder upstream?)");
    }
    if (av_new_packet(packet_.get(), static_cast<int>(packet.data.size())) < 0) {
      return Status(ErrorCode::kResourceExhausted, "out of memory");
    }
    std::memcpy(packet_->data, packet.data.data(), packet.data.size());
    packet_->pts = packet.header.pts_us >= 0 ? packet.header.pts_us : AV_NOPTS_VALUE;
    packet_->duration = packet.header.duration_us;
    av::write_trim(packet.header, *packet_);  // pre-skip, priming, end padding
    ++packets_;
    av::LogScope log(ctx);
    const int rc = avcodec_send_packet(decoder_.get(), packet_.get());
    av_packet_unref(packet_.get());
    if (rc < 0) {
      return corrupt(packet, rc);
    }
    return receive(ctx, &packet);
  }

  Status finish(NodeContext& ctx) override {
    if (!decoder_) {
      return Status::ok();  // empty stream
    }
    avcodec_send_packet(decoder_.get(), nullptr);
    return receive(ctx, nullptr);
  }

 private:
  Status corrupt(const PacketView& packet, int rc) const {
    return Status(ErrorCode::kCorruptMedia,
                  "corrupt " + std::string(Self::kCodec) + " packet #" + std::to_string(packets_) +
                      " (" + std::to_string(packet.data.size()) + " bytes, pts " +
                      std::to_string(packet.header.pts_us) + " us): " + av::error_text(rc));
  }

  Status receive(NodeContext& ctx, const PacketView* packet) {
    while (true) {
      const int rc = avcodec_receive_frame(decoder_.get(), frame_.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
        return Status::ok();
      }
      if (rc < 0) {
        return packet != nullptr ? corrupt(*packet, rc) : av::error(ErrorCode::kCorruptMedia, "decoding", rc);
      }
      SKIT_RETURN_IF_ERROR(convert_.convert(*frame_, samples_));
      std::int64_t pts = frame_->best_effort_timestamp != AV_NOPTS_VALUE ? frame_->best_effort_timestamp : next_pts_;
      auto end = av::write_audio(ctx, 0, samples_, static_cast<std::uint32_t>(frame_->sample_rate),
                                 static_cast<std::uint16_t>(frame_->ch_layout.nb_channels), pts);
      av_frame_unref(frame_.get());
      if (!end) {
        return end.status();
      }
      next_pts_ = *end;
    }
  }

  av::CodecContextPtr decoder_;
  av::PacketPtr packet_;
  av::FramePtr frame_;
  av::ToInterleavedF32 convert_;
  std::vector<float> samples_;
  std::int64_t next_pts_ = 0;
  std::uint64_t packets_ = 0;
};

class OpusDecoderNode final : public DecoderNode<OpusDecoderNode> {
 public:
  static constexpr std::string_view kKind = "audio::opus::decoder";
  static constexpr std::string_view kSummary = "Opus packets -> RawAudio f32 at 48 kHz.";
  static constexpr const char* kCodec = "opus";
  using DecoderNode::DecoderNode;
};
SKIT_REGISTER_NODE(OpusDecoderNode);

class AacDecoderNode final : public DecoderNode<AacDecoderNode> {
 public:
  static constexpr std::string_view kKind = "audio::aac::decoder";
  static constexpr std::string_view kSummary = "AAC packets -> RawAudio f32.";
  static constexpr const char* kCodec = "aac";
  using DecoderNode::DecoderNode;
};
SKIT_REGISTER_NODE(AacDecoderNode);

/// RawAudio -> EncodedAudio. Opens the encoder on the first packet (its rate and channels),
/// feeds it whole frames of frame_size samples, pads the last one, drains at the end.
template <typename Self, typename P>
class EncoderNode : public NodeWithParams<P> {
 public:
  static constexpr std::string_view kCategory = "audio/codecs";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::raw_audio()}}}; }
  static std::vector<OutputPinSpec> outputs() {
    return {{"out", PacketType::encoded_audio(std::string(Self::kCodec))}};
  }
  static std::size_t max_packet_bytes(const P& /*p*/) { return 16 * 1024; }

  using NodeWithParams<P>::NodeWithParams;
  using NodeWithParams<P>::params;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    if (!encoder_) {
      SKIT_RETURN_IF_ERROR(open(ctx, packet.header.sample_rate, packet.header.channels));
      next_pts_ = std::max<std::int64_t>(packet.header.pts_us, 0);
    } else if (packet.header.sample_rate != rate_ || packet.header.channels != channels_) {
      return Status(ErrorCode::kInvalidArgument,
                    "audio format changed mid-stream (" + std::to_string(rate_) + " Hz/" +
                        std::to_string(channels_) + " ch -> " +
                        std::to_string(packet.header.sample_rate) + " Hz/" +
                        std::to_string(packet.header.channels) + " ch)");
    }
    const auto in = packet.samples();
    pending_.insert(pending_.end(), in.begin(), in.end());
    const std::size_t frame_floats = static_cast<std::size_t>(frame_size_) * channels_;
    std::size_t used = 0;
    while (pending_.size() - used >= frame_floats) {
      SKIT_RETURN_IF_ERROR(encode(ctx, std::span<const float>(pending_).subspan(used, frame_floats)));
      used += frame_floats;
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(used));
    return Status::ok();
  }

  Status finish(NodeContext& ctx) override {
    if (!encoder_) {
      return Status::ok();
    }
    if (!pending_.empty()) {
      const int real = static_cast<int>(pending_.size() / channels_);
      if ((encoder_->codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME) == 0) {
        pending_.resize(static_cast<std::size_t>(frame_size_) * channels_, 0.0F);
      }
      // A short last frame: the encoder pads it and marks the padding for trimming.
      SKIT_RETURN_IF_ERROR(encode(ctx, pending_, real));
      pending_.clear();
    }
    avcodec_send_frame(encoder_.get(), nullptr);
    return receive(ctx);
  }

 protected:
  /// Codec-specific options (bitrate, application...).
  virtual void configure(AVCodecContext& c) = 0;

 private:
  Status open(NodeContext& ctx, std::uint32_t rate, std::uint16_t channels) {
    const AVCodec* codec = avcodec_find_encoder_by_name(Self::kEncoderName);
    if (codec == nullptr) {
      return Status(ErrorCode::kInternal, std::string("libavcodec has no ") + Self::kEncoderName);
    }
    if (rate == 0 || channels == 0) {
      return Status(ErrorCode::kInvalidArgument, "input audio has no sample rate or channels");
    }
    SKIT_RETURN_IF_ERROR(Self::check_format(rate, channels));
    encoder_.reset(avcodec_alloc_context3(codec));
    AVCodecContext& c = *encoder_;
    c.sample_rate = static_cast<int>(rate);
    av_channel_layout_default(&c.ch_layout, channels);
    c.time_base = AVRational{1, static_cast<int>(rate)};
    c.flags |= AV_CODEC_FLAG_GLOBAL_HEADER;  // codec private data for the container
    c.sample_fmt = Self::kSampleFormat;
    configure(c);
    const int rc = avcodec_open2(&c, codec, nullptr);
    if (rc < 0) {
      return av::error(ErrorCode::kInvalidParam, std::string("cannot open ") + Self::kEncoderName, rc);
    }
    rate_ = rate;
    channels_ = channels;
    frame_size_ = c.frame_size > 0 ? c.frame_size : 1024;
    frame_ = av::make_frame();
    packet_ = av::make_packet();
    StreamInfo info;
    info.codec = Self::kCodec;
    info.sample_rate = rate;
    info.channels = channels;
    info.frame_size = static_cast<std::uint32_t>(frame_size_);
    info.initial_padding = c.initial_padding;
    info.bit_rate = c.bit_rate;
    info.content_type = std::string("audio/") + Self::kCodec;
    if (c.extradata != nullptr) {
      const auto* p = reinterpret_cast<const std::byte*>(c.extradata);
      info.extradata.assign(p, p + c.extradata_size);
    }
    return ctx.output(0).write_stream_info(info, PacketKind::kEncodedAudio);
  }

  Status encode(NodeContext& ctx, std::span<const float> interleaved, int real_samples = -1) {
    AVFrame& f = *frame_;
    av_frame_unref(&f);
    const int samples = static_cast<int>(interleaved.size() / channels_);
    f.nb_samples = samples;
    f.format = Self::kSampleFormat;
    f.sample_rate = static_cast<int>(rate_);
    av_channel_layout_default(&f.ch_layout, channels_);
    if (av_frame_get_buffer(&f, 0) < 0) {
      return Status(ErrorCode::kResourceExhausted, "out of memory");
    }
    if (Self::kSampleFormat == AV_SAMPLE_FMT_FLT) {
      std::memcpy(f.data[0], interleaved.data(), interleaved.size_bytes());
    } else {  // planar float
      for (int ch = 0; ch < channels_; ++ch) {
        auto* plane = reinterpret_cast<float*>(f.extended_data[ch]);
        for (int i = 0; i < samples; ++i) {
          plane[i] = interleaved[static_cast<std::size_t>(i) * channels_ + static_cast<std::size_t>(ch)];
        }
      }
    }
    f.pts = samples_in_;
    samples_in_ += real_samples >= 0 ? real_samples : samples;
    const int rc = avcodec_send_frame(encoder_.get(), &f);
    if (rc < 0) {
      return av::error(ErrorCode::kInternal, "encoding", rc);
    }
    return receive(ctx);
  }

  Status receive(NodeContext& ctx) {
    while (true) {
      const int rc = avcodec_receive_packet(encoder_.get(), packet_.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
        return Status::ok();
      }
      if (rc < 0) {
        return av::error(ErrorCode::kInternal, "encoding", rc);
      }
      const AVRational tb = encoder_->time_base;
      PacketHeader h{.kind = PacketKind::kEncodedAudio,
                     .pts_us = next_pts_ + av::to_us(packet_->pts, tb),
                     .duration_us = av::to_us(packet_->duration, tb),
                     .flags = kFlagKeyframe};
      av::read_trim(*packet_, h);
      if (packets_out_++ == 0 && h.trim_start == 0 && encoder_->initial_padding > 0) {
        // A decoder right behind us (no container) must also skip the priming samples.
        h.trim_start = static_cast<std::uint32_t>(encoder_->initial_padding);
      }
      Status s = ctx.output(0).write(
          {reinterpret_cast<const std::byte*>(packet_->data), static_cast<std::size_t>(packet_->size)}, h);
      av_packet_unref(packet_.get());
      SKIT_RETURN_IF_ERROR(s);
    }
  }

  av::CodecContextPtr encoder_;
  av::FramePtr frame_;
  av::PacketPtr packet_;
  std::vector<float> pending_;
  std::uint32_t rate_ = 0;
  std::uint16_t channels_ = 0;
  int frame_size_ = 0;
  std::int64_t samples_in_ = 0;
  std::uint64_t packets_out_ = 0;
  std::int64_t next_pts_ = 0;  // pts of the first input packet (us); packets follow from it
};

struct OpusEncoderParams {
  std::int64_t bitrate = 64000;
  double frame_size = 960;  // samples at 48 kHz (StreamKit's unit); 20 ms
  std::string application = "audio";
  std::int64_t complexity = 10;

  static void describe(ParamSchemaBuilder<OpusEncoderParams>& b) {
    b.field("bitrate", &OpusEncoderParams::bitrate, "Target bitrate in bits per second.")
        .range(6000, 510000);
    b.field("frame_size", &OpusEncoderParams::frame_size,
            "Samples per channel per packet at 48 kHz: 120, 240, 480, 960, 1920 or 2880 "
            "(2.5 to 60 ms).")
        .one_of({120, 240, 480, 960, 1920, 2880});
    b.field("application", &OpusEncoderParams::application,
            "Tuning: audio (music, general), voip (speech) or lowdelay.")
        .choices({"audio", "voip", "lowdelay"});
    b.field("complexity", &OpusEncoderParams::complexity,
            "Encoder effort, 0 (fastest) to 10 (best quality).")
        .range(0, 10);
  }
};

class OpusEncoderNode final : public EncoderNode<OpusEncoderNode, OpusEncoderParams> {
 public:
  static constexpr std::string_view kKind = "audio::opus::encoder";
  static constexpr std::string_view kSummary = "RawAudio (48/24/16/12/8 kHz) -> Opus packets (libopus).";
  static constexpr const char* kCodec = "opus";
  static constexpr const char* kEncoderName = "libopus";
  static constexpr AVSampleFormat kSampleFormat = AV_SAMPLE_FMT_FLT;
  using EncoderNode::EncoderNode;

  static Status check_format(std::uint32_t rate, std::uint16_t channels) {
    if (rate != 48000 && rate != 24000 && rate != 16000 && rate != 12000 && rate != 8000) {
      return Status(ErrorCode::kInvalidArgument,
                    "Opus encodes 48000, 24000, 16000, 12000 or 8000 Hz audio, got " +
                        std::to_string(rate) + " Hz (put an audio::resampler before it)");
    }
    if (channels > 2) {
      return Status(ErrorCode::kInvalidArgument, "Opus encodes mono or stereo here, got " +
                                                     std::to_string(channels) + " channels");
    }
    return Status::ok();
  }

 protected:
  void configure(AVCodecContext& c) override {
    c.bit_rate = params().bitrate;
    // frame_size is in 48 kHz samples; libopus takes the duration in ms.
    av_opt_set_double(c.priv_data, "frame_duration", params().frame_size / 48.0, 0);
    av_opt_set(c.priv_data, "application", params().application.c_str(), 0);
    c.compression_level = static_cast<int>(params().complexity);
  }
};
SKIT_REGISTER_NODE(OpusEncoderNode);

struct AacEncoderParams {
  std::int64_t bitrate = 128000;

  static void describe(ParamSchemaBuilder<AacEncoderParams>& b) {
    b.field("bitrate", &AacEncoderParams::bitrate, "Target bitrate in bits per second.")
        .range(16000, 576000);
  }
};

class AacEncoderNode final : public EncoderNode<AacEncoderNode, AacEncoderParams> {
 public:
  static constexpr std::string_view kKind = "audio::aac::encoder";
  static constexpr std::string_view kSummary = "RawAudio -> AAC-LC packets (libavcodec's aac).";
  static constexpr const char* kCodec = "aac";
  static constexpr const char* kEncoderName = "aac";
  static constexpr AVSampleFormat kSampleFormat = AV_SAMPLE_FMT_FLTP;
  using EncoderNode::EncoderNode;

  static Status check_format(std::uint32_t /*rate*/, std::uint16_t channels) {
    if (channels > 8) {
      return Status(ErrorCode::kInvalidArgument, "too many channels for AAC");
    }
    return Status::ok();
  }

 protected:
  void configure(AVCodecContext& c) override { c.bit_rate = params().bitrate; }
};
SKIT_REGISTER_NODE(AacEncoderNode);

}  // namespace
}  // namespace skit::nodes
