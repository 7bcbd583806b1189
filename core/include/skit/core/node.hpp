// SPDX-License-Identifier: MPL-2.0
// The node API. A node owns only its media logic; the runtime owns the loop, the rings, the
// lifecycle, stats and backpressure. Nodes never see shared memory, ZeroMQ or processes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "skit/core/files.hpp"
#include "skit/core/packet_type.hpp"
#include "skit/core/params.hpp"
#include "skit/core/status.hpp"
#include "skit/core/stream_info.hpp"

namespace spdlog {
class logger;
}

namespace skit {

/// Flags carried by a packet.
enum PacketFlags : std::uint32_t {
  kFlagNone = 0,
  kFlagKeyframe = 1U << 0,
  kFlagDiscontinuity = 1U << 1,
  kFlagStreamInfo = 1U << 2,  // payload is a serialized StreamInfo (see stream_info.hpp)
};

/// Timing and format of one packet. pts/duration in microseconds; pts < 0 means unknown.
struct PacketHeader {
  PacketKind kind = PacketKind::kBinary;
  std::int64_t pts_us = -1;
  std::int64_t duration_us = 0;
  std::uint32_t flags = kFlagNone;
  std::uint32_t sample_rate = 0;  // RawAudio
  std::uint16_t channels = 0;     // RawAudio
  // EncodedAudio: decoded samples to discard at the start / end of this packet (encoder
  // priming, Opus pre-skip, padding of the last frame), at the codec's sample rate.
  std::uint32_t trim_start = 0;
  std::uint32_t trim_end = 0;
};

/// A received packet, borrowed for the duration of Node::process(). Its bytes live in a shared
/// memory slot that the runtime releases after process() returns.
struct PacketView {
  PacketHeader header;
  std::span<const std::byte> data;
  std::uint64_t sequence = 0;
  std::size_t input_index = 0;
  std::uint64_t forward_token = 0;  // opaque; lets OutputWriter::forward pass the slot on

  /// Interleaved f32 samples of a RawAudio packet.
  [[nodiscard]] std::span<const float> samples() const {
    return {reinterpret_cast<const float*>(data.data()), data.size() / sizeof(float)};
  }
};

/// Writes packets to one output pin; every connection of the pin receives them.
class OutputWriter {
 public:
  virtual ~OutputWriter() = default;
  /// Borrows a writable buffer of at least `bytes`; blocks while every slot is in use.
  /// One loan at a time per output. Fails if `bytes` exceeds the slot size or on shutdown.
  virtual Result<std::span<std::byte>> loan(std::size_t bytes) = 0;
  /// Publishes the first `used` bytes of the current loan to all connections.
  virtual Status publish(std::size_t used, const PacketHeader& header) = 0;
  /// Passes a received packet on without copying its payload.
  virtual Status forward(const PacketView& packet) = 0;
  /// Largest payload a single packet may carry on this output.
  [[nodiscard]] virtual std::size_t max_packet_bytes() const = 0;

  /// Copies `bytes` into a slot and publishes it.
  Status write(std::span<const std::byte> bytes, const PacketHeader& header);
  /// Announces the stream's format to every consumer, ahead of its data packets.
  Status write_stream_info(const StreamInfo& info, PacketKind kind);
};

/// Byte stream supplied by the host for `streamkit::http_input` (upload body, --input file).
class HostByteSource {
 public:
  virtual ~HostByteSource() = default;
  /// Reads up to buffer.size() bytes; 0 means end of stream.
  virtual Result<std::size_t> read(std::span<std::byte> buffer) = 0;
  /// The run is stopping: a read() waiting for bytes should fail now (from another thread).
  virtual void interrupt() {}
};

/// Byte stream consumer supplied by the host for `streamkit::http_output`.
class HostByteSink {
 public:
  virtual ~HostByteSink() = default;
  virtual Status write(std::span<const std::byte> bytes) = 0;
  virtual Status close() = 0;
  /// The stream's format, announced before its bytes (a muxer's content type).
  virtual void on_stream_info(const StreamInfo& /*info*/) {}
};

/// An HTTP exchange addressed to one node of a live session: WebRTC signalling (a WHIP offer,
/// a WHEP viewer leaving). The gateway checks who may send it and forwards it; the supervisor
/// carries it to the node's worker; media never passes this way.
struct NodeRequest {
  std::string method;        // "POST", "DELETE", "PATCH"
  std::string resource;      // the path after the node's endpoint: "" or the id of a resource it made
  std::string content_type;  // of `body`
  std::string body;
};

struct NodeReply {
  int status = 200;
  std::string content_type;
  std::string body;
  /// A resource the request created (a WebRTC peer): the gateway answers with its Location.
  std::string created_resource;

  static NodeReply text(int status, std::string message) {
    return {status, "text/plain; charset=utf-8", std::move(message) + "\n", {}};
  }
};

/// Delivers the reply to a NodeRequest, once, from any thread.
using NodeReplier = std::function<void(NodeReply)>;

/// What the runtime offers a running node.
class NodeContext {
 public:
  virtual ~NodeContext() = default;
  [[nodiscard]] virtual const std::string& node_id() const = 0;
  [[nodiscard]] virtual std::size_t output_count() const = 0;
  virtual OutputWriter& output(std::size_t index) = 0;
  /// The index in output() of the output pin named `pin`, or nullopt when it is not connected.
  [[nodiscard]] virtual std::optional<std::size_t> output_index(std::string_view /*pin*/) const {
    return std::nullopt;
  }
  /// The pin name of input `index` (PacketView::input_index); "" when unknown.
  [[nodiscard]] virtual std::string input_pin(std::size_t /*index*/) const { return {}; }
  [[nodiscard]] virtual bool stop_requested() const = 0;
  /// Sleeps until `deadline` or until a stop is requested; false when stopped.
  virtual bool sleep_until(std::chrono::steady_clock::time_point deadline) = 0;
  virtual spdlog::logger& log() = 0;
  /// The last StreamInfo received on input `index`, or null.
  [[nodiscard]] virtual const StreamInfo* input_info(std::size_t index) const = 0;
  /// Pull-mode nodes (kPullsInput) read their Binary input 0 as a byte stream: blocks until
  /// data arrives; returns 0 at end of stream. Others get an error.
  virtual Result<std::size_t> read_input(std::span<std::byte> buffer) = 0;
  /// Host streams; null unless this node runs host-side (see NodeExecution::kHost).
  virtual HostByteSource* host_source() { return nullptr; }
  virtual HostByteSink* host_sink() { return nullptr; }
  /// Opens a file named by one of the node's file-path params (ParamFieldRef::file_path). In a
  /// confined run (the server) the path is the canonical one the supervisor checked, and no
  /// symbolic link is followed; see skit::open_file().
  virtual Result<UniqueFd> open_file(const std::string& path, FileAccess access) {
    return skit::open_file(path, access, /*confined=*/false);
  }
  /// Emits a telemetry event of this node (`event_type` such as "vad.speech_start", `data` a
  /// JSON object), delivered to the session's watchers as a `nodetelemetry` event. Rate limits
  /// are the caller's; a context without watchers drops it. timestamp_us < 0: unknown.
  virtual Status emit_telemetry(std::string_view /*event_type*/, const Json& /*data*/,
                                std::int64_t /*timestamp_us*/ = -1) {
    return Status::ok();
  }
  /// Nodes fed by inputs (process()): asks for Node::on_timer() at `deadline` (or just after),
  /// between packets, whether or not input arrives: a node with a clock of its own (a clocked
  /// mixer). One pending deadline; a new call replaces it. Called on the node's thread.
  virtual void wake_at(std::chrono::steady_clock::time_point /*deadline*/) {}
};

/// Base of every node. Lifecycle: prepare() (before the sandbox engages; open files here),
/// start() (on the node's own thread, once the sandbox is engaged: untrusted set-up such as a
/// plugin's constructor belongs here), then either produce() repeatedly (sources, and pull-mode nodes that read their input with
/// ctx.read_input()) or process() per input packet, on_input_end() per input, and finish()
/// once (flush: encoders drain, muxers finalize). Every method returns an error instead of
/// throwing.
class Node {
 public:
  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  Node(Node&&) = delete;
  Node& operator=(Node&&) = delete;
  virtual ~Node() = default;

  enum class Produced : std::uint8_t { kMore, kDone };

  virtual Status prepare(NodeContext& /*ctx*/) { return Status::ok(); }
  virtual Status start(NodeContext& /*ctx*/) { return Status::ok(); }
  virtual Result<Produced> produce(NodeContext& /*ctx*/) {
    return Status(ErrorCode::kInternal, "source node does not implement produce()");
  }
  virtual Status process(NodeContext& /*ctx*/, const PacketView& /*packet*/) {
    return Status(ErrorCode::kInternal, "node does not accept input");
  }
  virtual Status on_input_end(NodeContext& /*ctx*/, std::size_t /*input*/) { return Status::ok(); }
  /// A stream announced its format on `input` (also available later via ctx.input_info()).
  virtual Status on_stream_info(NodeContext& /*ctx*/, std::size_t /*input*/,
                                const StreamInfo& /*info*/) {
    return Status::ok();
  }
  virtual Status finish(NodeContext& /*ctx*/) { return Status::ok(); }
  /// The deadline asked for with NodeContext::wake_at() has come.
  virtual Status on_timer(NodeContext& /*ctx*/) { return Status::ok(); }
  /// Applies a live param patch between two packets.
  virtual Status tune(const Json& patch);
  /// An HTTP request for this node (kinds with kHttpEndpoint), called on the node's thread
  /// between two packets. The node may answer at once or later from another thread (after
  /// ICE gathering, say), but must answer: `reply` exactly once.
  virtual void on_request(NodeContext& /*ctx*/, NodeRequest /*request*/, NodeReplier reply) {
    reply(NodeReply::text(404, "this node answers no requests"));
  }
};

/// A node with a typed params struct; tune() decodes a patch onto a copy and swaps it in.
template <DescribedParams P>
class NodeWithParams : public Node {
 public:
  using Params = P;
  explicit NodeWithParams(P params) : params_(std::move(params)) {}

  Status tune(const Json& patch) override {
    P next = params_;
    std::vector<Status> errors;
    param_schema_of<P>().decode(&next, patch, /*tuning=*/true, errors);
    if (!errors.empty()) {
      return errors.front();
    }
    if constexpr (SelfValidating<P>) {
      SKIT_RETURN_IF_ERROR(next.validate());
    }
    params_ = std::move(next);
    return Status::ok();
  }

 protected:
  [[nodiscard]] const P& params() const { return params_; }

 private:
  P params_;
};

}  // namespace skit
