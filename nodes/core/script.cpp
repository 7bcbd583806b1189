// SPDX-License-Identifier: MPL-2.0
// core::script runs a user's JavaScript `process(packet)` on every packet, in the system
// Node.js as a sandboxed child of the worker (script_process.cpp), one child per node, with a
// vm context per script (script_runner.js). Packets cross as StreamKit marshals them:
//   Text          {type: "Text", data}
//   Transcription {type: "Transcription", data: {text, segments, language?}}
//   Custom        {type: "Custom", type_id, encoding: "json", data, metadata?}
//   RawAudio      {type: "Audio", metadata: {sample_rate, channels, frames, duration_ms}}
//   other kinds   {type: "Binary", metadata: {size, kind}}
// Samples and bytes never cross: for audio and binary packets the script decides only to keep
// (any object) or drop (null) the packet, which then passes on unchanged without a copy.
// A script error, a timeout or a dead script process passes the packet on unchanged and is
// reported (log, and a `script.error` telemetry event).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cctype>
#include <chrono>

#include "script_fetch.hpp"
#include "script_process.hpp"
#include "skit/core/registry.hpp"
#include "skit/core/script_policy.hpp"

namespace skit::nodes {

namespace {

using Clock = std::chrono::steady_clock;
using script::Frame;

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

struct ScriptParams {
  std::string script;
  std::string script_path;
  std::int64_t timeout_ms = 0;
  std::int64_t memory_limit_mb = 0;
  Json headers;

  static void describe(ParamSchemaBuilder<ScriptParams>& b) {
    b.field("script", &ScriptParams::script,
            "JavaScript source defining process(packet) (sync or async), which returns the "
            "packet to emit or null to drop it. Either script or script_path.");
    b.field("script_path", &ScriptParams::script_path,
            "File holding the script instead (security.allowed_file_paths).")
        .file_path(FileAccess::kRead);
    b.field("timeout_ms", &ScriptParams::timeout_ms,
            "Longest a process() call may run, fetches included; an overrun passes the packet "
            "on unchanged. 0: the server's script.default_timeout_ms (100).")
        .range(0, 600000)
        .tunable();
    b.field("memory_limit_mb", &ScriptParams::memory_limit_mb,
            "JavaScript heap limit of the script process; its resident size may exceed it by "
            "128 MiB before it is killed. 0: the server's script.default_memory_limit_mb (64).")
        .range(0, 16384);
    b.field("headers", &ScriptParams::headers,
            "Secret-backed fetch() headers: [{secret, header, template}] where secret names an "
            "entry of the server's script.secrets and template (default \"{}\") receives its "
            "value, e.g. \"Bearer {}\". Added by the worker; the script never sees the value.");
  }

  [[nodiscard]] Status validate() const {
    if (!script.empty() && !script_path.empty()) {
      return Status(ErrorCode::kInvalidParam, "set script or script_path, not both",
                    {.param = "script_path"});
    }
    if (script_path.empty() && blank(script)) {
      return Status(ErrorCode::kInvalidParam,
                    script.empty() ? "a script is required (script or script_path)"
                                   : "the script is empty",
                    {.param = "script"});
    }
    if (!headers.is_null()) {
      if (!headers.is_array()) {
        return Status(ErrorCode::kInvalidParam, "must be a list of {secret, header, template}",
                      {.param = "headers"});
      }
      for (std::size_t i = 0; i < headers.size(); ++i) {
        const auto& h = headers[i];
        const std::string where = "headers[" + std::to_string(i) + "]";
        if (!h.is_object() || !h.contains("secret") || !h["secret"].is_string() ||
            !h.contains("header") || !h["header"].is_string() ||
            (h.contains("template") && !h["template"].is_string())) {
          return Status(ErrorCode::kInvalidParam,
                        where + " must be {secret: name, header: name, template?: \"...{}...\"}",
                        {.param = "headers"});
        }
        if (h.contains("template") && h["template"].get<std::string>().find("{}") == std::string::npos) {
          return Status(ErrorCode::kInvalidParam, where + ": template must contain {}",
                        {.param = "headers"});
        }
      }
    }
    return Status::ok();
  }
};

/// RSS allowed above the heap limit before the script process is killed: Node.js itself
/// (about 45 MiB), the young generation and modest buffers.
constexpr std::uint64_t kRssHeadroomBytes = 128ULL << 20;
/// Time past timeout_ms that the worker waits before it declares the script process hung
/// (the vm timeout fires inside Node.js first).
constexpr auto kHangGrace = std::chrono::milliseconds(1000);

class ScriptNode final : public NodeWithParams<ScriptParams> {
 public:
  static constexpr std::string_view kKind = "core::script";
  static constexpr std::string_view kSummary =
      "Runs JavaScript process(packet) on each packet in a sandboxed Node.js (sync or async; "
      "console, synchronous fetch with an allow-list, telemetry).";
  static constexpr std::string_view kCategory = "core";
  static constexpr bool kNeedsNetwork = true;  // fetch() is performed by the worker
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::any()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::passthrough()}}; }
  static std::size_t max_packet_bytes(const Params& /*p*/) { return 1024 * 1024; }

  using NodeWithParams::NodeWithParams;

  Status prepare(NodeContext& ctx) override {
    auto policy = ScriptPolicy::from_environment();
    if (!policy) {
      return policy.status();
    }
    policy_ = std::move(policy).value();
    std::string source = params().script;
    std::string name = ctx.node_id() + ".js";
    if (!params().script_path.empty()) {
      auto text = read_script(ctx);
      if (!text) {
        return text.status();
      }
      source = std::move(text).value();
      name = params().script_path;
      if (blank(source)) {
        return Status(ErrorCode::kInvalidParam, "the script file '" + params().script_path + "' is empty",
                      {.param = "script_path"});
      }
    }
    timeout_ms_ = effective_timeout();
    memory_mb_ = params().memory_limit_mb > 0 ? static_cast<std::uint32_t>(params().memory_limit_mb)
                                              : policy_.default_memory_limit_mb;
    auto fetcher = script::Fetcher::make(policy_, params().headers);
    if (!fetcher) {
      return fetcher.status();
    }
    fetcher_ = std::move(fetcher).value();
    script::init_fetch_library();

    script::SandboxReport report;
    SKIT_RETURN_IF_ERROR(child_.spawn({.heap_limit_mb = memory_mb_}, &report));
    if (report.landlock_abi == 0) {
      ctx.log().warn("script sandbox degraded: Landlock is unavailable in this kernel, so the "
                     "Node.js child is confined by seccomp only (no exec/fork/sockets), not "
                     "kept from reading files");
    } else {
      ctx.log().debug("script process {} sandboxed (seccomp, Landlock ABI {})", child_.pid(),
                      report.landlock_abi);
    }
    const Json init = {{"script", source}, {"timeout_ms", timeout_ms_}, {"name", name}};
    SKIT_RETURN_IF_ERROR(child_.send(Frame::kInit, init.dump(-1, ' ', false, Json::error_handler_t::replace)));
    // Node.js starts in about 50 ms; top-level code may run up to ten timeouts.
    const auto deadline = Clock::now() + std::chrono::seconds(20) +
                          std::chrono::milliseconds(10 * timeout_ms_);
    while (true) {
      auto frame = child_.receive(deadline);
      if (!frame) {
        return Status(ErrorCode::kUnavailable,
                      "the script process did not start: " + frame.status().message() +
                          " (is Node.js 18 or newer installed?)");
      }
      if (frame->type == Frame::kLog) {
        log_line(ctx, frame->payload);
        continue;
      }
      if (frame->type != Frame::kReady) {
        continue;
      }
      const Json ready = Json::parse(frame->payload, nullptr, false);
      if (!ready.is_object() || !ready.value("ok", false)) {
        const std::string why = ready.is_object() ? ready.value("error", std::string("unknown error"))
                                                  : std::string("bad answer");
        return Status(ErrorCode::kInvalidParam, "script rejected: " + why,
                      {.param = params().script_path.empty() ? "script" : "script_path"});
      }
      break;
    }
    return Status::ok();
  }

  Status process(NodeContext& ctx, const PacketView& packet) override {
    ++packets_;
    if (!child_.alive()) {
      return ctx.output(0).forward(packet);  // reported once, when the process ended
    }
    std::string input;
    if (Status s = marshal(packet, input); !s.is_ok()) {
      report(ctx, "error", s.message());
      return ctx.output(0).forward(packet);
    }
    if (Status s = child_.send(Frame::kPacket, input); !s.is_ok()) {
      process_ended(ctx, s.message());
      return ctx.output(0).forward(packet);
    }
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_) + kHangGrace;
    while (true) {
      const auto tick = std::min(deadline, Clock::now() + std::chrono::milliseconds(20));
      auto frame = child_.receive(tick);
      if (!frame) {
        if (frame.status().code() != ErrorCode::kDeadlineExceeded) {
          process_ended(ctx, frame.status().message());
          return ctx.output(0).forward(packet);
        }
        if (const auto rss = child_.rss_bytes(); rss > rss_limit()) {
          child_.kill();
          process_ended(ctx, "killed: its resident memory reached " + std::to_string(rss >> 20) +
                                 " MiB (memory_limit_mb " + std::to_string(memory_mb_) + " + " +
                                 std::to_string(kRssHeadroomBytes >> 20) + " MiB)");
          return ctx.output(0).forward(packet);
        }
        if (Clock::now() >= deadline) {
          child_.kill();
          process_ended(ctx, "killed: it did not answer within " +
                                 std::to_string(timeout_ms_ + kHangGrace.count()) + " ms");
          return ctx.output(0).forward(packet);
        }
        continue;
      }
      switch (frame->type) {
        case Frame::kLog:
          log_line(ctx, frame->payload);
          break;
        case Frame::kTelemetry:
          telemetry(ctx, frame->payload);
          break;
        case Frame::kFetch: {
          const auto started = Clock::now();
          const std::string answer = do_fetch(ctx, frame->payload);
          deadline += Clock::now() - started;  // the watchdog in Node.js does not see it either
          if (Status s = child_.send(Frame::kFetchResult, answer); !s.is_ok()) {
            process_ended(ctx, s.message());
            return ctx.output(0).forward(packet);
          }
          break;
        }
        case Frame::kResult:
          return emit_result(ctx, packet, frame->payload);
        default:
          break;
      }
    }
  }

  Status finish(NodeContext& ctx) override {
    if (errors_ + timeouts_ > 0) {
      ctx.log().info("script: {} packets, {} errors, {} timeouts (passed on unchanged)", packets_,
                     errors_, timeouts_);
    }
    child_.kill();
    return Status::ok();
  }

  Status tune(const Json& patch) override {
    SKIT_RETURN_IF_ERROR(NodeWithParams::tune(patch));
    timeout_ms_ = effective_timeout();
    if (child_.alive()) {
      (void)child_.send(Frame::kTune, Json{{"timeout_ms", timeout_ms_}}.dump());
    }
    return Status::ok();
  }

 private:
  [[nodiscard]] std::uint32_t effective_timeout() const {
    return params().timeout_ms > 0 ? static_cast<std::uint32_t>(params().timeout_ms)
                                   : policy_.default_timeout_ms;
  }
  [[nodiscard]] std::uint64_t rss_limit() const {
    return (std::uint64_t{memory_mb_} << 20) + kRssHeadroomBytes;
  }

  Result<std::string> read_script(NodeContext& ctx) {
    auto fd = ctx.open_file(params().script_path, FileAccess::kRead);
    if (!fd) {
      return fd.status();
    }
    std::string text;
    char buf[65536];
    while (true) {
      const ssize_t n = ::read(fd->get(), buf, sizeof buf);
      if (n < 0) {
        return Status(ErrorCode::kInternal, "cannot read '" + params().script_path + "'");
      }
      if (n == 0) {
        break;
      }
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() > (16U << 20)) {
        return Status(ErrorCode::kInvalidParam, "the script file is larger than 16 MiB",
                      {.param = "script_path"});
      }
    }
    return text;
  }

  static std::string_view payload_of(const PacketView& packet) {
    return {reinterpret_cast<const char*>(packet.data.data()), packet.data.size()};
  }

  static Status marshal(const PacketView& packet, std::string& out) {
    Json j;
    const auto& h = packet.header;
    switch (h.kind) {
      case PacketKind::kText:
        j = {{"type", "Text"}, {"data", std::string(payload_of(packet))}};
        break;
      case PacketKind::kTranscription: {
        Json data = Json::parse(payload_of(packet), nullptr, false);
        if (data.is_discarded()) {
          return Status(ErrorCode::kCorruptMedia, "a Transcription packet without valid JSON");
        }
        j = {{"type", "Transcription"}, {"data", std::move(data)}};
        break;
      }
      case PacketKind::kCustom: {
        Json custom = Json::parse(payload_of(packet), nullptr, false);
        if (custom.is_discarded()) {
          return Status(ErrorCode::kCorruptMedia, "a Custom packet without valid JSON");
        }
        j = {{"type", "Custom"}, {"encoding", "json"}};
        if (custom.is_object() && custom.contains("type_id")) {
          j["type_id"] = custom["type_id"];
          j["data"] = custom.value("data", Json());
        } else {
          j["type_id"] = "";
          j["data"] = std::move(custom);
        }
        Json meta = {{"sequence", packet.sequence}};
        if (h.pts_us >= 0) meta["timestamp_us"] = h.pts_us;
        if (h.duration_us > 0) meta["duration_us"] = h.duration_us;
        j["metadata"] = std::move(meta);
        break;
      }
      case PacketKind::kRawAudio: {
        const std::uint64_t channels = std::max<std::uint16_t>(h.channels, 1);
        const std::uint64_t frames = packet.data.size() / sizeof(float) / channels;
        const double duration_ms =
            h.sample_rate > 0 ? static_cast<double>(frames) * 1000.0 / h.sample_rate : 0.0;
        j = {{"type", "Audio"},
             {"metadata",
              {{"sample_rate", h.sample_rate}, {"channels", h.channels}, {"frames", frames},
               {"duration_ms", duration_ms}}}};
        break;
      }
      default:
        j = {{"type", "Binary"},
             {"metadata", {{"size", packet.data.size()}, {"kind", packet_kind_name(h.kind)}}}};
        break;
    }
    out = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    return Status::ok();
  }

  Status emit_result(NodeContext& ctx, const PacketView& packet, const std::string& payload) {
    const Json r = Json::parse(payload, nullptr, false);
    const std::string state = r.is_object() ? r.value("state", "") : "";
    if (state == "drop") {
      return Status::ok();
    }
    if (state == "timeout") {
      ++timeouts_;
      report(ctx, "timeout", "process() ran longer than timeout_ms " + std::to_string(timeout_ms_) + " ms");
      return ctx.output(0).forward(packet);
    }
    if (state != "out") {
      ++errors_;
      report(ctx, "error", r.is_object() ? r.value("error", std::string("unknown error")) : "bad answer");
      return ctx.output(0).forward(packet);
    }
    const Json out = Json::parse(r.value("out", std::string("null")), nullptr, false);
    auto converted = unmarshal(packet, out);
    if (!converted) {
      ++errors_;
      report(ctx, "error", converted.status().message());
      return ctx.output(0).forward(packet);
    }
    if (!converted->has_value()) {
      return ctx.output(0).forward(packet);  // audio/binary kept: the original bytes go on
    }
    const std::string& bytes = **converted;
    if (bytes.size() > ctx.output(0).max_packet_bytes()) {
      ++errors_;
      report(ctx, "error", "the returned packet (" + std::to_string(bytes.size()) +
                               " bytes) is larger than an output slot");
      return ctx.output(0).forward(packet);
    }
    return ctx.output(0).write(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())),
                               packet.header);
  }

  /// The bytes of the packet to emit, or nullopt to forward the original unchanged.
  static Result<std::optional<std::string>> unmarshal(const PacketView& packet, const Json& out) {
    if (!out.is_object()) {
      return Status(ErrorCode::kInvalidArgument, "process() must return a packet object or null");
    }
    const std::string type = out.value("type", "");
    const auto kind = packet.header.kind;
    const auto mismatch = [&](std::string_view expected) {
      return Status(ErrorCode::kInvalidArgument,
                    "process() returned a packet of type '" + type + "' for a " +
                        std::string(expected) + " packet (the output has the input's type)");
    };
    switch (kind) {
      case PacketKind::kText: {
        if (type != "Text") return mismatch("Text");
        if (!out.contains("data") || !out["data"].is_string()) {
          return Status(ErrorCode::kInvalidArgument, "a Text packet needs data: a string");
        }
        return std::optional<std::string>(out["data"].get<std::string>());
      }
      case PacketKind::kTranscription: {
        if (type != "Transcription") return mismatch("Transcription");
        if (!out.contains("data") || !out["data"].is_object()) {
          return Status(ErrorCode::kInvalidArgument, "a Transcription packet needs data: an object");
        }
        return std::optional<std::string>(out["data"].dump(-1, ' ', false, Json::error_handler_t::replace));
      }
      case PacketKind::kCustom: {
        if (type != "Custom") return mismatch("Custom");
        Json custom = {{"type_id", out.value("type_id", std::string())},
                       {"data", out.contains("data") ? out["data"] : Json()}};
        return std::optional<std::string>(custom.dump(-1, ' ', false, Json::error_handler_t::replace));
      }
      case PacketKind::kRawAudio:
        if (type != "Audio") return mismatch("Audio");
        return std::optional<std::string>();
      default:
        if (type != "Binary") return mismatch("Binary");
        return std::optional<std::string>();
    }
  }

  std::string do_fetch(NodeContext& ctx, const std::string& payload) {
    const Json req = Json::parse(payload, nullptr, false);
    script::FetchRequest request;
    if (req.is_object()) {
      request.url = req.value("url", "");
      request.method = req.value("method", "GET");
      if (req.contains("headers") && req["headers"].is_object()) {
        for (const auto& [k, v] : req["headers"].items()) {
          request.headers.emplace_back(k, v.is_string() ? v.get<std::string>() : v.dump());
        }
      }
      if (req.contains("body") && req["body"].is_string()) {
        request.body = req["body"].get<std::string>();
      }
    }
    auto answer = fetcher_.fetch(request);
    if (!answer) {
      ctx.log().warn("script fetch {} {}: {}", request.method, request.url, answer.status().message());
      return Json{{"ok", false}, {"error", answer.status().message()}}.dump();
    }
    ctx.log().debug("script fetch {} {}: HTTP {}", request.method, request.url, answer->status);
    return Json{{"ok", true}, {"status", answer->status}, {"body", answer->body}}
        .dump(-1, ' ', false, Json::error_handler_t::replace);
  }

  static void log_line(NodeContext& ctx, const std::string& payload) {
    const Json j = Json::parse(payload, nullptr, false);
    if (!j.is_object()) {
      return;
    }
    const std::string level = j.value("level", "info");
    std::string msg = j.value("msg", "");
    if (msg.size() > 8192) {
      msg.resize(8192);
      msg += "...";
    }
    if (level == "error") {
      ctx.log().error("script: {}", msg);
    } else if (level == "warn") {
      ctx.log().warn("script: {}", msg);
    } else if (level == "debug") {
      ctx.log().debug("script: {}", msg);
    } else {
      ctx.log().info("script: {}", msg);
    }
  }

  static void telemetry(NodeContext& ctx, const std::string& payload) {
    const Json j = Json::parse(payload, nullptr, false);
    if (!j.is_object() || !j.contains("event_type") || !j["event_type"].is_string()) {
      return;
    }
    (void)ctx.emit_telemetry(j["event_type"].get<std::string>(), j.value("data", Json::object()));
  }

  /// A packet passed on unchanged because of the script: logged (the first ten, then every
  /// hundredth) and emitted as telemetry.
  void report(NodeContext& ctx, std::string_view what, const std::string& message) {
    const std::uint64_t n = errors_ + timeouts_;
    if (n <= 10 || n % 100 == 0) {
      ctx.log().warn("script {} on packet #{} (passed on unchanged; {} so far): {}", what, packets_,
                     n, message.substr(0, 4096));
    }
    (void)ctx.emit_telemetry("script." + std::string(what),
                             {{"message", message.substr(0, 1024)}, {"packet", packets_}});
  }

  void process_ended(NodeContext& ctx, const std::string& why) {
    child_.kill();
    ++errors_;
    ctx.log().error("script process ended ({}) at packet #{}: every further packet passes on "
                    "unchanged",
                    why, packets_);
    (void)ctx.emit_telemetry("script.error", {{"message", "script process ended: " + why},
                                              {"packet", packets_}});
  }

  ScriptPolicy policy_;
  script::Fetcher fetcher_;
  script::ScriptProcess child_;
  std::uint32_t timeout_ms_ = 100;
  std::uint32_t memory_mb_ = 64;
  std::uint64_t packets_ = 0;
  std::uint64_t errors_ = 0;
  std::uint64_t timeouts_ = 0;
};
SKIT_REGISTER_NODE(ScriptNode);

}  // namespace
}  // namespace skit::nodes
