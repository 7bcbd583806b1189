// SPDX-License-Identifier: MPL-2.0
#include "libav.hpp"

extern "C" {
#include <libavutil/intreadwrite.h>
}

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace skit::nodes::av {

std::string error_text(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

Status error(ErrorCode code, const std::string& what, int av_code) {
  return Status(code, what + ": " + error_text(av_code));
}

std::int64_t to_us(std::int64_t ts, AVRational tb) {
  return ts == AV_NOPTS_VALUE ? -1 : av_rescale_q(ts, tb, kMicroseconds);
}

std::int64_t from_us(std::int64_t us, AVRational tb) {
  return us < 0 ? AV_NOPTS_VALUE : av_rescale_q(us, kMicroseconds, tb);
}

void read_trim(const AVPacket& packet, PacketHeader& header) {
  std::size_t size = 0;
  const std::uint8_t* side = av_packet_get_side_data(&packet, AV_PKT_DATA_SKIP_SAMPLES, &size);
  if (side != nullptr && size >= 8) {
    header.trim_start = AV_RL32(side);
    header.trim_end = AV_RL32(side + 4);
  }
}

void write_trim(const PacketHeader& header, AVPacket& packet) {
  if (header.trim_start == 0 && header.trim_end == 0) {
    return;
  }
  std::uint8_t* side = av_packet_new_side_data(&packet, AV_PKT_DATA_SKIP_SAMPLES, 10);
  if (side != nullptr) {
    AV_WL32(side, header.trim_start);
    AV_WL32(side + 4, header.trim_end);
    side[8] = 0;
    side[9] = 0;
  }
}

namespace {
thread_local LogScope* t_scope = nullptr;
std::once_flag g_bridge_once;
}  // namespace

void LogScope::bridge(void* avcl, int level, const char* fmt, va_list args) {
  if (level > av_log_get_level()) {
    return;
  }
  char line[1024];
  int prefix = 1;
  av_log_format_line2(avcl, level, fmt, args, line, sizeof line, &prefix);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.pop_back();
  }
  if (text.empty()) {
    return;
  }
  LogScope* scope = t_scope;
  if (scope != nullptr && !scope->secret_.empty()) {
    for (auto at = text.find(scope->secret_); at != std::string::npos;
         at = text.find(scope->secret_, at + 3)) {
      text.replace(at, scope->secret_.size(), "***");
    }
  }
  if (scope != nullptr && level <= AV_LOG_ERROR && scope->first_error_.empty()) {
    scope->first_error_ = text;
  }
  if (scope != nullptr && scope->keep_warnings_ && level <= AV_LOG_WARNING) {
    scope->warnings_.push_back(text);
  }
  spdlog::logger* logger = scope != nullptr ? scope->logger_ : spdlog::default_logger_raw();
  logger->log(level <= AV_LOG_ERROR ? spdlog::level::warn : spdlog::level::debug, "ffmpeg: {}",
              text);
}

void LogScope::install_bridge() {
  std::call_once(g_bridge_once, [] {
    av_log_set_level(AV_LOG_WARNING);
    av_log_set_callback(&LogScope::bridge);
  });
}

namespace {
// At load time, in every process (CLI, server, workers): FFmpeg's messages go through the
// logs from the first one, so that with stderr not a terminal every line is JSON.
[[maybe_unused]] const bool g_bridge_installed = [] {
  LogScope::install_bridge();
  return true;
}();
}  // namespace

LogScope::LogScope(NodeContext& ctx) : previous_(t_scope), logger_(&ctx.log()) {
  install_bridge();
  t_scope = this;
}

LogScope::~LogScope() { t_scope = previous_; }

std::string LogScope::take_error() { return std::exchange(first_error_, std::string()); }

std::string codec_name(AVCodecID id) { return avcodec_get_name(id); }

AVCodecID codec_id(const std::string& name) {
  const AVCodecDescriptor* d = avcodec_descriptor_get_by_name(name.c_str());
  return d != nullptr ? d->id : AV_CODEC_ID_NONE;
}

StreamInfo stream_info_from(const AVCodecParameters& par) {
  StreamInfo info;
  info.codec = codec_name(par.codec_id);
  info.sample_rate = static_cast<std::uint32_t>(std::max(par.sample_rate, 0));
  info.channels = static_cast<std::uint16_t>(std::max(par.ch_layout.nb_channels, 0));
  info.frame_size = static_cast<std::uint32_t>(std::max(par.frame_size, 0));
  info.initial_padding = par.initial_padding;
  info.bit_rate = par.bit_rate;
  if (par.extradata != nullptr && par.extradata_size > 0) {
    const auto* p = reinterpret_cast<const std::byte*>(par.extradata);
    info.extradata.assign(p, p + par.extradata_size);
  }
  return info;
}

Status apply_stream_info(const StreamInfo& info, AVCodecParameters& par) {
  const AVCodecID id = codec_id(info.codec);
  if (id == AV_CODEC_ID_NONE) {
    return Status(ErrorCode::kCorruptMedia, "unknown codec '" + info.codec + "'");
  }
  par.codec_type = AVMEDIA_TYPE_AUDIO;
  par.codec_id = id;
  par.sample_rate = static_cast<int>(info.sample_rate);
  av_channel_layout_uninit(&par.ch_layout);
  av_channel_layout_default(&par.ch_layout, std::max<int>(info.channels, 1));
  par.frame_size = static_cast<int>(info.frame_size);
  par.initial_padding = info.initial_padding;
  par.bit_rate = info.bit_rate;
  av_freep(&par.extradata);
  par.extradata_size = 0;
  if (!info.extradata.empty()) {
    par.extradata = static_cast<std::uint8_t*>(
        av_mallocz(info.extradata.size() + AV_INPUT_BUFFER_PADDING_SIZE));
    std::memcpy(par.extradata, info.extradata.data(), info.extradata.size());
    par.extradata_size = static_cast<int>(info.extradata.size());
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------

namespace {
constexpr int kAvioBufferBytes = 64 * 1024;
}

AvioReader::AvioReader(NodeContext& ctx) : ctx_(ctx) {
  auto* buffer = static_cast<std::uint8_t*>(av_malloc(kAvioBufferBytes));
  avio_ = avio_alloc_context(buffer, kAvioBufferBytes, 0, this, &AvioReader::read, nullptr,
                             nullptr);
  avio_->seekable = 0;
}

AvioReader::~AvioReader() {
  if (avio_ != nullptr) {
    av_freep(&avio_->buffer);
    avio_context_free(&avio_);
  }
}

int AvioReader::read(void* opaque, std::uint8_t* buf, int size) {
  auto* self = static_cast<AvioReader*>(opaque);
  auto n = self->ctx_.read_input({reinterpret_cast<std::byte*>(buf), static_cast<std::size_t>(size)});
  if (!n) {
    self->failure_ = n.status();
    return AVERROR_EXIT;
  }
  if (*n == 0) {
    self->at_end_ = true;
    return AVERROR_EOF;
  }
  self->bytes_read_ += static_cast<std::int64_t>(*n);
  if (self->observer) {
    self->observer({reinterpret_cast<const std::byte*>(buf), *n});
  }
  return static_cast<int>(*n);
}

AvioWriter::AvioWriter(NodeContext& ctx, std::size_t chunk_size, bool buffer_all)
    : ctx_(ctx), chunk_size_(std::max<std::size_t>(chunk_size, 1)), buffer_all_(buffer_all) {
  auto* buffer = static_cast<std::uint8_t*>(av_malloc(kAvioBufferBytes));
  avio_ = avio_alloc_context(buffer, kAvioBufferBytes, 1, this, nullptr, &AvioWriter::write,
                             buffer_all ? &AvioWriter::seek : nullptr);
  avio_->seekable = buffer_all ? AVIO_SEEKABLE_NORMAL : 0;
}

AvioWriter::~AvioWriter() {
  if (avio_ != nullptr) {
    av_freep(&avio_->buffer);
    avio_context_free(&avio_);
  }
}

int AvioWriter::write(void* opaque, std::uint8_t* buf, int size) {  // FFmpeg 5 API: non-const
  auto* self = static_cast<AvioWriter*>(opaque);
  const auto* bytes = reinterpret_cast<const std::byte*>(buf);
  if (self->buffer_all_) {
    const auto end = static_cast<std::size_t>(self->position_) + static_cast<std::size_t>(size);
    if (self->pending_.size() < end) {
      self->pending_.resize(end);
    }
    std::memcpy(self->pending_.data() + self->position_, bytes, static_cast<std::size_t>(size));
    self->position_ = static_cast<std::int64_t>(end);
    return size;
  }
  self->pending_.insert(self->pending_.end(), bytes, bytes + size);
  while (self->pending_.size() >= self->chunk_size_) {
    Status s = self->emit({self->pending_.data(), self->chunk_size_});
    self->pending_.erase(self->pending_.begin(),
                         self->pending_.begin() + static_cast<std::ptrdiff_t>(self->chunk_size_));
    if (!s.is_ok()) {
      self->failure_ = s;
      return AVERROR_EXIT;
    }
  }
  return size;
}

std::int64_t AvioWriter::seek(void* opaque, std::int64_t offset, int whence) {
  auto* self = static_cast<AvioWriter*>(opaque);
  switch (whence & ~AVSEEK_FORCE) {
    case SEEK_SET: self->position_ = offset; break;
    case SEEK_CUR: self->position_ += offset; break;
    case SEEK_END: self->position_ = static_cast<std::int64_t>(self->pending_.size()) + offset; break;
    case AVSEEK_SIZE: return static_cast<std::int64_t>(self->pending_.size());
    default: return -1;
  }
  return self->position_;
}

Status AvioWriter::emit(std::span<const std::byte> bytes) {
  auto& out = ctx_.output(0);
  while (!bytes.empty()) {
    const std::size_t n = std::min({bytes.size(), chunk_size_, out.max_packet_bytes()});
    SKIT_RETURN_IF_ERROR(out.write(bytes.first(n), PacketHeader{.kind = PacketKind::kBinary}));
    bytes_written_ += static_cast<std::int64_t>(n);
    bytes = bytes.subspan(n);
  }
  return Status::ok();
}

Status AvioWriter::flush_all() {
  avio_flush(avio_);
  if (!failure_.is_ok()) {
    return failure_;
  }
  Status s = emit(pending_);
  pending_.clear();
  position_ = 0;
  return s;
}

Status AvioWriter::flush_streaming() {
  if (buffer_all_) {
    return Status::ok();
  }
  avio_flush(avio_);
  if (!failure_.is_ok()) {
    return failure_;
  }
  if (pending_.empty()) {
    return Status::ok();
  }
  Status s = emit(pending_);
  pending_.clear();
  return s;
}

// ---------------------------------------------------------------------------------------------

Status ToInterleavedF32::configure(const AVFrame& frame, int target_rate, int target_channels) {
  const int channels = frame.ch_layout.nb_channels;
  const int out_rate = target_rate > 0 ? target_rate : frame.sample_rate;
  const int out_channels = target_channels > 0 ? target_channels : channels;
  if (swr_ && in_rate_ == frame.sample_rate && in_channels_ == channels &&
      in_format_ == frame.format && out_rate_ == out_rate && out_channels_ == out_channels) {
    return Status::ok();
  }
  AVChannelLayout in_layout{};
  AVChannelLayout out_layout{};
  if (frame.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
    av_channel_layout_default(&in_layout, channels);
  } else {
    av_channel_layout_copy(&in_layout, &frame.ch_layout);
  }
  av_channel_layout_default(&out_layout, out_channels);
  SwrContext* raw = nullptr;
  int rc = swr_alloc_set_opts2(&raw, &out_layout, AV_SAMPLE_FMT_FLT, out_rate, &in_layout,
                               static_cast<AVSampleFormat>(frame.format), frame.sample_rate, 0,
                               nullptr);
  av_channel_layout_uninit(&in_layout);
  av_channel_layout_uninit(&out_layout);
  if (rc < 0) {
    return error(ErrorCode::kInternal, "swr_alloc_set_opts2", rc);
  }
  swr_.reset(raw);
  rc = swr_init(raw);
  if (rc < 0) {
    return error(ErrorCode::kInternal, "swr_init", rc);
  }
  in_rate_ = frame.sample_rate;
  in_channels_ = channels;
  in_format_ = frame.format;
  out_rate_ = out_rate;
  out_channels_ = out_channels;
  return Status::ok();
}

Status ToInterleavedF32::convert(const AVFrame& frame, std::vector<float>& out, int target_rate,
                                 int target_channels) {
  SKIT_RETURN_IF_ERROR(configure(frame, target_rate, target_channels));
  const int max_out = swr_get_out_samples(swr_.get(), frame.nb_samples);
  out.resize(static_cast<std::size_t>(std::max(max_out, 0)) * static_cast<std::size_t>(out_channels_));
  auto* dst = reinterpret_cast<std::uint8_t*>(out.data());
  const int n = swr_convert(swr_.get(), &dst, max_out,
                            const_cast<const std::uint8_t**>(frame.extended_data), frame.nb_samples);
  if (n < 0) {
    return error(ErrorCode::kInternal, "swr_convert", n);
  }
  out.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(out_channels_));
  return Status::ok();
}

Status ToInterleavedF32::drain(std::vector<float>& out) {
  out.clear();
  if (!swr_) {
    return Status::ok();
  }
  const int max_out = swr_get_out_samples(swr_.get(), 0);
  if (max_out <= 0) {
    return Status::ok();
  }
  out.resize(static_cast<std::size_t>(max_out) * static_cast<std::size_t>(out_channels_));
  auto* dst = reinterpret_cast<std::uint8_t*>(out.data());
  const int n = swr_convert(swr_.get(), &dst, max_out, nullptr, 0);
  if (n < 0) {
    return error(ErrorCode::kInternal, "swr_convert (drain)", n);
  }
  out.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(out_channels_));
  return Status::ok();
}

Result<std::int64_t> write_audio(NodeContext& ctx, std::size_t output,
                                 std::span<const float> samples, std::uint32_t rate,
                                 std::uint16_t channels, std::int64_t pts_us) {
  auto& out = ctx.output(output);
  const std::size_t frame_floats = std::max<std::size_t>(channels, 1);
  const std::size_t max_frames = std::max<std::size_t>(out.max_packet_bytes() / sizeof(float) / frame_floats, 1);
  while (!samples.empty()) {
    const std::size_t frames = std::min(samples.size() / frame_floats, max_frames);
    if (frames == 0) {
      break;
    }
    const std::size_t floats = frames * frame_floats;
    const std::int64_t duration = static_cast<std::int64_t>(frames) * 1000000 / std::max<std::uint32_t>(rate, 1);
    PacketHeader h{.kind = PacketKind::kRawAudio,
                   .pts_us = pts_us,
                   .duration_us = duration,
                   .sample_rate = rate,
                   .channels = channels};
    SKIT_RETURN_IF_ERROR(out.write(std::as_bytes(samples.first(floats)), h));
    if (pts_us >= 0) {
      pts_us += duration;
    }
    samples = samples.subspan(floats);
  }
  return pts_us;
}

}  // namespace skit::nodes::av
