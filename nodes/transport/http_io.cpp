// SPDX-License-Identifier: MPL-2.0
// streamkit::http_input / streamkit::http_output: the oneshot request's body in and the
// response body out. They run host-side (in the supervisor), fed by the gateway's HTTP
// request or by `skit run --input/--output`.
#include "skit/core/registry.hpp"

namespace skit::nodes {

struct HttpInputParams {
  std::string field = "media";

  static void describe(ParamSchemaBuilder<HttpInputParams>& b) {
    b.field("field", &HttpInputParams::field, "Multipart field carrying the media.");
  }
};

class HttpInputNode final : public NodeWithParams<HttpInputParams> {
 public:
  static constexpr std::string_view kKind = "streamkit::http_input";
  static constexpr std::string_view kSummary =
      "The uploaded media of a oneshot request (or --input of skit run), as Binary packets.";
  static constexpr std::string_view kCategory = "transport";
  static constexpr NodeExecution kExecution = NodeExecution::kHost;
  static constexpr std::size_t kChunkBytes = 64 * 1024;
  static std::vector<InputPinSpec> inputs() { return {}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::binary()}}; }
  static std::size_t max_packet_bytes(const Params& /*p*/) { return kChunkBytes; }

  using NodeWithParams::NodeWithParams;

  Result<Produced> produce(NodeContext& ctx) override {
    HostByteSource* source = ctx.host_source();
    if (source == nullptr) {
      return Status(ErrorCode::kInvalidArgument, "no input stream attached to http_input");
    }
    auto& out = ctx.output(0);
    auto buffer = out.loan(kChunkBytes);
    if (!buffer) {
      return buffer.status();
    }
    // Pass on what has arrived, without waiting to fill the chunk: a small upload (or a live
    // one) reaches the pipeline at once. The source returns everything it has queued, up to
    // the chunk's size, so a fast upload still travels in large packets.
    auto n = source->read(*buffer);
    if (!n) {
      return n.status();
    }
    if (*n == 0) {
      return Produced::kDone;
    }
    SKIT_RETURN_IF_ERROR(out.publish(*n, PacketHeader{.kind = PacketKind::kBinary}));
    return Produced::kMore;
  }
};
SKIT_REGISTER_NODE(HttpInputNode);

struct HttpOutputParams {
  std::string content_type;

  static void describe(ParamSchemaBuilder<HttpOutputParams>& b) {
    b.field("content_type", &HttpOutputParams::content_type,
            "Content-Type of the response; empty = from the upstream node.");
  }
};

class HttpOutputNode final : public NodeWithParams<HttpOutputParams> {
 public:
  static constexpr std::string_view kKind = "streamkit::http_output";
  static constexpr std::string_view kSummary =
      "Streams the bytes of the packets it receives (any kind: a muxer's Binary, an "
      "encoder's raw frames, JSON) as the oneshot response body (or --output of skit run).";
  static constexpr std::string_view kCategory = "transport";
  static constexpr NodeExecution kExecution = NodeExecution::kHost;
  // Any kind, as StreamKit's: an encoder connected straight to it streams its raw frames.
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::any()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {}; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    HostByteSink* sink = ctx.host_sink();
    if (sink == nullptr) {
      return Status(ErrorCode::kInvalidArgument, "no output stream attached to http_output");
    }
    if (!announced_ && !params().content_type.empty()) {
      // An upstream without a stream format (core::json_serialize) announces nothing: the
      // param still names the response's type, before its first byte.
      StreamInfo info;
      info.content_type = params().content_type;
      sink->on_stream_info(info);
    }
    announced_ = true;
    return sink->write(packet.data);
  }

  Status on_stream_info(NodeContext& ctx, std::size_t /*input*/, const StreamInfo& info) override {
    if (HostByteSink* sink = ctx.host_sink()) {
      StreamInfo announced = info;
      if (!params().content_type.empty()) {
        announced.content_type = params().content_type;  // an explicit param wins
      }
      sink->on_stream_info(announced);
      announced_ = true;
    }
    return Status::ok();
  }

  Status finish(NodeContext& ctx) override {
    HostByteSink* sink = ctx.host_sink();
    return sink != nullptr ? sink->close() : Status::ok();
  }

 private:
  bool announced_ = false;  // the sink has heard the content type
};
SKIT_REGISTER_NODE(HttpOutputNode);

}  // namespace skit::nodes
