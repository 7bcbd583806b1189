// SPDX-License-Identifier: MPL-2.0
// Muxers on libavformat: EncodedAudio (or RawAudio for WAV) in, container bytes out as Binary
// packets of chunk_size. The stream is set up from the input's StreamInfo; the first output
// packet is a StreamInfo carrying the content type; end of stream writes the trailer.
//   containers::ogg::muxer, containers::webm::muxer, containers::mp4::muxer,
//   containers::wav::muxer.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ffmpeg/libav.hpp"
#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

struct OutputFormatDeleter {
  void operator()(AVFormatContext* f) const { avformat_free_context(f); }
};
using OutputFormatPtr = std::unique_ptr<AVFormatContext, OutputFormatDeleter>;

/// The libavformat side of every muxer node.
class LibavMuxer {
 public:
  /// Sets up `format` for one audio stream described by `info`; `options` go to the muxer.
  Status open(NodeContext& ctx, const char* format, const StreamInfo& info,
              std::size_t chunk_size, bool seekable, const char* content_type,
              AVDictionary** options) {
    writer_ = std::make_unique<av::AvioWriter>(ctx, chunk_size, seekable);
    AVFormatContext* raw = nullptr;
    int rc = avformat_alloc_output_context2(&raw, nullptr, format, nullptr);
    if (rc < 0 || raw == nullptr) {
      return av::error(ErrorCode::kInternal, std::string("no muxer for ") + format, rc);
    }
    fmt_.reset(raw);
    fmt_->pb = writer_->avio();
    fmt_->flags |= AVFMT_FLAG_CUSTOM_IO;
    AVStream* st = avformat_new_stream(fmt_.get(), nullptr);
    SKIT_RETURN_IF_ERROR(av::apply_stream_info(info, *st->codecpar));
    st->time_base = AVRational{1, static_cast<int>(std::max<std::uint32_t>(info.sample_rate, 1))};
    StreamInfo out_info;
    out_info.content_type = content_type;
    SKIT_RETURN_IF_ERROR(ctx.output(0).write_stream_info(out_info, PacketKind::kBinary));
    rc = avformat_write_header(fmt_.get(), options);
    if (rc < 0) {
      return writer_->failure().is_ok()
                 ? av::error(ErrorCode::kInvalidArgument,
                             std::string("cannot write a ") + format + " header for " + info.codec,
                             rc)
                 : writer_->failure();
    }
    packet_ = av::make_packet();
    return Status::ok();
  }

  [[nodiscard]] bool is_open() const { return fmt_ != nullptr; }

  Status write(std::span<const std::byte> data, std::int64_t pts_us, std::int64_t duration_us,
               const PacketHeader* header = nullptr) {
    AVStream* st = fmt_->streams[0];
    if (av_new_packet(packet_.get(), static_cast<int>(data.size())) < 0) {
      return Status(ErrorCode::kResourceExhausted, "out of memory");
    }
    std::memcpy(packet_->data, data.data(), data.size());
    if (pts_us < last_pts_us_) {
      pts_us = last_pts_us_;  // containers need monotonic timestamps
    }
    last_pts_us_ = pts_us;
    const std::int64_t ts = av_rescale_q(pts_us, av::kMicroseconds, st->time_base);
    packet_->pts = packet_->dts = ts;
    packet_->duration = av_rescale_q(duration_us, av::kMicroseconds, st->time_base);
    packet_->stream_index = 0;
    if (header != nullptr) {
      av::write_trim(*header, *packet_);  // end padding -> container (WebM DiscardPadding)
    }
    const int rc = av_write_frame(fmt_.get(), packet_.get());
    av_packet_unref(packet_.get());
    if (rc < 0) {
      return writer_->failure().is_ok() ? av::error(ErrorCode::kInternal, "muxing", rc)
                                        : writer_->failure();
    }
    // Live output: what the muxer has finished (an Ogg page, a WebM cluster) leaves now rather
    // than when a chunk fills up, so a file or a listener sees the stream as it is made.
    return writer_->flush_streaming();
  }

  Status close() {
    if (!fmt_) {
      return Status::ok();
    }
    const int rc = av_write_trailer(fmt_.get());
    if (rc < 0) {
      return writer_->failure().is_ok() ? av::error(ErrorCode::kInternal, "writing the trailer", rc)
                                        : writer_->failure();
    }
    return writer_->flush_all();
  }

 private:
  std::unique_ptr<av::AvioWriter> writer_;
  OutputFormatPtr fmt_;
  av::PacketPtr packet_;
  std::int64_t last_pts_us_ = std::numeric_limits<std::int64_t>::min();
};

/// EncodedAudio muxers; Self supplies the format, content type, params and checks.
template <typename Self, typename P>
class EncodedMuxerNode : public NodeWithParams<P> {
 public:
  static constexpr std::string_view kCategory = "containers";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::encoded_audio()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::binary()}}; }
  static std::size_t max_packet_bytes(const P& p) {
    return static_cast<std::size_t>(p.chunk_size);
  }

  using NodeWithParams<P>::NodeWithParams;
  using NodeWithParams<P>::params;

  Status on_stream_info(NodeContext& ctx, std::size_t /*input*/, const StreamInfo& info) override {
    if (mux_.is_open()) {
      return Status::ok();
    }
    SKIT_RETURN_IF_ERROR(static_cast<Self*>(this)->accepts(info));
    AVDictionary* options = nullptr;
    static_cast<Self*>(this)->muxer_options(&options);
    Status s = mux_.open(ctx, Self::kFormat, info, static_cast<std::size_t>(params().chunk_size),
                         static_cast<Self*>(this)->seekable(), Self::kContentType, &options);
    av_dict_free(&options);
    return s;
  }

  Status process(NodeContext& /*ctx*/, const PacketView& packet) override {
    if (!mux_.is_open()) {
      return Status(ErrorCode::kInvalidArgument,
                    "received audio before its stream info (is an encoder or demuxer upstream?)");
    }
    return mux_.write(packet.data, packet.header.pts_us,
                      packet.header.duration_us, &packet.header);
  }

  Status finish(NodeContext& /*ctx*/) override { return mux_.close(); }

 protected:
  LibavMuxer mux_;
};

struct OggMuxerParams {
  std::int64_t channels = 1;
  std::int64_t chunk_size = 65536;
  std::string codec = "opus";
  std::int64_t stream_serial = 0;

  static void describe(ParamSchemaBuilder<OggMuxerParams>& b) {
    b.field("channels", &OggMuxerParams::channels,
            "Channel count (informational: the stream's own count is used).")
        .range(1, 8);
    b.field("chunk_size", &OggMuxerParams::chunk_size, "Bytes per output packet.")
        .range(512, 16 * 1024 * 1024);
    b.field("codec", &OggMuxerParams::codec, "Codec carried in the Ogg stream.")
        .choices({"opus", "vorbis", "flac"});
    b.field("stream_serial", &OggMuxerParams::stream_serial,
            "Ogg bitstream serial number (0 = libavformat's choice).")
        .range(0, 4294967295.0);
  }
};

class OggMuxerNode final : public EncodedMuxerNode<OggMuxerNode, OggMuxerParams> {
 public:
  static constexpr std::string_view kKind = "containers::ogg::muxer";
  static constexpr std::string_view kSummary = "Opus (or Vorbis/FLAC) packets -> an Ogg stream.";
  static constexpr const char* kFormat = "ogg";
  static constexpr const char* kContentType = "audio/ogg";
  using EncodedMuxerNode::EncodedMuxerNode;

  Status accepts(const StreamInfo& info) const {
    if (info.codec != params().codec) {
      return Status(ErrorCode::kInvalidArgument, "the Ogg muxer is set for '" + params().codec +
                                                     "' but receives '" + info.codec + "'");
    }
    return Status::ok();
  }
  void muxer_options(AVDictionary** options) const {
    if (params().stream_serial != 0) {
      av_dict_set_int(options, "serial_offset", params().stream_serial, 0);
    }
  }
  bool seekable() const { return false; }
};
SKIT_REGISTER_NODE(OggMuxerNode);

struct WebmMuxerParams {
  std::int64_t channels = 2;
  std::int64_t sample_rate = 48000;
  std::int64_t chunk_size = 65536;
  std::string streaming_mode = "live";

  static void describe(ParamSchemaBuilder<WebmMuxerParams>& b) {
    b.field("channels", &WebmMuxerParams::channels,
            "Channel count (informational: the stream's own count is used).")
        .range(1, 8);
    b.field("sample_rate", &WebmMuxerParams::sample_rate,
            "Sample rate (informational: the stream's own rate is used).")
        .range(8000, 192000);
    b.field("chunk_size", &WebmMuxerParams::chunk_size, "Bytes per output packet.")
        .range(512, 16 * 1024 * 1024);
    b.field("streaming_mode", &WebmMuxerParams::streaming_mode,
            "live: streamable as produced, no duration or cues; file: buffered, with duration "
            "and cues (seekable file), sent at the end.")
        .choices({"live", "file"});
  }
};

class WebmMuxerNode final : public EncodedMuxerNode<WebmMuxerNode, WebmMuxerParams> {
 public:
  static constexpr std::string_view kKind = "containers::webm::muxer";
  static constexpr std::string_view kSummary = "Opus packets -> a WebM stream.";
  static constexpr const char* kFormat = "webm";
  static constexpr const char* kContentType = "audio/webm; codecs=\"opus\"";
  using EncodedMuxerNode::EncodedMuxerNode;

  Status accepts(const StreamInfo& info) const {
    if (info.codec != "opus" && info.codec != "vorbis") {
      return Status(ErrorCode::kInvalidArgument,
                    "WebM carries Opus or Vorbis audio, got '" + info.codec + "'");
    }
    return Status::ok();
  }
  void muxer_options(AVDictionary** options) const {
    if (params().streaming_mode == "live") {
      av_dict_set(options, "live", "1", 0);
    }
  }
  bool seekable() const { return params().streaming_mode == "file"; }
};
SKIT_REGISTER_NODE(WebmMuxerNode);

struct Mp4MuxerParams {
  std::string mode = "file";
  std::int64_t chunk_size = 65536;

  static void describe(ParamSchemaBuilder<Mp4MuxerParams>& b) {
    b.field("mode", &Mp4MuxerParams::mode,
            "file: a regular MP4, buffered and sent at the end; stream: fragmented MP4 "
            "(fMP4) sent as it is produced, for MSE/DASH/HLS.")
        .choices({"file", "stream"});
    b.field("chunk_size", &Mp4MuxerParams::chunk_size, "Bytes per output packet.")
        .range(512, 16 * 1024 * 1024);
  }
};

class Mp4MuxerNode final : public EncodedMuxerNode<Mp4MuxerNode, Mp4MuxerParams> {
 public:
  static constexpr std::string_view kKind = "containers::mp4::muxer";
  static constexpr std::string_view kSummary = "AAC or Opus packets -> MP4 (file) or fMP4 (stream).";
  static constexpr const char* kFormat = "mp4";
  static constexpr const char* kContentType = "audio/mp4";
  using EncodedMuxerNode::EncodedMuxerNode;

  Status accepts(const StreamInfo& info) const {
    if (info.codec != "aac" && info.codec != "opus") {
      return Status(ErrorCode::kInvalidArgument,
                    "the MP4 muxer takes AAC or Opus audio, got '" + info.codec + "'");
    }
    return Status::ok();
  }
  void muxer_options(AVDictionary** options) const {
    if (params().mode == "stream") {
      av_dict_set(options, "movflags", "frag_keyframe+empty_moov+default_base_moof", 0);
    }
  }
  bool seekable() const { return params().mode == "file"; }
};
SKIT_REGISTER_NODE(Mp4MuxerNode);

struct WavMuxerParams {
  std::int64_t chunk_size = 65536;
  std::string sample_format = "s16";

  static void describe(ParamSchemaBuilder<WavMuxerParams>& b) {
    b.field("chunk_size", &WavMuxerParams::chunk_size, "Bytes per output packet.")
        .range(512, 16 * 1024 * 1024);
    b.field("sample_format", &WavMuxerParams::sample_format,
            "PCM sample format: s16 (16-bit integer) or f32 (32-bit float).")
        .choices({"s16", "f32"});
  }
};

/// RawAudio f32 -> WAV (PCM). Buffered: the RIFF header carries the final sizes.
class WavMuxerNode final : public NodeWithParams<WavMuxerParams> {
 public:
  static constexpr std::string_view kKind = "containers::wav::muxer";
  static constexpr std::string_view kSummary = "RawAudio -> WAV (16-bit or float PCM).";
  static constexpr std::string_view kCategory = "containers";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::raw_audio()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::binary()}}; }
  static std::size_t max_packet_bytes(const Params& p) {
    return static_cast<std::size_t>(p.chunk_size);
  }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    const bool f32 = params().sample_format == "f32";
    if (!mux_.is_open()) {
      StreamInfo info;
      info.codec = f32 ? "pcm_f32le" : "pcm_s16le";
      info.sample_rate = packet.header.sample_rate;
      info.channels = packet.header.channels;
      AVDictionary* options = nullptr;
      SKIT_RETURN_IF_ERROR(mux_.open(ctx, "wav", info, static_cast<std::size_t>(params().chunk_size),
                                     true, "audio/wav", &options));
      rate_ = packet.header.sample_rate;
      channels_ = packet.header.channels;
    }
    const auto in = packet.samples();
    const std::int64_t pts = samples_written_ * 1000000 / std::max<std::uint32_t>(rate_, 1);
    samples_written_ += static_cast<std::int64_t>(in.size() / std::max<std::uint16_t>(channels_, 1));
    if (f32) {
      return mux_.write(std::as_bytes(in), pts, packet.header.duration_us);
    }
    pcm_.resize(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
      const float v = std::clamp(in[i], -1.0F, 1.0F);  // saturate, never wrap around
      pcm_[i] = static_cast<std::int16_t>(std::lrint(v * 32767.0F));
    }
    return mux_.write(std::as_bytes(std::span<const std::int16_t>(pcm_)), pts, packet.header.duration_us);
  }

  Status finish(NodeContext& /*ctx*/) override { return mux_.close(); }

 private:
  LibavMuxer mux_;
  std::vector<std::int16_t> pcm_;
  std::uint32_t rate_ = 0;
  std::uint16_t channels_ = 0;
  std::int64_t samples_written_ = 0;
};
SKIT_REGISTER_NODE(WavMuxerNode);

}  // namespace
}  // namespace skit::nodes
