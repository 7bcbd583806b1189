// SPDX-License-Identifier: MPL-2.0
// transport::webrtc::whip and transport::webrtc::whep: a browser (or OBS) publishes Opus into a
// live session over WebRTC (WHIP, RFC 9725), and browsers play a session's Opus output (WHEP).
// The gateway forwards the signalling (Node::on_request); everything else happens here, in the
// node's network worker: one GStreamer pipeline with a webrtcbin per peer (ICE by libnice,
// DTLS-SRTP by GStreamer's dtls/srtp elements, never our own), the answer sent once ICE
// gathering is complete (no trickle). Ingest is webrtcbin -> rtpopusdepay -> appsink, read by
// produce(); egress is appsrc -> rtpopuspay (the offer's payload type) -> webrtcbin on a
// send-only transceiver, fed by process().
#define GST_USE_UNSTABLE_API  // the webrtc library's API is marked unstable; 1.22 is what we build on
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kGatheringTimeout = std::chrono::seconds(5);
constexpr auto kConnectTimeout = std::chrono::seconds(15);

// ---- GStreamer plumbing --------------------------------------------------------------------

struct GstUnref {
  void operator()(gpointer p) const { gst_object_unref(p); }
};
template <typename T>
using GstPtr = std::unique_ptr<T, GstUnref>;

/// gst_init once per process, and every element the nodes use loaded and a DTLS certificate
/// made: all of it opens files (plugins, the registry) and must happen before the sandbox.
Status init_gstreamer() {
  static std::once_flag once;
  static Status result = Status::ok();
  std::call_once(once, [] {
    ::setenv("GST_REGISTRY_FORK", "no", 0);  // no gst-plugin-scanner child process
    GError* err = nullptr;
    if (gst_init_check(nullptr, nullptr, &err) == FALSE) {
      result = Status(ErrorCode::kInternal,
                      std::string("cannot initialise GStreamer: ") + (err ? err->message : "?"));
      g_clear_error(&err);
      return;
    }
    for (const char* name : {"webrtcbin", "rtpopusdepay", "rtpopuspay", "appsrc", "appsink",
                             "nicesrc", "nicesink", "dtlssrtpenc", "dtlssrtpdec", "srtpenc",
                             "srtpdec", "rtpbin", "rtpjitterbuffer", "queue", "capsfilter"}) {
      GstElement* e = gst_element_factory_make(name, nullptr);
      if (e == nullptr) {
        result = Status(ErrorCode::kInternal,
                        std::string("GStreamer element '") + name +
                            "' is missing (install gstreamer1.0-plugins-bad, -good and gstreamer1.0-nice)");
        return;
      }
      gst_object_unref(gst_object_ref_sink(e));
    }
  });
  return result;
}

std::string random_id() {
  static std::mutex m;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard lock(m);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  auto v = rng();
  for (auto& c : id) {
    c = kHex[v & 15];
    v >>= 4;
  }
  return id;
}

/// Waits for a promise and returns its reply (owned by the promise; null: replied without
/// a structure, which is success for set-*-description).
const GstStructure* wait_promise(GstPromise* p, bool& replied) {
  replied = gst_promise_wait(p) == GST_PROMISE_RESULT_REPLIED;
  return replied ? gst_promise_get_reply(p) : nullptr;
}

std::string promise_error(bool replied, const GstStructure* reply) {
  if (!replied) {
    return "webrtcbin did not answer";
  }
  if (reply == nullptr) {
    return "";
  }
  GError* err = nullptr;
  if (gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr) && err != nullptr) {
    std::string m = err->message;
    g_error_free(err);
    return m;
  }
  return "";
}

/// What the node needs from an SDP offer: an Opus audio section and its payload type.
struct OfferedAudio {
  int payload_type = -1;
  int channels = 2;
  std::string direction;  // sendonly, recvonly, sendrecv, inactive
};

Result<OfferedAudio> offered_opus(const GstSDPMessage& sdp) {
  for (guint i = 0; i < gst_sdp_message_medias_len(&sdp); ++i) {
    const GstSDPMedia* m = gst_sdp_message_get_media(&sdp, i);
    if (std::string_view(gst_sdp_media_get_media(m)) != "audio") {
      continue;
    }
    OfferedAudio a;
    a.direction = "sendrecv";
    for (guint k = 0; k < gst_sdp_media_attributes_len(m); ++k) {
      const GstSDPAttribute* attr = gst_sdp_media_get_attribute(m, k);
      const std::string_view key = attr->key;
      if (key == "sendonly" || key == "recvonly" || key == "sendrecv" || key == "inactive") {
        a.direction = std::string(key);
      }
      if (key == "rtpmap" && attr->value != nullptr && a.payload_type < 0) {
        int pt = -1;
        char codec[64] = {0};
        int rate = 0;
        int ch = 1;
        const int got = std::sscanf(attr->value, "%d %63[^/]/%d/%d", &pt, codec, &rate, &ch);
        if (got >= 3 && g_ascii_strcasecmp(codec, "opus") == 0) {
          a.payload_type = pt;
          a.channels = got == 4 ? ch : 1;
        }
      }
    }
    if (a.payload_type >= 0) {
      return a;
    }
  }
  return Status(ErrorCode::kInvalidArgument, "the SDP offer has no Opus audio");
}

/// Milliseconds of audio in an Opus packet, from its TOC byte (RFC 6716 section 3.1).
std::int64_t opus_packet_us(std::span<const std::byte> packet) {
  if (packet.empty()) {
    return 0;
  }
  const auto toc = static_cast<std::uint8_t>(packet[0]);
  const unsigned config = toc >> 3;
  static constexpr std::int64_t kSilkUs[4] = {10000, 20000, 40000, 60000};
  static constexpr std::int64_t kCeltUs[4] = {2500, 5000, 10000, 20000};
  std::int64_t frame = 0;
  if (config < 12) {
    frame = kSilkUs[config & 3];
  } else if (config < 16) {
    frame = (config & 1) != 0 ? 20000 : 10000;
  } else {
    frame = kCeltUs[config & 3];
  }
  int frames = 1;
  switch (toc & 3) {
    case 0:
      frames = 1;
      break;
    case 1:
    case 2:
      frames = 2;
      break;
    default:
      frames = packet.size() > 1 ? (static_cast<std::uint8_t>(packet[1]) & 0x3F) : 0;
  }
  return frame * frames;
}

/// The OpusHead of RFC 7845, so that a muxer downstream can write a proper header.
std::vector<std::byte> opus_head(int channels) {
  std::vector<std::byte> h(19);
  const char magic[] = "OpusHead";
  for (int i = 0; i < 8; ++i) {
    h[i] = static_cast<std::byte>(magic[i]);
  }
  h[8] = std::byte{1};
  h[9] = static_cast<std::byte>(channels);
  // pre-skip 0: WebRTC streams start mid-conversation; 48000 Hz input rate.
  const std::uint32_t rate = 48000;
  for (int i = 0; i < 4; ++i) {
    h[12 + i] = static_cast<std::byte>((rate >> (8 * i)) & 0xFF);
  }
  return h;
}

// ---- one remote peer -----------------------------------------------------------------------

struct PeerOptions {
  bool receive = true;  // WHIP: media comes from the peer; WHEP: goes to it
  std::vector<std::string> local_addresses;
  std::string stun_server;
  std::int64_t max_bitrate_kbps = 0;
  std::int64_t jitter_latency_ms = 20;
};

/// One webrtcbin and its pipeline; negotiate() answers the peer's offer.
class Peer {
 public:
  explicit Peer(PeerOptions options) : options_(std::move(options)), id_(random_id()) {}
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() {
    if (pipeline_) {
      gst_element_set_state(pipeline_.get(), GST_STATE_NULL);
    }
  }

  [[nodiscard]] const std::string& id() const { return id_; }

  /// Builds the pipeline for the offer and returns the SDP answer, ICE candidates included.
  /// Blocks (up to kGatheringTimeout) until gathering completes.
  Result<std::string> negotiate(const std::string& offer_text) {
    GstSDPMessage* offer_sdp = nullptr;
    if (gst_sdp_message_new_from_text(offer_text.c_str(), &offer_sdp) != GST_SDP_OK ||
        offer_sdp == nullptr || gst_sdp_message_medias_len(offer_sdp) == 0) {
      if (offer_sdp != nullptr) {
        gst_sdp_message_free(offer_sdp);
      }
      return Status(ErrorCode::kInvalidArgument, "the body is not an SDP offer");
    }
    auto audio = offered_opus(*offer_sdp);
    if (!audio) {
      gst_sdp_message_free(offer_sdp);
      return audio.status();
    }
    if (options_.receive ? audio->direction == "recvonly" : audio->direction == "sendonly") {
      gst_sdp_message_free(offer_sdp);
      return Status(ErrorCode::kInvalidArgument,
                    std::string("the offer's audio is ") + audio->direction + ": a " +
                        (options_.receive ? "WHIP publisher must send" : "WHEP viewer must receive"));
    }
    channels_ = audio->channels;
    SKIT_RETURN_IF_ERROR(build(*audio));

    GstWebRTCSessionDescription* offer =
        gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, offer_sdp);
    GstPromise* p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-remote-description", offer, p);
    bool replied = false;
    const GstStructure* reply = wait_promise(p, replied);
    std::string err = promise_error(replied, reply);
    gst_promise_unref(p);
    gst_webrtc_session_description_free(offer);
    if (!err.empty()) {
      return Status(ErrorCode::kInvalidArgument, "the offer was refused: " + err);
    }

    p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "create-answer", nullptr, p);
    reply = wait_promise(p, replied);
    GstWebRTCSessionDescription* answer = nullptr;
    if (reply != nullptr) {
      gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
    }
    err = answer == nullptr ? promise_error(replied, reply) : "";
    if (answer == nullptr && err.empty()) {
      err = "webrtcbin made none";
    }
    gst_promise_unref(p);
    if (answer == nullptr) {
      return Status(ErrorCode::kInvalidArgument, "no answer to this offer: " + err);
    }
    p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-local-description", answer, p);
    gst_promise_wait(p);
    gst_promise_unref(p);
    gst_webrtc_session_description_free(answer);

    const auto deadline = Clock::now() + kGatheringTimeout;
    while (true) {
      GstWebRTCICEGatheringState state = GST_WEBRTC_ICE_GATHERING_STATE_NEW;
      g_object_get(webrtc_, "ice-gathering-state", &state, nullptr);
      if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
        break;
      }
      if (Clock::now() >= deadline) {
        return Status(ErrorCode::kDeadlineExceeded, "ICE gathering did not complete in 5 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    GstWebRTCSessionDescription* local = nullptr;
    g_object_get(webrtc_, "local-description", &local, nullptr);
    if (local == nullptr) {
      return Status(ErrorCode::kInternal, "webrtcbin has no local description");
    }
    if (options_.max_bitrate_kbps > 0) {
      for (guint i = 0; i < gst_sdp_message_medias_len(local->sdp); ++i) {
        auto* m = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(local->sdp, i));
        gst_sdp_media_add_bandwidth(m, "AS", static_cast<guint>(options_.max_bitrate_kbps));
      }
    }
    gchar* text = gst_sdp_message_as_text(local->sdp);
    std::string out = text;
    g_free(text);
    gst_webrtc_session_description_free(local);
    answered_at_ = Clock::now();
    return out;
  }

  [[nodiscard]] GstWebRTCPeerConnectionState state() const {
    GstWebRTCPeerConnectionState s = GST_WEBRTC_PEER_CONNECTION_STATE_NEW;
    if (webrtc_ != nullptr) {
      g_object_get(webrtc_, "connection-state", &s, nullptr);
    }
    return s;
  }
  [[nodiscard]] bool connected() const { return state() == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED; }
  /// Failed, closed, or never connected in time: to be removed.
  [[nodiscard]] bool gone() const {
    const auto s = state();
    if (s == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || s == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED) {
      return true;
    }
    if (s == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
      ever_connected_ = true;
    }
    return !ever_connected_ && answered_at_ != Clock::time_point{} &&
           Clock::now() - answered_at_ > kConnectTimeout;
  }
  [[nodiscard]] int channels() const { return channels_; }

  /// WHIP: the next depayloaded Opus packet, waiting up to `wait`; null when none.
  GstSample* pull(std::chrono::milliseconds wait) {
    GstElement* sink = nullptr;
    {
      std::lock_guard lock(mutex_);
      sink = appsink_;
      if (sink != nullptr) {
        gst_object_ref(sink);
      }
    }
    if (sink == nullptr) {
      std::this_thread::sleep_for(wait);
      return nullptr;
    }
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink),
                                                static_cast<GstClockTime>(wait.count()) * GST_MSECOND);
    gst_object_unref(sink);
    return s;
  }

  /// WHEP: sends one Opus packet, its media time `pts_us` kept as the RTP timeline.
  void push(std::span<const std::byte> data, std::int64_t pts_us, std::int64_t duration_us) {
    if (appsrc_ == nullptr || !connected()) {
      return;
    }
    GstClock* clock = gst_element_get_clock(pipeline_.get());
    if (clock == nullptr) {
      return;
    }
    const GstClockTime now = gst_clock_get_time(clock) - gst_element_get_base_time(pipeline_.get());
    gst_object_unref(clock);
    if (!offset_set_) {
      offset_ns_ = static_cast<std::int64_t>(now) - pts_us * 1000;
      offset_set_ = true;
    }
    GstBuffer* buf = gst_buffer_new_memdup(data.data(), data.size());
    const std::int64_t pts = pts_us * 1000 + offset_ns_;
    GST_BUFFER_PTS(buf) = pts > 0 ? static_cast<GstClockTime>(pts) : 0;
    GST_BUFFER_DURATION(buf) = static_cast<GstClockTime>(std::max<std::int64_t>(duration_us, 0)) * 1000;
    gst_app_src_push_buffer(GST_APP_SRC(appsrc_), buf);
  }

 private:
  Status build(const OfferedAudio& audio) {
    pipeline_.reset(GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new(nullptr))));
    webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
    if (webrtc_ == nullptr) {
      return Status(ErrorCode::kInternal, "cannot make a webrtcbin");
    }
    g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency",
                 static_cast<guint>(options_.jitter_latency_ms), nullptr);
    if (!options_.stun_server.empty()) {
      g_object_set(webrtc_, "stun-server", options_.stun_server.c_str(), nullptr);
    }
    gst_bin_add(GST_BIN(pipeline_.get()), webrtc_);
    GstWebRTCICE* ice = nullptr;
    g_object_get(webrtc_, "ice-agent", &ice, nullptr);
    if (ice != nullptr) {
      for (const auto& address : options_.local_addresses) {
        gboolean ok = FALSE;
        g_signal_emit_by_name(ice, "add-local-ip-address", address.c_str(), &ok);
        if (ok == FALSE) {
          gst_object_unref(ice);
          return Status(ErrorCode::kInvalidParam, "ICE cannot use local address '" + address + "'",
                        {.param = "ice_local_addresses"});
        }
      }
      gst_object_unref(ice);
    }
    const std::string rtp_caps = "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=" +
                                 std::to_string(audio.payload_type);
    if (options_.receive) {
      g_signal_connect(webrtc_, "pad-added", G_CALLBACK(&Peer::on_pad_added), this);
      GstCaps* caps = gst_caps_from_string(rtp_caps.c_str());
      GstWebRTCRTPTransceiver* t = nullptr;
      g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY,
                            caps, &t);
      gst_caps_unref(caps);
      if (t != nullptr) {
        gst_object_unref(t);
      }
    } else {
      appsrc_ = gst_element_factory_make("appsrc", nullptr);
      GstElement* pay = gst_element_factory_make("rtpopuspay", nullptr);
      GstElement* filter = gst_element_factory_make("capsfilter", nullptr);
      GstCaps* opus = gst_caps_new_simple("audio/x-opus", "channel-mapping-family", G_TYPE_INT, 0,
                                          "rate", G_TYPE_INT, 48000, "channels", G_TYPE_INT,
                                          audio.channels, nullptr);
      g_object_set(appsrc_, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE,
                   "caps", opus, "max-bytes", static_cast<guint64>(256 * 1024), "block", FALSE,
                   nullptr);
      gst_caps_unref(opus);
      g_object_set(pay, "pt", static_cast<guint>(audio.payload_type), nullptr);
      GstCaps* rtp = gst_caps_from_string(rtp_caps.c_str());
      g_object_set(filter, "caps", rtp, nullptr);
      gst_bin_add_many(GST_BIN(pipeline_.get()), appsrc_, pay, filter, nullptr);
      if (gst_element_link_many(appsrc_, pay, filter, nullptr) == FALSE) {
        gst_caps_unref(rtp);
        return Status(ErrorCode::kInternal, "cannot link appsrc ! rtpopuspay");
      }
      GstPad* src = gst_element_get_static_pad(filter, "src");
      GstPad* sink = gst_element_request_pad_simple(webrtc_, "sink_%u");
      const bool linked = sink != nullptr && gst_pad_link(src, sink) == GST_PAD_LINK_OK;
      if (linked) {
        GstWebRTCRTPTransceiver* t = nullptr;
        g_object_get(sink, "transceiver", &t, nullptr);
        if (t != nullptr) {
          g_object_set(t, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY,
                       "codec-preferences", rtp, nullptr);
          gst_object_unref(t);
        }
      }
      gst_caps_unref(rtp);
      gst_object_unref(src);
      if (sink != nullptr) {
        gst_object_unref(sink);
      }
      if (!linked) {
        return Status(ErrorCode::kInternal, "cannot link the payloader to webrtcbin");
      }
    }
    if (gst_element_set_state(pipeline_.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      return Status(ErrorCode::kInternal, "the WebRTC pipeline does not start");
    }
    return Status::ok();
  }

  // A streaming thread: the peer's media arrives, decrypted, as RTP.
  static void on_pad_added(GstElement* /*webrtc*/, GstPad* pad, gpointer data) {
    auto* self = static_cast<Peer*>(data);
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) {
      return;
    }
    std::lock_guard lock(self->mutex_);
    if (self->appsink_ != nullptr) {
      return;  // one audio stream per publisher
    }
    GstElement* depay = gst_element_factory_make("rtpopusdepay", nullptr);
    GstElement* sink = gst_element_factory_make("appsink", nullptr);
    g_object_set(sink, "sync", FALSE, "max-buffers", 200, "drop", TRUE, "emit-signals", FALSE,
                 nullptr);
    gst_bin_add_many(GST_BIN(self->pipeline_.get()), depay, sink, nullptr);
    gst_element_link(depay, sink);
    gst_element_sync_state_with_parent(depay);
    gst_element_sync_state_with_parent(sink);
    GstPad* in = gst_element_get_static_pad(depay, "sink");
    if (gst_pad_link(pad, in) == GST_PAD_LINK_OK) {
      self->appsink_ = sink;
    }
    gst_object_unref(in);
  }

  PeerOptions options_;
  std::string id_;
  GstPtr<GstElement> pipeline_;
  GstElement* webrtc_ = nullptr;  // owned by the pipeline
  GstElement* appsrc_ = nullptr;  // WHEP, owned by the pipeline
  std::mutex mutex_;
  GstElement* appsink_ = nullptr;  // WHIP, owned by the pipeline, set by on_pad_added
  int channels_ = 2;
  Clock::time_point answered_at_{};
  mutable bool ever_connected_ = false;
  bool offset_set_ = false;
  std::int64_t offset_ns_ = 0;
};

NodeReply error_reply(const Status& s) {
  int code = 500;
  switch (s.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidParam:
      code = 400;
      break;
    case ErrorCode::kDeadlineExceeded:
      code = 504;
      break;
    default:
      code = 500;
  }
  return NodeReply::text(code, s.message());
}

/// The peers of one node and the signalling threads negotiating new ones.
class PeerSet {
 public:
  ~PeerSet() {
    for (auto& j : jobs_) {
      j.thread.join();
    }
  }

  /// Runs `f` on a thread of its own; threads that have finished are joined first, so that a
  /// node serving peers for days keeps no dead thread (nor its stack) around.
  template <typename F>
  void spawn(F&& f) {
    std::lock_guard lock(mutex_);
    std::erase_if(jobs_, [](Job& j) {
      if (!j.done->load()) {
        return false;
      }
      j.thread.join();
      return true;
    });
    auto done = std::make_shared<std::atomic<bool>>(false);
    jobs_.push_back({std::thread([f = std::forward<F>(f), done]() mutable {
                       f();
                       done->store(true);
                     }),
                     done});
  }

  void add(std::shared_ptr<Peer> peer) {
    std::lock_guard lock(mutex_);
    peers_[peer->id()] = std::move(peer);
  }
  bool remove(const std::string& id) {
    std::shared_ptr<Peer> gone;
    std::lock_guard lock(mutex_);
    auto it = peers_.find(id);
    if (it == peers_.end()) {
      return false;
    }
    gone = std::move(it->second);
    peers_.erase(it);
    return true;
  }
  std::vector<std::shared_ptr<Peer>> snapshot() {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Peer>> out;
    for (auto& [id, p] : peers_) {
      out.push_back(p);
    }
    return out;
  }
  /// Removes failed, closed and never-connected peers; returns how many.
  std::size_t prune() {
    std::vector<std::shared_ptr<Peer>> gone;
    std::lock_guard lock(mutex_);
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (it->second->gone()) {
        gone.push_back(std::move(it->second));
        it = peers_.erase(it);
      } else {
        ++it;
      }
    }
    return gone.size();
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return peers_.size() + negotiating_;
  }
  /// Reserves a place for a peer being negotiated (released by done_negotiating()).
  bool reserve(std::size_t limit) {
    std::lock_guard lock(mutex_);
    if (peers_.size() + negotiating_ >= limit) {
      return false;
    }
    ++negotiating_;
    return true;
  }
  void done_negotiating() {
    std::lock_guard lock(mutex_);
    --negotiating_;
  }

  /// DELETE of a peer's resource, answered at once; `role` names the peer ("publisher").
  void end_peer(NodeContext& ctx, const std::string& resource, std::string_view role,
           const NodeReplier& reply) {
    if (!remove(resource)) {
      reply(NodeReply::text(404, "no " + std::string(role) + " '" + resource + "' on this endpoint"));
      return;
    }
    ctx.log().info("WebRTC {} {} left", role, resource);
    reply(NodeReply::text(200, std::string(role) + " ended"));
  }

  /// Negotiates a new peer for `offer` on a signalling thread of its own (a place was
  /// reserved) and replies 201 with the answer and the peer's id, or the refusal.
  void negotiate(NodeContext& ctx, PeerOptions options, std::string offer, std::string_view role,
                 NodeReplier reply) {
    auto& log = ctx.log();
    spawn([this, options = std::move(options), offer = std::move(offer), role = std::string(role),
           reply = std::move(reply), &log] {
      auto peer = std::make_shared<Peer>(options);
      auto answer = peer->negotiate(offer);
      if (!answer) {
        done_negotiating();
        log.warn("WebRTC {} offer refused: {}", role, answer.status().message());
        reply(error_reply(answer.status()));
        return;
      }
      add(peer);
      done_negotiating();
      log.info("WebRTC {} {} negotiated", role, peer->id());
      reply(NodeReply{201, "application/sdp", std::move(*answer), peer->id()});
    });
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Peer>> peers_;
  std::size_t negotiating_ = 0;
  struct Job {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Job> jobs_;
};

std::vector<std::string> split_addresses(const std::string& list) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : list + ",") {
    if (c == ',' || c == ' ') {
      if (!cur.empty()) {
        out.push_back(cur);
      }
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  return out;
}

// The params both kinds have, declared in each struct (member pointers of a base class do not
// make fields of the derived one).
#define SKIT_WEBRTC_COMMON_PARAMS        \
  std::string ice_local_addresses;       \
  std::string stun_server;               \
  std::int64_t max_bitrate_kbps = 256;

template <typename P>
void describe_common(ParamSchemaBuilder<P>& b) {
  b.field("ice_local_addresses", &P::ice_local_addresses,
          "Comma-separated local IP addresses ICE offers (empty: every interface but loopback; "
          "\"127.0.0.1\" for a browser on this machine).");
  b.field("stun_server", &P::stun_server,
          "STUN server for a server-reflexive candidate behind NAT (stun://host:port; empty: none).");
  b.field("max_bitrate_kbps", &P::max_bitrate_kbps,
          "Audio bitrate announced to each peer (b=AS); a publisher sending more than twice "
          "this is disconnected.")
      .range(6, 2000);
}

Status validate_common(const std::string& addresses, const std::string& stun) {
  for (const auto& a : split_addresses(addresses)) {
    if (a.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos) {
      return Status(ErrorCode::kInvalidParam, "'" + a + "' is not an IP address",
                    {.param = "ice_local_addresses"});
    }
  }
  if (!stun.empty() && !stun.starts_with("stun://")) {
    return Status(ErrorCode::kInvalidParam, "stun_server must be stun://host:port",
                  {.param = "stun_server"});
  }
  return Status::ok();
}


}  // namespace

// ---- WHIP: a session input -----------------------------------------------------------------

struct WhipParams {
  SKIT_WEBRTC_COMMON_PARAMS
  std::int64_t jitter_buffer_ms = 20;
  static void describe(ParamSchemaBuilder<WhipParams>& b) {
    describe_common(b);
    b.field("jitter_buffer_ms", &WhipParams::jitter_buffer_ms,
            "Reordering window for the publisher's packets: more survives a rough network, "
            "less is lower latency.")
        .range(0, 2000);
  }
  [[nodiscard]] Status validate() const { return validate_common(ice_local_addresses, stun_server); }
};

class WhipNode final : public NodeWithParams<WhipParams> {
 public:
  static constexpr std::string_view kKind = "transport::webrtc::whip";
  static constexpr std::string_view kSummary =
      "WebRTC ingest (WHIP, RFC 9725): a browser or OBS publishes to POST "
      "/whip/{session}/{node id}; its Opus audio comes out as EncodedAudio. One publisher at a "
      "time; between publishers the output waits.";
  static constexpr std::string_view kCategory = "transport";
  static constexpr bool kNeedsNetwork = true;
  static constexpr std::string_view kHttpEndpoint = "whip";
  static std::vector<InputPinSpec> inputs() { return {}; }
  static std::vector<OutputPinSpec> outputs() {
    return {{"out", PacketType::encoded_audio("opus")}};
  }
  static std::size_t max_packet_bytes(const WhipParams& /*p*/) { return 8 * 1024; }

  using NodeWithParams::NodeWithParams;

  Status prepare(NodeContext& /*ctx*/) override { return init_gstreamer(); }

  void on_request(NodeContext& ctx, NodeRequest request, NodeReplier reply) override {
    if (request.method == "DELETE") {
      peers_.end_peer(ctx, request.resource, "publisher", reply);
      return;
    }
    peers_.prune();
    for (const auto& p : peers_.snapshot()) {
      if (p->state() != GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
        peers_.remove(p->id());  // a publisher that dropped without DELETE gives way
      }
    }
    if (!peers_.reserve(1)) {
      reply(NodeReply::text(409, "this WHIP endpoint already has a publisher (DELETE its resource first)"));
      return;
    }
    PeerOptions o{.receive = true,
                  .local_addresses = split_addresses(params().ice_local_addresses),
                  .stun_server = params().stun_server,
                  .max_bitrate_kbps = params().max_bitrate_kbps,
                  .jitter_latency_ms = params().jitter_buffer_ms};
    peers_.negotiate(ctx, std::move(o), std::move(request.body), "publisher", std::move(reply));
  }

  Result<Produced> produce(NodeContext& ctx) override {
    if (ctx.stop_requested()) {
      return Produced::kDone;
    }
    auto peers = peers_.snapshot();
    if (peers.empty()) {
      // Nothing to read: wait briefly, then let the runner apply requests and stops.
      ctx.sleep_until(Clock::now() + std::chrono::milliseconds(20));
      current_.clear();
      return Produced::kMore;
    }
    Peer& peer = *peers.front();
    if (peer.id() != current_) {
      current_ = peer.id();
      first_pts_ns_ = -1;
      base_us_ = next_pts_us_;
      window_start_ = Clock::now();
      window_bytes_ = 0;
    }
    GstSample* sample = peer.pull(std::chrono::milliseconds(20));
    if (sample == nullptr) {
      if (peers_.prune() > 0) {
        ctx.log().info("WHIP publisher {} is gone", current_);
      }
      return Produced::kMore;
    }
    GstBuffer* buf = gst_sample_get_buffer(sample);
    GstMapInfo map;
    Status s = Status::ok();
    if (buf != nullptr && gst_buffer_map(buf, &map, GST_MAP_READ)) {
      s = emit(ctx, peer, {reinterpret_cast<const std::byte*>(map.data), map.size},
               GST_BUFFER_PTS_IS_VALID(buf) ? static_cast<std::int64_t>(GST_BUFFER_PTS(buf)) : -1);
      gst_buffer_unmap(buf, &map);
    }
    gst_sample_unref(sample);
    if (!s.is_ok()) {
      return s;
    }
    return Produced::kMore;
  }

 private:
  Status emit(NodeContext& ctx, Peer& peer, std::span<const std::byte> data, std::int64_t pts_ns) {
    if (!announced_) {
      StreamInfo info;
      info.codec = "opus";
      info.sample_rate = 48000;
      info.channels = static_cast<std::uint16_t>(std::clamp(peer.channels(), 1, 2));
      info.content_type = "audio/opus";
      info.extradata = opus_head(info.channels);
      SKIT_RETURN_IF_ERROR(ctx.output(0).write_stream_info(info, PacketKind::kEncodedAudio));
      announced_ = true;
    }
    const std::int64_t duration = opus_packet_us(data);
    std::int64_t pts = next_pts_us_;
    if (pts_ns >= 0) {
      if (first_pts_ns_ < 0) {
        first_pts_ns_ = pts_ns;
      }
      pts = std::max(base_us_ + (pts_ns - first_pts_ns_) / 1000, next_pts_us_);
    }
    next_pts_us_ = pts + duration;
    // The publisher's bitrate over 2 s windows: more than twice the announced limit ends it.
    window_bytes_ += data.size();
    const auto elapsed = Clock::now() - window_start_;
    if (elapsed >= std::chrono::seconds(2)) {
      const double kbps = static_cast<double>(window_bytes_) * 8 /
                          std::chrono::duration<double, std::milli>(elapsed).count();
      if (kbps > 2.0 * static_cast<double>(params().max_bitrate_kbps)) {
        ctx.log().warn("WHIP publisher {} sends {:.0f} kbit/s, over twice max_bitrate_kbps {}: "
                       "disconnected", peer.id(), kbps, params().max_bitrate_kbps);
        peers_.remove(peer.id());
        return Status::ok();
      }
      window_start_ = Clock::now();
      window_bytes_ = 0;
    }
    PacketHeader h{.kind = PacketKind::kEncodedAudio, .pts_us = pts, .duration_us = duration,
                   .flags = kFlagKeyframe};
    return ctx.output(0).write(data, h);
  }

  PeerSet peers_;
  std::string current_;
  bool announced_ = false;
  std::int64_t first_pts_ns_ = -1;
  std::int64_t base_us_ = 0;
  std::int64_t next_pts_us_ = 0;
  Clock::time_point window_start_{};
  std::size_t window_bytes_ = 0;
};
SKIT_REGISTER_NODE(WhipNode);

// ---- WHEP: a session output ----------------------------------------------------------------

struct WhepParams {
  SKIT_WEBRTC_COMMON_PARAMS
  std::int64_t max_viewers = 10;
  static void describe(ParamSchemaBuilder<WhepParams>& b) {
    describe_common(b);
    b.field("max_viewers", &WhepParams::max_viewers,
            "Most viewers at once; one more is refused with 503.")
        .range(1, 1000);
  }
  [[nodiscard]] Status validate() const { return validate_common(ice_local_addresses, stun_server); }
};

class WhepNode final : public NodeWithParams<WhepParams> {
 public:
  static constexpr std::string_view kKind = "transport::webrtc::whep";
  static constexpr std::string_view kSummary =
      "WebRTC playback (WHEP): browsers play the session's Opus audio from POST "
      "/whep/{session}/{node id}, up to max_viewers at once.";
  static constexpr std::string_view kCategory = "transport";
  static constexpr bool kNeedsNetwork = true;
  static constexpr std::string_view kHttpEndpoint = "whep";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::encoded_audio("opus")}}}; }
  static std::vector<OutputPinSpec> outputs() { return {}; }

  using NodeWithParams::NodeWithParams;

  Status prepare(NodeContext& /*ctx*/) override { return init_gstreamer(); }

  void on_request(NodeContext& ctx, NodeRequest request, NodeReplier reply) override {
    if (request.method == "DELETE") {
      peers_.end_peer(ctx, request.resource, "viewer", reply);
      return;
    }
    peers_.prune();
    if (!peers_.reserve(static_cast<std::size_t>(params().max_viewers))) {
      reply(NodeReply::text(503, "this WHEP endpoint has its " + std::to_string(params().max_viewers) +
                                     " viewers (max_viewers)"));
      return;
    }
    PeerOptions o{.receive = false,
                  .local_addresses = split_addresses(params().ice_local_addresses),
                  .stun_server = params().stun_server,
                  .max_bitrate_kbps = params().max_bitrate_kbps};
    peers_.negotiate(ctx, std::move(o), std::move(request.body), "viewer", std::move(reply));
  }

  Status process(NodeContext& ctx, const PacketView& packet) override {
    if (++since_prune_ >= 50) {
      since_prune_ = 0;
      if (const std::size_t n = peers_.prune(); n > 0) {
        ctx.log().info("{} WHEP viewer(s) gone", n);
      }
    }
    const std::int64_t duration =
        packet.header.duration_us > 0 ? packet.header.duration_us : opus_packet_us(packet.data);
    for (const auto& peer : peers_.snapshot()) {
      peer->push(packet.data, packet.header.pts_us, duration);
    }
    return Status::ok();
  }

 private:
  PeerSet peers_;
  int since_prune_ = 0;
};
SKIT_REGISTER_NODE(WhepNode);

}  // namespace skit::nodes
