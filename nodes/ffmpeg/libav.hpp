// SPDX-License-Identifier: MPL-2.0
// Shared FFmpeg (libav*) plumbing for the media nodes: RAII handles, error text, time base
// conversion, StreamInfo <-> AVCodecParameters, AVIO adapters over the node runtime, and
// sample conversion to and from interleaved f32. Nodes keep FFmpeg out of core/.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include <cstdarg>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/stream_info.hpp"

namespace skit::nodes::av {

/// "Invalid data found when processing input" for an AVERROR code.
std::string error_text(int code);
/// A Status for a failed libav call: "what: error text".
Status error(ErrorCode code, const std::string& what, int av_code);

struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwrDeleter {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;

inline FramePtr make_frame() { return FramePtr(av_frame_alloc()); }
inline PacketPtr make_packet() { return PacketPtr(av_packet_alloc()); }

constexpr AVRational kMicroseconds{1, 1000000};
/// Timestamp in `tb` to microseconds (AV_NOPTS_VALUE -> -1).
std::int64_t to_us(std::int64_t ts, AVRational tb);
/// Microseconds to `tb` (negative -> AV_NOPTS_VALUE).
std::int64_t from_us(std::int64_t us, AVRational tb);

/// Trimming (AV_PKT_DATA_SKIP_SAMPLES side data) <-> PacketHeader::trim_start/trim_end.
void read_trim(const AVPacket& packet, PacketHeader& header);
void write_trim(const PacketHeader& header, AVPacket& packet);

/// Routes FFmpeg's log lines to the calling node's logger (never raw to stderr) and records
/// the first error-level line of the current scope, so nodes can fail on problems that
/// libavformat only logs (an Ogg page with a bad CRC is skipped with just a log line).
class LogScope {
 public:
  explicit LogScope(NodeContext& ctx);
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;
  ~LogScope();
  /// The first error logged in this scope (empty if none), and forgets it.
  std::string take_error();
  /// Lines of this scope containing `secret` are logged with it replaced by "***".
  void redact(std::string secret) { secret_ = std::move(secret); }
  /// Keeps warning and error lines (redacted) for take_warnings().
  void keep_warnings() { keep_warnings_ = true; }
  std::vector<std::string> take_warnings() { return std::exchange(warnings_, {}); }
  /// Routes FFmpeg's log through spdlog (done once, at load time).
  static void install_bridge();

 private:
  static void bridge(void* avcl, int level, const char* fmt, va_list args);
  LogScope* previous_;
  spdlog::logger* logger_;
  std::string first_error_;
  std::string secret_;
  bool keep_warnings_ = false;
  std::vector<std::string> warnings_;
};

/// Codec name as StreamInfo spells it ("opus", "aac", "flac", "mp3", "pcm_s16le").
std::string codec_name(AVCodecID id);
AVCodecID codec_id(const std::string& name);

StreamInfo stream_info_from(const AVCodecParameters& par);
/// Fills codec type/id/rate/channels/extradata/padding of `par` from `info`.
Status apply_stream_info(const StreamInfo& info, AVCodecParameters& par);

/// An AVIOContext that reads the node's input 0 through NodeContext::read_input().
/// It counts bytes so errors can say where in the input they happened.
class AvioReader {
 public:
  explicit AvioReader(NodeContext& ctx);
  AvioReader(const AvioReader&) = delete;
  AvioReader& operator=(const AvioReader&) = delete;
  ~AvioReader();
  [[nodiscard]] AVIOContext* avio() const { return avio_; }
  [[nodiscard]] std::int64_t bytes_read() const { return bytes_read_; }
  /// The error read_input() returned, if reading stopped on one (cancellation, upstream).
  [[nodiscard]] const Status& failure() const { return failure_; }
  /// True once read_input() reported the end of the input.
  [[nodiscard]] bool at_end() const { return at_end_; }
  /// Sees every byte read, in order (e.g. to check container framing).
  std::function<void(std::span<const std::byte>)> observer;

 private:
  static int read(void* opaque, std::uint8_t* buf, int size);
  NodeContext& ctx_;
  AVIOContext* avio_ = nullptr;
  std::int64_t bytes_read_ = 0;
  bool at_end_ = false;
  Status failure_;
};

/// An AVIOContext whose writes become Binary packets of at most `chunk_size` bytes on
/// output 0. With `buffer_all`, everything is kept (seekable) and sent by flush_all(): for
/// containers that rewrite their header at the end (MP4 fast start, WAV sizes).
class AvioWriter {
 public:
  AvioWriter(NodeContext& ctx, std::size_t chunk_size, bool buffer_all);
  AvioWriter(const AvioWriter&) = delete;
  AvioWriter& operator=(const AvioWriter&) = delete;
  ~AvioWriter();
  [[nodiscard]] AVIOContext* avio() const { return avio_; }
  /// Sends buffered bytes (all of them with buffer_all) as packets.
  Status flush_all();
  /// Streaming mode: sends what the muxer has written so far (nothing with buffer_all).
  Status flush_streaming();
  [[nodiscard]] const Status& failure() const { return failure_; }
  [[nodiscard]] std::int64_t bytes_written() const { return bytes_written_; }

 private:
  static int write(void* opaque, std::uint8_t* buf, int size);
  static std::int64_t seek(void* opaque, std::int64_t offset, int whence);
  Status emit(std::span<const std::byte> bytes);
  NodeContext& ctx_;
  AVIOContext* avio_ = nullptr;
  std::size_t chunk_size_;
  bool buffer_all_;
  std::vector<std::byte> pending_;  // not yet sent (streaming) or the whole file (buffer_all)
  std::int64_t position_ = 0;
  std::int64_t bytes_written_ = 0;
  Status failure_;
};

/// Converts decoded frames of any sample format to interleaved f32 (and optionally another
/// rate / channel count), reusing its buffers.
class ToInterleavedF32 {
 public:
  /// Configures for frames like `frame`; target rate/channels 0 = keep the source's.
  Status convert(const AVFrame& frame, std::vector<float>& out, int target_rate = 0,
                 int target_channels = 0);
  /// Flushes resampler delay (rate conversion only).
  Status drain(std::vector<float>& out);

 private:
  Status configure(const AVFrame& frame, int target_rate, int target_channels);
  SwrPtr swr_;
  int in_rate_ = 0;
  int in_channels_ = 0;
  int in_format_ = -1;
  int out_rate_ = 0;
  int out_channels_ = 0;
};

/// Publishes interleaved f32 samples as RawAudio packets on output `output`, split to fit
/// its slots; duration_us follows from the sample count. Returns the pts after the last one.
Result<std::int64_t> write_audio(NodeContext& ctx, std::size_t output,
                                 std::span<const float> samples, std::uint32_t rate,
                                 std::uint16_t channels, std::int64_t pts_us);

}  // namespace skit::nodes::av
