// SPDX-License-Identifier: MPL-2.0
// Demuxers on libavformat. Each reads its Binary input as a byte stream (pull mode), announces
// the audio stream with a StreamInfo packet, then emits one EncodedAudio packet per container
// packet with pts/duration in microseconds:
//   containers::ogg::demuxer, containers::mp4::demuxer, containers::auto::demuxer (any format
//   libavformat probes). containers::wav::demuxer, audio::flac::decoder and audio::mp3::decoder
//   (StreamKit's Binary-in decoders) also decode to RawAudio f32.
#include <algorithm>
#include <cstring>
#include <set>

#include "ffmpeg/libav.hpp"
#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

using av::AvioReader;

struct FormatContextDeleter {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatContextDeleter>;

/// Follows Ogg page framing in the raw bytes, to tell a complete stream (every logical
/// stream closed by an end-of-stream page) from one cut short, which libavformat reads as a
/// normal end.
class OggPageTracker {
 public:
  void feed(std::span<const std::byte> bytes) {
    for (std::size_t i = 0; i < bytes.size() && !lost_sync_;) {
      if (body_left_ > 0) {
        const std::size_t n = std::min<std::size_t>(body_left_, bytes.size() - i);
        body_left_ -= n;
        i += n;
        if (body_left_ == 0) {
          page_done();
        }
        continue;
      }
      header_.push_back(static_cast<std::uint8_t>(bytes[i++]));
      if (header_.size() == 27) {
        if (header_[0] != 'O' || header_[1] != 'g' || header_[2] != 'g' || header_[3] != 'S') {
          lost_sync_ = true;  // not plain page-after-page: leave the judgement to libavformat
        }
      } else if (header_.size() > 27 && header_.size() == 27U + header_[26]) {
        std::size_t body = 0;
        for (std::size_t k = 27; k < header_.size(); ++k) {
          body += header_[k];
        }
        body_left_ = body;
        if (body == 0) {
          page_done();
        }
      } else if (header_.size() == 27 && header_[26] == 0) {
        page_done();
      }
    }
  }

  /// Empty if the stream ended cleanly; otherwise why it looks truncated.
  [[nodiscard]] std::string truncation() const {
    if (lost_sync_) {
      return {};
    }
    if (!header_.empty() || body_left_ > 0) {
      return "the input ends inside an Ogg page (the file is cut short)";
    }
    for (std::uint32_t serial : open_) {
      if (!ended_.contains(serial)) {
        return "the Ogg stream has no end-of-stream page (the file is cut short)";
      }
    }
    return {};
  }

 private:
  void page_done() {
    const std::uint8_t flags = header_[5];
    const std::uint32_t serial = header_[14] | (header_[15] << 8) | (header_[16] << 16) |
                                 (static_cast<std::uint32_t>(header_[17]) << 24);
    if ((flags & 0x02) != 0) {
      open_.insert(serial);
    }
    if ((flags & 0x04) != 0) {
      ended_.insert(serial);
    }
    header_.clear();
  }

  std::vector<std::uint8_t> header_;
  std::size_t body_left_ = 0;
  bool lost_sync_ = false;
  std::set<std::uint32_t> open_;
  std::set<std::uint32_t> ended_;
};

/// Reads a whole input into memory and serves it seekably: MP4 keeps its index (moov) at the
/// end, which a forward-only stream cannot reach.
class BufferedInput {
 public:
  Status load(NodeContext& ctx) {
    std::vector<std::byte> chunk(64 * 1024);
    while (true) {
      auto n = ctx.read_input(chunk);
      if (!n) {
        return n.status();
      }
      if (*n == 0) {
        break;
      }
      data_.insert(data_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(*n));
    }
    auto* buffer = static_cast<std::uint8_t*>(av_malloc(64 * 1024));
    avio_ = avio_alloc_context(buffer, 64 * 1024, 0, this, &BufferedInput::read, nullptr,
                               &BufferedInput::seek);
    return Status::ok();
  }
  BufferedInput() = default;
  BufferedInput(const BufferedInput&) = delete;
  BufferedInput& operator=(const BufferedInput&) = delete;
  ~BufferedInput() {
    if (avio_ != nullptr) {
      av_freep(&avio_->buffer);
      avio_context_free(&avio_);
    }
  }
  [[nodiscard]] AVIOContext* avio() const { return avio_; }
  [[nodiscard]] std::int64_t position() const { return pos_; }
  [[nodiscard]] std::size_t size() const { return data_.size(); }

 private:
  static int read(void* opaque, std::uint8_t* buf, int size) {
    auto* self = static_cast<BufferedInput*>(opaque);
    const auto left = static_cast<std::int64_t>(self->data_.size()) - self->pos_;
    if (left <= 0) {
      return AVERROR_EOF;
    }
    const int n = static_cast<int>(std::min<std::int64_t>(left, size));
    std::memcpy(buf, self->data_.data() + self->pos_, static_cast<std::size_t>(n));
    self->pos_ += n;
    return n;
  }
  static std::int64_t seek(void* opaque, std::int64_t offset, int whence) {
    auto* self = static_cast<BufferedInput*>(opaque);
    switch (whence & ~AVSEEK_FORCE) {
      case SEEK_SET: self->pos_ = offset; break;
      case SEEK_CUR: self->pos_ += offset; break;
      case SEEK_END: self->pos_ = static_cast<std::int64_t>(self->data_.size()) + offset; break;
      case AVSEEK_SIZE: return static_cast<std::int64_t>(self->data_.size());
      default: return -1;
    }
    return self->pos_;
  }
  std::vector<std::byte> data_;
  AVIOContext* avio_ = nullptr;
  std::int64_t pos_ = 0;
};

/// How much of a streamed input libavformat may read to probe its format and streams.
constexpr std::int64_t kStreamProbeBytes = 32 * 1024;
constexpr std::int64_t kStreamAnalyzeMicros = 500 * 1000;

/// Demuxing shared by every container node; `decode` turns it into a demux+decode node.
class LibavDemuxer {
 public:
  LibavDemuxer(std::string_view kind, const char* format, const char* display,
               bool buffer_whole_input)
      : kind_(kind), format_(format), display_(display), buffered_(buffer_whole_input) {}

  /// Opens the container and picks the first audio stream.
  Status open(NodeContext& ctx) {
    AVIOContext* avio = nullptr;
    if (buffered_) {
      SKIT_RETURN_IF_ERROR(whole_.load(ctx));
      if (whole_.size() == 0) {
        return Status(ErrorCode::kCorruptMedia, "empty input: no " + describe() + " data");
      }
      avio = whole_.avio();
    } else {
      reader_ = std::make_unique<AvioReader>(ctx);
      if (format_ != nullptr && std::string_view(format_) == "ogg") {
        reader_->observer = [this](std::span<const std::byte> bytes) { ogg_.feed(bytes); };
      }
      avio = reader_->avio();
    }
    AVFormatContext* raw = avformat_alloc_context();
    raw->pb = avio;
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (!buffered_) {
      // A stream (an upload still arriving, a live source): libavformat would otherwise read
      // up to 5 MB or 5 s of it before the first packet comes out. Audio containers tell
      // their format and codec parameters in the first pages.
      raw->probesize = kStreamProbeBytes;
      raw->format_probesize = kStreamProbeBytes;
      raw->max_analyze_duration = kStreamAnalyzeMicros;
    }
    const AVInputFormat* fmt = format_ != nullptr ? av_find_input_format(format_) : nullptr;
    int rc = avformat_open_input(&raw, nullptr, fmt, nullptr);
    if (rc < 0) {  // avformat_open_input frees raw on failure
      return input_error("not a readable " + describe() + " stream", rc);
    }
    fmt_.reset(raw);
    rc = avformat_find_stream_info(fmt_.get(), nullptr);
    if (rc < 0) {
      return input_error("cannot read the " + describe() + " stream info", rc);
    }
    stream_ = av_find_best_stream(fmt_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
    if (stream_ < 0) {
      return input_error("no audio stream in the " + describe() + " input", stream_);
    }
    return Status::ok();
  }

  [[nodiscard]] const AVStream& stream() const { return *fmt_->streams[stream_]; }

  /// The next packet of the audio stream; false at the end. `log` catches problems that
  /// libavformat only logs (a page failing its CRC is skipped, silently losing audio).
  Result<bool> next(AVPacket& pkt, av::LogScope& log) {
    while (true) {
      av_packet_unref(&pkt);
      const int rc = av_read_frame(fmt_.get(), &pkt);
      if (const std::string logged = log.take_error(); !logged.empty() && rc != AVERROR_EXIT) {
        return input_error("corrupt " + describe() + " data (" + logged + ")", 0);
      }
      if (rc == AVERROR_EOF) {
        if (const std::string cut = ogg_.truncation(); !cut.empty()) {
          return input_error("truncated " + describe() + " stream: " + cut, 0);
        }
        return false;
      }
      if (rc < 0) {
        return input_error("corrupt " + describe() + " data", rc);
      }
      if (pkt.stream_index == stream_) {
        ++packets_;
        return true;
      }
    }
  }

  Status input_error(const std::string& what, int rc) const {
    if (reader_ && !reader_->failure().is_ok()) {
      return reader_->failure();  // cancelled, or upstream failed: not the media's fault
    }
    const std::int64_t total = buffered_ ? static_cast<std::int64_t>(whole_.size())
                                         : (reader_ ? reader_->bytes_read() : 0);
    if (total == 0 && packets_ == 0) {
      return Status(ErrorCode::kCorruptMedia, "empty input: no " + describe() + " data");
    }
    const std::int64_t offset = buffered_ ? whole_.position() : total;
    std::string where = " (near byte offset " + std::to_string(offset);
    if (packets_ > 0) {
      where += ", after packet " + std::to_string(packets_);
    }
    where += ")";
    if (rc == AVERROR_EOF && packets_ == 0) {
      return Status(ErrorCode::kCorruptMedia, "no " + describe() + " data found in the " +
                                                  std::to_string(total) + " bytes of input");
    }
    return Status(ErrorCode::kCorruptMedia,
                  what + where + (rc != 0 ? ": " + av::error_text(rc) : std::string()));
  }

 private:
  std::string describe() const { return display_; }

  std::string kind_;
  const char* format_;
  std::string display_;
  OggPageTracker ogg_;
  bool buffered_;
  BufferedInput whole_;
  std::unique_ptr<AvioReader> reader_;
  FormatPtr fmt_;
  int stream_ = -1;
  std::int64_t packets_ = 0;
};

std::string content_type_for(const std::string& codec) {
  return "audio/" + codec;
}

/// Container -> EncodedAudio packets.
template <typename Self>
class EncodedDemuxerNode : public NodeWithParams<NoParams> {
 public:
  static constexpr bool kPullsInput = true;
  static constexpr std::string_view kCategory = "containers";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::binary()}}}; }
  static std::vector<OutputPinSpec> outputs() {
    return {{"out", PacketType::encoded_audio()}};
  }
  static std::size_t max_packet_bytes(const NoParams& /*p*/) { return 256 * 1024; }

  using NodeWithParams::NodeWithParams;

  Result<Produced> produce(NodeContext& ctx) override {
    av::LogScope log(ctx);
    if (!demuxer_) {
      demuxer_ = std::make_unique<LibavDemuxer>(Self::kKind, Self::kFormat, Self::kDisplay,
                                                Self::kBuffered);
      SKIT_RETURN_IF_ERROR(demuxer_->open(ctx));
      const AVStream& st = demuxer_->stream();
      StreamInfo info = av::stream_info_from(*st.codecpar);
      info.content_type = content_type_for(info.codec);
      if (st.duration != AV_NOPTS_VALUE) {
        info.duration_us = av::to_us(st.duration, st.time_base);
      }
      start_pts_ = st.start_time != AV_NOPTS_VALUE ? st.start_time : 0;
      SKIT_RETURN_IF_ERROR(ctx.output(0).write_stream_info(info, PacketKind::kEncodedAudio));
      packet_ = av::make_packet();
    }
    auto more = demuxer_->next(*packet_, log);
    if (!more) {
      return more.status();
    }
    if (!*more) {
      return Produced::kDone;
    }
    const AVStream& st = demuxer_->stream();
    const std::int64_t pts = packet_->pts != AV_NOPTS_VALUE ? packet_->pts - start_pts_ : AV_NOPTS_VALUE;
    PacketHeader h{.kind = PacketKind::kEncodedAudio,
                   .pts_us = av::to_us(pts, st.time_base),
                   .duration_us = std::max<std::int64_t>(av::to_us(packet_->duration, st.time_base), 0),
                   .flags = (packet_->flags & AV_PKT_FLAG_KEY) != 0 ? kFlagKeyframe : kFlagNone};
    av::read_trim(*packet_, h);
    SKIT_RETURN_IF_ERROR(ctx.output(0).write(
        {reinterpret_cast<const std::byte*>(packet_->data), static_cast<std::size_t>(packet_->size)}, h));
    return Produced::kMore;
  }

 private:
  std::unique_ptr<LibavDemuxer> demuxer_;
  av::PacketPtr packet_;
  std::int64_t start_pts_ = 0;
};

class OggDemuxerNode final : public EncodedDemuxerNode<OggDemuxerNode> {
 public:
  static constexpr std::string_view kKind = "containers::ogg::demuxer";
  static constexpr std::string_view kSummary = "Ogg (Opus, Vorbis, FLAC) -> encoded audio packets.";
  static constexpr const char* kFormat = "ogg";
  static constexpr const char* kDisplay = "Ogg";
  static constexpr bool kBuffered = false;
  using EncodedDemuxerNode::EncodedDemuxerNode;
};
SKIT_REGISTER_NODE(OggDemuxerNode);

class Mp4DemuxerNode final : public EncodedDemuxerNode<Mp4DemuxerNode> {
 public:
  static constexpr std::string_view kKind = "containers::mp4::demuxer";
  static constexpr std::string_view kSummary =
      "MP4/M4A (AAC, Opus) -> encoded audio packets. Buffers the input: MP4 indexes at the end.";
  static constexpr const char* kFormat = "mov,mp4,m4a,3gp,3g2,mj2";
  static constexpr const char* kDisplay = "MP4";
  static constexpr bool kBuffered = true;
  using EncodedDemuxerNode::EncodedDemuxerNode;
};
SKIT_REGISTER_NODE(Mp4DemuxerNode);

class AutoDemuxerNode final : public EncodedDemuxerNode<AutoDemuxerNode> {
 public:
  static constexpr std::string_view kKind = "containers::auto::demuxer";
  static constexpr std::string_view kSummary =
      "Any container libavformat recognizes (probed) -> encoded audio packets of its first "
      "audio stream. Buffers the input so seek-dependent formats (MP4) work.";
  static constexpr const char* kFormat = nullptr;
  static constexpr const char* kDisplay = "media";
  static constexpr bool kBuffered = true;
  using EncodedDemuxerNode::EncodedDemuxerNode;
};
SKIT_REGISTER_NODE(AutoDemuxerNode);

/// Container -> decoded RawAudio f32 (the demuxer and the decoder in one node).
template <typename Self>
class DecodingDemuxerNode : public NodeWithParams<NoParams> {
 public:
  static constexpr bool kPullsInput = true;
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::binary()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::raw_audio()}}; }
  static std::size_t max_packet_bytes(const NoParams& /*p*/) { return 128 * 1024; }

  using NodeWithParams::NodeWithParams;

  Result<Produced> produce(NodeContext& ctx) override {
    av::LogScope log(ctx);
    if (!demuxer_) {
      demuxer_ = std::make_unique<LibavDemuxer>(Self::kKind, Self::kFormat, Self::kDisplay, false);
      SKIT_RETURN_IF_ERROR(demuxer_->open(ctx));
      const AVStream& st = demuxer_->stream();
      const AVCodec* codec = avcodec_find_decoder(st.codecpar->codec_id);
      if (codec == nullptr) {
        return Status(ErrorCode::kCorruptMedia,
                      "no decoder for " + av::codec_name(st.codecpar->codec_id));
      }
      decoder_.reset(avcodec_alloc_context3(codec));
      avcodec_parameters_to_context(decoder_.get(), st.codecpar);
      decoder_->pkt_timebase = st.time_base;
      const int rc = avcodec_open2(decoder_.get(), codec, nullptr);
      if (rc < 0) {
        return av::error(ErrorCode::kCorruptMedia, "cannot open the decoder", rc);
      }
      packet_ = av::make_packet();
      frame_ = av::make_frame();
    }
    auto more = demuxer_->next(*packet_, log);
    if (!more) {
      return more.status();
    }
    int rc = avcodec_send_packet(decoder_.get(), *more ? packet_.get() : nullptr);
    if (rc < 0 && rc != AVERROR_EOF) {
      return demuxer_->input_error("corrupt " + std::string(Self::kDisplay) + " audio packet", rc);
    }
    SKIT_RETURN_IF_ERROR(receive(ctx));
    return *more ? Produced::kMore : Produced::kDone;
  }

 private:
  Status receive(NodeContext& ctx) {
    while (true) {
      const int rc = avcodec_receive_frame(decoder_.get(), frame_.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
        return Status::ok();
      }
      if (rc < 0) {
        return demuxer_->input_error("cannot decode", rc);
      }
      SKIT_RETURN_IF_ERROR(convert_.convert(*frame_, samples_));
      if (next_pts_ < 0) {
        next_pts_ = std::max<std::int64_t>(
            av::to_us(frame_->best_effort_timestamp, demuxer_->stream().time_base), 0);
      }
      auto pts = av::write_audio(ctx, 0, samples_, static_cast<std::uint32_t>(frame_->sample_rate),
                                 static_cast<std::uint16_t>(frame_->ch_layout.nb_channels), next_pts_);
      if (!pts) {
        return pts.status();
      }
      next_pts_ = *pts;
      av_frame_unref(frame_.get());
    }
  }

  std::unique_ptr<LibavDemuxer> demuxer_;
  av::CodecContextPtr decoder_;
  av::PacketPtr packet_;
  av::FramePtr frame_;
  av::ToInterleavedF32 convert_;
  std::vector<float> samples_;
  std::int64_t next_pts_ = -1;
};

class WavDemuxerNode final : public DecodingDemuxerNode<WavDemuxerNode> {
 public:
  static constexpr std::string_view kKind = "containers::wav::demuxer";
  static constexpr std::string_view kSummary = "WAV (PCM) -> RawAudio f32 at the file's rate.";
  static constexpr std::string_view kCategory = "containers";
  static constexpr const char* kFormat = "wav";
  static constexpr const char* kDisplay = "WAV";
  using DecodingDemuxerNode::DecodingDemuxerNode;
};
SKIT_REGISTER_NODE(WavDemuxerNode);

class FlacDecoderNode final : public DecodingDemuxerNode<FlacDecoderNode> {
 public:
  static constexpr std::string_view kKind = "audio::flac::decoder";
  static constexpr std::string_view kSummary = "A FLAC file (Binary) -> RawAudio f32.";
  static constexpr std::string_view kCategory = "audio/codecs";
  static constexpr const char* kFormat = "flac";
  static constexpr const char* kDisplay = "FLAC";
  using DecodingDemuxerNode::DecodingDemuxerNode;
};
SKIT_REGISTER_NODE(FlacDecoderNode);

class Mp3DecoderNode final : public DecodingDemuxerNode<Mp3DecoderNode> {
 public:
  static constexpr std::string_view kKind = "audio::mp3::decoder";
  static constexpr std::string_view kSummary = "An MP3 file (Binary) -> RawAudio f32.";
  static constexpr std::string_view kCategory = "audio/codecs";
  static constexpr const char* kFormat = "mp3";
  static constexpr const char* kDisplay = "MP3";
  using DecodingDemuxerNode::DecodingDemuxerNode;
};
SKIT_REGISTER_NODE(Mp3DecoderNode);

}  // namespace
}  // namespace skit::nodes
