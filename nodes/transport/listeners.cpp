// SPDX-License-Identifier: MPL-2.0
// transport::rtmp::listen and transport::srt::listen: session inputs that wait for an encoder
// (OBS, ffmpeg, a hardware box) to publish to them and emit its audio as EncodedAudio packets
// (AAC, Opus), through libavformat's RTMP server mode and libsrt. The port must lie in the
// server's transports.listen_ports (the supervisor checks it with the node's place); the node
// runs in a worker of its own, the only kind whose sandbox may open IP sockets. A publisher
// with the wrong stream key (RTMP) or passphrase (SRT) is refused and the node listens on;
// the stream ends when the accepted publisher ends it.
// transport::srt::caller is the other way round: it calls an SRT listener (a contribution
// encoder, a relay) at a URL on security.allowed_fetch_urls, resolved by the node and checked
// address by address like the fetcher's, and connects to the checked address itself (a DNS
// answer that changes between check and connect cannot redirect it).
#include <netdb.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "ffmpeg/libav.hpp"
#include "skit/core/registry.hpp"
#include "skit/core/url_policy.hpp"

extern "C" {
#include <libavformat/avformat.h>
}

namespace skit::nodes {

namespace {

using Clock = std::chrono::steady_clock;

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
using InputPtr = std::unique_ptr<AVFormatContext, FormatCloser>;

/// Accepts one publisher at `url` and reads its first audio stream; shared by the listeners.
class PublishedStream {
 public:
  struct Accepted {
    bool ok = false;
    std::string refusal;  // why this publisher was turned away (the node listens again)
  };

  /// Blocks until a publisher connects (or the node stops, or `deadline` passes: then
  /// kDeadlineExceeded). `check` inspects what the publisher sent and the log lines of the
  /// handshake.
  Result<Accepted> accept(NodeContext& ctx, const std::string& url, AVDictionary* options,
                          Clock::time_point deadline, const std::string& secret,
                          const std::function<std::string(const std::vector<std::string>&)>& check) {
    av::LogScope log(ctx);
    log.redact(secret);
    log.keep_warnings();
    deadline_ = deadline;
    ctx_ = &ctx;
    AVFormatContext* raw = avformat_alloc_context();
    raw->interrupt_callback = {&PublishedStream::interrupted, this};
    raw->probesize = 64 * 1024;
    raw->max_analyze_duration = 1000 * 1000;
    const int rc = avformat_open_input(&raw, url.c_str(), nullptr, &options);
    av_dict_free(&options);
    if (rc < 0) {
      if (ctx.stop_requested()) {
        return Status(ErrorCode::kCancelled, "stopped while listening");
      }
      if (Clock::now() >= deadline_) {
        return Status(ErrorCode::kDeadlineExceeded, "timed out");
      }
      const std::string refusal = check(log.take_warnings());
      return Accepted{false, !refusal.empty() ? refusal : failed_open_ + av::error_text(rc)};
    }
    input_.reset(raw);
    if (const std::string refusal = check(log.take_warnings()); !refusal.empty()) {
      input_.reset();
      return Accepted{false, refusal};
    }
    const int info = avformat_find_stream_info(input_.get(), nullptr);
    if (info < 0) {
      input_.reset();
      return Accepted{false, "cannot read the published stream: " + av::error_text(info)};
    }
    stream_ = av_find_best_stream(input_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
    if (stream_ < 0) {
      input_.reset();
      return Accepted{false, "the published stream has no audio"};
    }
    return Accepted{true, {}};
  }

  [[nodiscard]] const AVStream& stream() const { return *input_->streams[stream_]; }
  /// How a failed open is reported: "publisher refused: " for a listener, a caller's own.
  void set_failed_open_prefix(std::string prefix) { failed_open_ = std::move(prefix); }

  /// The next audio packet; false when the publisher ended the stream.
  Result<bool> next(NodeContext& ctx, AVPacket& pkt) {
    av::LogScope log(ctx);
    while (true) {
      av_packet_unref(&pkt);
      const int rc = av_read_frame(input_.get(), &pkt);
      if (rc == AVERROR_EOF || rc == AVERROR(EIO)) {
        return false;  // the publisher disconnected: the end of this stream
      }
      if (rc < 0) {
        if (ctx.stop_requested()) {
          return Status(ErrorCode::kCancelled, "stopped");
        }
        return Status(ErrorCode::kCorruptMedia, "published stream: " + av::error_text(rc));
      }
      if (pkt.stream_index == stream_) {
        return true;
      }
    }
  }

 private:
  static int interrupted(void* self) {
    auto* s = static_cast<PublishedStream*>(self);
    return (s->ctx_ != nullptr && s->ctx_->stop_requested()) || Clock::now() >= s->deadline_ ? 1 : 0;
  }

  NodeContext* ctx_ = nullptr;
  Clock::time_point deadline_ = Clock::time_point::max();
  InputPtr input_;
  int stream_ = -1;
  std::string failed_open_ = "publisher refused: ";
};

/// The published audio as EncodedAudio: a StreamInfo first, then one packet per frame.
/// Self gives target() (the URL to open, or why not), options(), secret(), refusal(),
/// waiting() (what the log says while it waits) and kRetryPause (zero: listen again at once
/// after a refusal; a caller waits before it calls again).
template <typename Self, typename P>
class ListenerNode : public NodeWithParams<P> {
 public:
  static constexpr std::string_view kCategory = "transport";
  static constexpr bool kNeedsNetwork = true;
  static std::vector<InputPinSpec> inputs() { return {}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::encoded_audio()}}; }
  static std::size_t max_packet_bytes(const P& /*p*/) { return 256 * 1024; }

  using NodeWithParams<P>::NodeWithParams;
  using NodeWithParams<P>::params;

  Result<Node::Produced> produce(NodeContext& ctx) override {
    if (!packet_) {
      SKIT_RETURN_IF_ERROR(wait_for_publisher(ctx));
      packet_ = av::make_packet();
    }
    auto more = stream_.next(ctx, *packet_);
    if (!more) {
      return more.status();
    }
    if (!*more) {
      ctx.log().info("the publisher ended the stream after {} packets", packets_);
      return Node::Produced::kDone;
    }
    const AVStream& st = stream_.stream();
    if (start_pts_ == AV_NOPTS_VALUE && packet_->pts != AV_NOPTS_VALUE) {
      start_pts_ = packet_->pts;
    }
    const std::int64_t pts = packet_->pts != AV_NOPTS_VALUE && start_pts_ != AV_NOPTS_VALUE
                                 ? packet_->pts - start_pts_
                                 : AV_NOPTS_VALUE;
    SKIT_RETURN_IF_ERROR(check_bitrate(static_cast<std::size_t>(packet_->size)));
    PacketHeader h{.kind = PacketKind::kEncodedAudio,
                   .pts_us = av::to_us(pts, st.time_base),
                   .duration_us = std::max<std::int64_t>(av::to_us(packet_->duration, st.time_base), 0),
                   .flags = kFlagKeyframe};
    ++packets_;
    SKIT_RETURN_IF_ERROR(ctx.output(0).write(
        {reinterpret_cast<const std::byte*>(packet_->data), static_cast<std::size_t>(packet_->size)}, h));
    return Node::Produced::kMore;
  }

 private:
  Status wait_for_publisher(NodeContext& ctx) {
    const std::int64_t timeout = params().timeout_secs;
    const auto deadline =
        timeout > 0 ? Clock::now() + std::chrono::seconds(timeout) : Clock::time_point::max();
    auto target = Self::target(params());
    if (!target) {
      return target.status();
    }
    std::string last_refusal;
    if constexpr (Self::kRetryPause.count() > 0) {
      stream_.set_failed_open_prefix("the call failed: ");
    }
    while (true) {
      ctx.log().info("{}: {}", Self::kKind, Self::waiting(params()));
      auto accepted = stream_.accept(ctx, *target, Self::options(params()), deadline,
                                     Self::secret(params()), [this](const std::vector<std::string>& w) {
                                       return Self::refusal(params(), w);
                                     });
      if (!accepted) {
        if (accepted.status().code() != ErrorCode::kDeadlineExceeded) {
          return accepted.status();
        }
        return Status(ErrorCode::kDeadlineExceeded,
                      std::string(Self::kNobody) + " within " + std::to_string(timeout) + " s" +
                          (last_refusal.empty() ? "" : " (last: " + last_refusal + ")"));
      }
      if (accepted->ok) {
        break;
      }
      ++refused_;
      last_refusal = accepted->refusal;
      ctx.log().warn("{}: {} (attempts refused: {}); {}", Self::kKind, accepted->refusal,
                     refused_, Self::kRetryPause.count() > 0 ? "calling again" : "listening again");
      // A stop ends the pause at once; so does the deadline (the next accept reports it).
      for (auto until = Clock::now() + Self::kRetryPause;
           Clock::now() < until && Clock::now() < deadline && !ctx.stop_requested();) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (ctx.stop_requested()) {
        return Status(ErrorCode::kCancelled, "stopped");
      }
    }
    const AVStream& st = stream_.stream();
    StreamInfo info = av::stream_info_from(*st.codecpar);
    info.content_type = "audio/" + info.codec;
    ctx.log().info("{}: publisher accepted: {} {} Hz, {} channel(s)", Self::kKind, info.codec,
                   info.sample_rate, info.channels);
    return ctx.output(0).write_stream_info(info, PacketKind::kEncodedAudio);
  }

  /// A publisher may burst (a key frame, a catch-up after a stall) but not flood: over each
  /// window of wall time it may send twice max_bitrate_kbps, and the node ends the stream the
  /// moment it passes that (a flood would otherwise fill the worker's memory and the rings).
  Status check_bitrate(std::size_t bytes) {
    const auto now = Clock::now();
    if (now - window_start_ >= kBitrateWindow) {
      window_start_ = now;
      window_bytes_ = 0;
    }
    window_bytes_ += bytes;
    const double window_s = std::chrono::duration<double>(kBitrateWindow).count();
    const double budget = 2.0 * static_cast<double>(params().max_bitrate_kbps) * 1000.0 / 8.0 * window_s;
    if (static_cast<double>(window_bytes_) > budget) {
      const double elapsed = std::max(std::chrono::duration<double>(now - window_start_).count(), 0.001);
      return Status(ErrorCode::kResourceExhausted,
                    "the publisher sent " + std::to_string(window_bytes_) + " bytes in " +
                        std::to_string(static_cast<int>(elapsed * 1000)) +
                        " ms, over twice max_bitrate_kbps (" +
                        std::to_string(params().max_bitrate_kbps) + "): disconnected");
    }
    return Status::ok();
  }

  static constexpr auto kBitrateWindow = std::chrono::seconds(2);
  Clock::time_point window_start_{};
  std::size_t window_bytes_ = 0;
  PublishedStream stream_;
  av::PacketPtr packet_;
  std::int64_t start_pts_ = AV_NOPTS_VALUE;
  std::uint64_t packets_ = 0;
  std::uint64_t refused_ = 0;
};

std::string bind_host(const std::string& address) { return address.empty() ? "0.0.0.0" : address; }

// Params every ingest node shares.
template <typename P>
void describe_bitrate_limit(ParamSchemaBuilder<P>& b) {
  b.field("max_bitrate_kbps", &P::max_bitrate_kbps,
          "Bitrate limit of the publisher's stream: one sending more than twice this over 2 s "
          "is disconnected (the node fails naming it).")
      .range(8, 200000);
}
template <typename P>
void describe_srt_latency(ParamSchemaBuilder<P>& b) {
  b.field("latency_ms", &P::latency_ms, "SRT receive latency (retransmission window).").range(20, 8000);
}

}  // namespace

struct RtmpListenParams {
  std::int64_t port = 0;
  std::string bind_address = "0.0.0.0";
  std::string app = "live";
  std::string stream_key;
  std::int64_t timeout_secs = 0;
  std::int64_t max_bitrate_kbps = 1024;

  static void describe(ParamSchemaBuilder<RtmpListenParams>& b) {
    b.field("port", &RtmpListenParams::port,
            "TCP port to listen on (must be in the server's transports.listen_ports).")
        .required()
        .range(1, 65535)
        .listen_port();
    b.field("bind_address", &RtmpListenParams::bind_address,
            "Local address to listen on (0.0.0.0: every interface).");
    b.field("app", &RtmpListenParams::app, "RTMP application (the server URL's path: rtmp://host:port/<app>).");
    b.field("stream_key", &RtmpListenParams::stream_key,
            "The stream key a publisher must give; others are refused.")
        .required()
        .secret();
    b.field("timeout_secs", &RtmpListenParams::timeout_secs,
            "Fail if no publisher has connected after this long (0: wait for ever).")
        .range(0, 86400);
    describe_bitrate_limit(b);
  }
  [[nodiscard]] Status validate() const {
    if (stream_key.empty() || stream_key.find_first_of("/?&# ") != std::string::npos) {
      return Status(ErrorCode::kInvalidParam, "stream_key must be non-empty, without '/', '?', '&', '#' or spaces");
    }
    if (app.empty() || app.find_first_of("/?&# ") != std::string::npos) {
      return Status(ErrorCode::kInvalidParam, "app must be one path segment");
    }
    return Status::ok();
  }
};

class RtmpListenNode final : public ListenerNode<RtmpListenNode, RtmpListenParams> {
 public:
  static constexpr std::string_view kKind = "transport::rtmp::listen";
  static constexpr std::string_view kSummary =
      "RTMP ingest: waits for an encoder to publish to rtmp://host:port/<app> with the stream "
      "key, and emits its audio (AAC) as EncodedAudio.";
  using ListenerNode::ListenerNode;

  static constexpr std::string_view kNobody = "no publisher";
  static constexpr std::chrono::milliseconds kRetryPause{0};
  static Result<std::string> target(const RtmpListenParams& p) {
    return "rtmp://" + bind_host(p.bind_address) + ":" + std::to_string(p.port) + "/" + p.app +
           "/" + p.stream_key;
  }
  static std::string waiting(const RtmpListenParams& p) {
    return "waiting for a publisher on port " + std::to_string(p.port);
  }
  static AVDictionary* options(const RtmpListenParams& /*p*/) {
    AVDictionary* o = nullptr;
    av_dict_set(&o, "listen", "1", 0);
    return o;
  }
  static std::string secret(const RtmpListenParams& p) { return p.stream_key; }
  // libavformat's RTMP server checks the application but only warns about another stream
  // name: that warning is the wrong key.
  static std::string refusal(const RtmpListenParams& /*p*/, const std::vector<std::string>& warnings) {
    for (const auto& w : warnings) {
      if (w.find("Unexpected stream") != std::string::npos) {
        return "a publisher gave a wrong stream key";
      }
      if (w.find("App field don't match") != std::string::npos) {
        return "a publisher asked for another application";
      }
    }
    return "";
  }
};
SKIT_REGISTER_NODE(RtmpListenNode);

struct SrtListenParams {
  std::int64_t port = 0;
  std::string bind_address = "0.0.0.0";
  std::string passphrase;
  std::int64_t latency_ms = 120;
  std::int64_t timeout_secs = 0;
  std::int64_t max_bitrate_kbps = 1024;

  static void describe(ParamSchemaBuilder<SrtListenParams>& b) {
    b.field("port", &SrtListenParams::port,
            "UDP port to listen on (must be in the server's transports.listen_ports).")
        .required()
        .range(1, 65535)
        .listen_port();
    b.field("bind_address", &SrtListenParams::bind_address,
            "Local address to listen on (0.0.0.0: every interface).");
    b.field("passphrase", &SrtListenParams::passphrase,
            "SRT encryption passphrase (10 to 79 characters); a caller without it is refused.")
        .required()
        .secret();
    describe_srt_latency(b);
    b.field("timeout_secs", &SrtListenParams::timeout_secs,
            "Fail if no caller has connected after this long (0: wait for ever).")
        .range(0, 86400);
    describe_bitrate_limit(b);
  }
  [[nodiscard]] Status validate() const {
    if (passphrase.size() < 10 || passphrase.size() > 79) {
      return Status(ErrorCode::kInvalidParam, "passphrase must be 10 to 79 characters (SRT's rule)");
    }
    return Status::ok();
  }
};

class SrtListenNode final : public ListenerNode<SrtListenNode, SrtListenParams> {
 public:
  static constexpr std::string_view kKind = "transport::srt::listen";
  static constexpr std::string_view kSummary =
      "SRT ingest (listener): waits for an encrypted caller with the passphrase, demuxes its "
      "MPEG-TS and emits the audio (AAC, Opus) as EncodedAudio.";
  using ListenerNode::ListenerNode;

  static constexpr std::string_view kNobody = "no caller";
  static constexpr std::chrono::milliseconds kRetryPause{0};
  static Result<std::string> target(const SrtListenParams& p) {
    return "srt://" + bind_host(p.bind_address) + ":" + std::to_string(p.port);
  }
  static std::string waiting(const SrtListenParams& p) {
    return "waiting for a caller on port " + std::to_string(p.port);
  }
  static AVDictionary* options(const SrtListenParams& p) {
    AVDictionary* o = nullptr;
    av_dict_set(&o, "mode", "listener", 0);
    av_dict_set(&o, "passphrase", p.passphrase.c_str(), 0);
    av_dict_set(&o, "pbkeylen", "16", 0);
    av_dict_set(&o, "latency", std::to_string(p.latency_ms * 1000).c_str(), 0);  // microseconds
    av_dict_set(&o, "transtype", "live", 0);
    return o;
  }
  static std::string secret(const SrtListenParams& p) { return p.passphrase; }
  // libsrt itself turns away a caller with another passphrase during the handshake.
  static std::string refusal(const SrtListenParams& /*p*/, const std::vector<std::string>& /*warnings*/) {
    return "";
  }
};
SKIT_REGISTER_NODE(SrtListenNode);

struct SrtCallerParams {
  std::string url;
  std::string passphrase;
  std::int64_t latency_ms = 120;
  std::int64_t timeout_secs = 30;
  std::int64_t max_bitrate_kbps = 1024;

  static void describe(ParamSchemaBuilder<SrtCallerParams>& b) {
    b.field("url", &SrtCallerParams::url,
            "The SRT listener to call, srt://host:port (must match security.allowed_fetch_urls).")
        .required()
        .fetch_url();
    b.field("passphrase", &SrtCallerParams::passphrase,
            "SRT encryption passphrase of the listener (10 to 79 characters; empty: unencrypted).")
        .secret();
    describe_srt_latency(b);
    b.field("timeout_secs", &SrtCallerParams::timeout_secs,
            "Keep calling (once a second) until a listener answers, for at most this long "
            "(0: for ever).")
        .range(0, 86400);
    describe_bitrate_limit(b);
  }
  [[nodiscard]] Status validate() const {
    auto parsed = parse_url(url, std::array<std::string_view, 1>{"srt"});
    if (!parsed) {
      return Status(ErrorCode::kInvalidParam, "url: " + parsed.status().message());
    }
    if (!parsed->query.empty() || parsed->path != "/") {
      return Status(ErrorCode::kInvalidParam,
                    "url: give srt://host:port only; the options are params (passphrase, latency_ms)");
    }
    if (!passphrase.empty() && (passphrase.size() < 10 || passphrase.size() > 79)) {
      return Status(ErrorCode::kInvalidParam, "passphrase must be 10 to 79 characters (SRT's rule)");
    }
    return Status::ok();
  }
};

class SrtCallerNode final : public ListenerNode<SrtCallerNode, SrtCallerParams> {
 public:
  static constexpr std::string_view kKind = "transport::srt::caller";
  static constexpr std::string_view kSummary =
      "SRT ingest (caller): calls an SRT listener on the fetch allow-list, demuxes its MPEG-TS "
      "and emits the audio (AAC, Opus) as EncodedAudio.";
  static constexpr std::string_view kNobody = "no SRT listener answered";
  static constexpr std::chrono::milliseconds kRetryPause{1000};
  using ListenerNode::ListenerNode;

  /// The allow-list admits the URL, then every address its host resolves to is checked (no
  /// loopback, private or link-local one unless the rule names it) and the first one allowed
  /// is called by its literal address.
  static Result<std::string> target(const SrtCallerParams& p) {
    auto url = parse_url(p.url, std::array<std::string_view, 1>{"srt"});
    if (!url) {
      return Status(ErrorCode::kInvalidParam, "url: " + url.status().message());
    }
    auto policy = fetch_policy_from_environment();
    if (!policy) {
      return policy.status();
    }
    auto rule = policy->admit("GET", *url);
    if (!rule) {
      return rule.status();
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(url->port);
    const int rc = ::getaddrinfo(url->host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0) {
      return Status(ErrorCode::kNotFound,
                    "cannot resolve '" + url->host + "': " + ::gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
    Status refused = Status::ok();
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
      Status allowed = UrlPolicy::check_address(**rule, a->ai_addr);
      if (allowed.is_ok()) {
        const std::string ip = format_address(a->ai_addr);
        return "srt://" + (a->ai_family == AF_INET6 ? "[" + ip + "]" : ip) + ":" + port;
      }
      if (refused.is_ok()) {
        refused = Status(allowed.code(), "'" + url->host + "': " + allowed.message());
      }
    }
    return refused.is_ok() ? Status(ErrorCode::kNotFound, "'" + url->host + "' has no address")
                           : refused;
  }
  static std::string waiting(const SrtCallerParams& p) { return "calling " + p.url; }
  static AVDictionary* options(const SrtCallerParams& p) {
    AVDictionary* o = nullptr;
    av_dict_set(&o, "mode", "caller", 0);
    if (!p.passphrase.empty()) {
      av_dict_set(&o, "passphrase", p.passphrase.c_str(), 0);
      av_dict_set(&o, "pbkeylen", "16", 0);
    }
    av_dict_set(&o, "latency", std::to_string(p.latency_ms * 1000).c_str(), 0);  // microseconds
    av_dict_set(&o, "connect_timeout", "3000", 0);                             // milliseconds
    av_dict_set(&o, "transtype", "live", 0);
    return o;
  }
  static std::string secret(const SrtCallerParams& p) { return p.passphrase; }
  static std::string refusal(const SrtCallerParams& /*p*/, const std::vector<std::string>& /*warnings*/) {
    return "";
  }
};
SKIT_REGISTER_NODE(SrtCallerNode);

}  // namespace skit::nodes
