// SPDX-License-Identifier: MPL-2.0
#include "native_plugin_node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace skit::plugins {

namespace {

std::mutex g_log_mutex;  // plugin threads may log while the node thread reads last_error_log_

std::string bounded(const char* s, std::size_t max) {
  if (s == nullptr) {
    return {};
  }
  return std::string(s, strnlen(s, max));
}

CResult output_trampoline(const char* pin, const CPacket* packet, void* user_data) {
  return static_cast<NativePluginNode*>(user_data)->emit(pin, packet);
}

CResult telemetry_trampoline(const char* event_type, const std::uint8_t* data, std::size_t len,
                             const CPacketMetadata* metadata, void* user_data) {
  return static_cast<NativePluginNode*>(user_data)->telemetry(event_type, data, len, metadata);
}

void log_trampoline(CLogLevel level, const char* target, const char* message, void* user_data) {
  static_cast<NativePluginNode*>(user_data)->log(level, target, message);
}

std::string_view as_text(std::span<const std::byte> data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

}  // namespace

NativePluginNode::NativePluginNode(std::shared_ptr<const NativePluginRef> ref, std::string kind,
                                   std::shared_ptr<const ParamSchema> schema, Json params,
                                   std::vector<std::string> input_pins,
                                   std::vector<std::string> output_pins)
    : ref_(std::move(ref)),
      kind_(std::move(kind)),
      schema_(std::move(schema)),
      params_(std::move(params)),
      input_pins_(std::move(input_pins)),
      output_pins_(std::move(output_pins)) {}

NativePluginNode::~NativePluginNode() {
  if (handle_ != nullptr && library_) {
    library_->api().destroy_instance(handle_);
  }
}

Status NativePluginNode::start(NodeContext& ctx) {
  logger_ = &ctx.log();
  auto library = NativeLibrary::open(ref_->library_path);
  if (!library) {
    return Status(library.status().code(), kind_ + ": " + library.status().message());
  }
  const std::string loaded = native_kind(library->metadata().value("kind", ""));
  if (loaded != kind_) {
    return Status(ErrorCode::kInvalidArgument,
                  kind_ + ": the library now declares " + loaded + "; it was replaced on disk");
  }
  library_.emplace(std::move(library).value());
  clocks_.assign(output_pins_.size(), OutputClock{});
  const std::string params = params_.dump();
  handle_ = library_->api().create_instance(params.c_str(), &log_trampoline, this);
  if (handle_ == nullptr) {
    std::lock_guard lock(g_log_mutex);
    return Status(ErrorCode::kInvalidParam,
                  kind_ + ": create_instance failed" +
                      (last_error_log_.empty() ? std::string(" (the plugin logged no reason)")
                                               : ": " + last_error_log_));
  }
  return Status::ok();
}

Status NativePluginNode::call_failed(const char* call, const CResult& result) {
  std::string why = bounded(result.error_message, 4096);
  if (why.empty()) {
    std::lock_guard lock(g_log_mutex);
    why = last_error_log_.empty() ? "no reason given" : last_error_log_;
  }
  return Status(ErrorCode::kInternal, kind_ + ": " + call + " failed: " + why);
}

Status NativePluginNode::process(NodeContext& ctx, const PacketView& packet) {
  if (handle_ == nullptr) {
    return Status(ErrorCode::kInternal, kind_ + ": no plugin instance");
  }
  std::string pin = input_pins_.size() == 1 ? input_pins_.front() : ctx.input_pin(packet.input_index);
  if (pin.empty() && !input_pins_.empty()) {
    pin = input_pins_.front();
  }
  CPacket c{};
  CAudioFrame frame{};
  CCustomPacket custom{};
  CPacketMetadata meta{};
  std::string type_id;
  std::string data_json;
  switch (packet.header.kind) {
    case PacketKind::kRawAudio: {
      const auto samples = packet.samples();
      frame = CAudioFrame{packet.header.sample_rate, packet.header.channels, samples.data(),
                          samples.size()};
      c = {CPacketType_RawAudio, &frame, sizeof(frame)};
      break;
    }
    case PacketKind::kText:
      c = {CPacketType_Text, packet.data.data(), packet.data.size()};
      break;
    case PacketKind::kTranscription:
      c = {CPacketType_Transcription, packet.data.data(), packet.data.size()};
      break;
    case PacketKind::kEncodedAudio:
      c = {CPacketType_OpusAudio, packet.data.data(), packet.data.size()};
      break;
    case PacketKind::kCustom: {
      // Our Custom payload is {"type_id", "data", ...}; the ABI passes id and data apart.
      Json doc = Json::parse(as_text(packet.data), nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded() || !doc.is_object()) {
        return Status(ErrorCode::kCorruptMedia, kind_ + ": a Custom packet is not a JSON object");
      }
      type_id = doc.value("type_id", "");
      data_json = doc.contains("data") ? doc["data"].dump() : std::string("null");
      if (packet.header.pts_us >= 0) {
        meta.timestamp_us = static_cast<std::uint64_t>(packet.header.pts_us);
        meta.has_timestamp_us = true;
      }
      if (packet.header.duration_us > 0) {
        meta.duration_us = static_cast<std::uint64_t>(packet.header.duration_us);
        meta.has_duration_us = true;
      }
      meta.sequence = packet.sequence;
      meta.has_sequence = true;
      custom = CCustomPacket{type_id.c_str(), CCustomEncoding_Json, data_json.data(),
                             data_json.size(), &meta};
      c = {CPacketType_Custom, &custom, sizeof(custom)};
      break;
    }
    case PacketKind::kBinary:
      c = {CPacketType_Binary, packet.data.data(), packet.data.size()};
      break;
    default:
      return Status(ErrorCode::kPinTypeMismatch,
                    kind_ + ": plugin ABI v2 cannot carry " +
                        std::string(packet_kind_name(packet.header.kind)) + " packets");
  }
  ctx_ = &ctx;
  current_ = &packet;
  deferred_ = Status::ok();
  const CResult r = library_->api().process_packet(handle_, pin.c_str(), &c, &output_trampoline,
                                                   this, &telemetry_trampoline, this);
  ctx_ = nullptr;
  current_ = nullptr;
  if (!deferred_.is_ok()) {
    return std::exchange(deferred_, Status::ok());
  }
  return r.success ? Status::ok() : call_failed("process_packet", r);
}

Status NativePluginNode::finish(NodeContext& ctx) {
  if (handle_ == nullptr || library_->api().flush == nullptr) {
    return Status::ok();
  }
  ctx_ = &ctx;
  deferred_ = Status::ok();
  const CResult r = library_->api().flush(handle_, &output_trampoline, this,
                                          &telemetry_trampoline, this);
  ctx_ = nullptr;
  if (!deferred_.is_ok()) {
    return std::exchange(deferred_, Status::ok());
  }
  return r.success ? Status::ok() : call_failed("flush", r);
}

Status NativePluginNode::tune(const Json& patch) {
  std::vector<Status> errors;
  Json checked = Json::object();
  schema_->decode(&checked, patch, /*tuning=*/true, errors);
  if (!errors.empty()) {
    return errors.front();
  }
  if (handle_ == nullptr) {
    return Status(ErrorCode::kFailedPrecondition, kind_ + ": the plugin instance is not running");
  }
  if (library_->api().update_params == nullptr) {
    return Status(ErrorCode::kInvalidParam, kind_ + " cannot change its params while running");
  }
  // Plugins get the whole params object: one written for StreamKit may rebuild its config from
  // what it is given, which a partial patch would reset to defaults.
  Json merged = params_;
  merged.merge_patch(patch);
  const std::string text = merged.dump();
  const CResult r = library_->api().update_params(handle_, text.c_str());
  if (!r.success) {
    Status failed = call_failed("update_params", r);
    return Status(ErrorCode::kInvalidParam, failed.message());
  }
  params_ = std::move(merged);
  return Status::ok();
}

CResult NativePluginNode::fail(std::string message) {
  callback_error_ = std::move(message);
  return CResult{false, callback_error_.c_str()};
}

Status NativePluginNode::write_audio(std::size_t output, const std::string& pin,
                                     const CAudioFrame& frame) {
  OutputWriter& out = ctx_->output(output);
  OutputClock& clock = clocks_.at(std::min(output, clocks_.size() - 1));
  if (clock.base_pts_us < 0 || clock.rate != frame.sample_rate) {
    clock.base_pts_us = current_ != nullptr && current_->header.pts_us >= 0 ? current_->header.pts_us : 0;
    if (clock.rate != 0 && clock.rate != frame.sample_rate) {
      clock.base_pts_us += static_cast<std::int64_t>(clock.samples * 1000000 / clock.rate);
    }
    clock.samples = 0;
    clock.rate = frame.sample_rate;
  }
  const std::size_t per_packet =
      std::max<std::size_t>(frame.channels, (std::min(out.max_packet_bytes(), kMaxPacketBytes) /
                                             sizeof(float) / frame.channels) * frame.channels);
  for (std::size_t at = 0; at < frame.sample_count; at += per_packet) {
    const std::size_t n = std::min(per_packet, frame.sample_count - at);
    const std::uint64_t frames = n / frame.channels;
    PacketHeader h{.kind = PacketKind::kRawAudio,
                   .pts_us = clock.base_pts_us +
                             static_cast<std::int64_t>(clock.samples * 1000000 / frame.sample_rate),
                   .duration_us = static_cast<std::int64_t>(frames * 1000000 / frame.sample_rate),
                   .sample_rate = frame.sample_rate,
                   .channels = frame.channels};
    SKIT_RETURN_IF_ERROR(out.write(
        {reinterpret_cast<const std::byte*>(frame.samples + at), n * sizeof(float)}, h));
    clock.samples += frames;
  }
  (void)pin;
  return Status::ok();
}

CResult NativePluginNode::emit(const char* pin_name, const CPacket* packet) {
  if (ctx_ == nullptr) {
    return fail("output callback called outside process_packet/flush");
  }
  if (pin_name == nullptr || packet == nullptr) {
    return fail("output callback given a NULL pin name or packet");
  }
  const std::string pin = bounded(pin_name, 64);
  if (std::find(output_pins_.begin(), output_pins_.end(), pin) == output_pins_.end()) {
    return fail("unknown output pin '" + pin + "'");
  }
  const auto index = ctx_->output_index(pin);
  if (!index) {
    return CResult{true, nullptr};  // not connected: nobody reads it
  }
  if (packet->data == nullptr && packet->len > 0) {
    return fail("packet data is NULL");
  }
  PacketHeader h;
  if (current_ != nullptr) {
    h.pts_us = current_->header.pts_us;
    h.duration_us = current_->header.duration_us;
  }
  Status st;
  const auto bytes = [&](PacketKind kind) -> Status {
    if (packet->len > ctx_->output(*index).max_packet_bytes()) {
      return Status(ErrorCode::kResourceExhausted,
                    "a " + std::string(packet_kind_name(kind)) + " packet of " +
                        std::to_string(packet->len) + " bytes exceeds the slot size " +
                        std::to_string(ctx_->output(*index).max_packet_bytes()));
    }
    h.kind = kind;
    return ctx_->output(*index).write(
        {static_cast<const std::byte*>(packet->data), packet->len}, h);
  };
  switch (packet->packet_type) {
    case CPacketType_RawAudio: {
      if (packet->len < sizeof(CAudioFrame)) {
        return fail("RawAudio packet len is smaller than CAudioFrame");
      }
      const auto* frame = static_cast<const CAudioFrame*>(packet->data);
      if (frame->channels == 0 || frame->channels > 64 || frame->sample_rate == 0 ||
          frame->sample_rate > 768000 || frame->sample_count % frame->channels != 0 ||
          frame->sample_count > (64U << 20) || (frame->samples == nullptr && frame->sample_count > 0)) {
        return fail("malformed audio frame (" + std::to_string(frame->sample_rate) + " Hz, " +
                    std::to_string(frame->channels) + " channels, " +
                    std::to_string(frame->sample_count) + " samples)");
      }
      st = write_audio(*index, pin, *frame);
      break;
    }
    case CPacketType_OpusAudio: st = bytes(PacketKind::kEncodedAudio); break;
    case CPacketType_Text: st = bytes(PacketKind::kText); break;
    case CPacketType_Transcription: st = bytes(PacketKind::kTranscription); break;
    case CPacketType_Binary: st = bytes(PacketKind::kBinary); break;
    case CPacketType_Custom: {
      if (packet->len < sizeof(CCustomPacket)) {
        return fail("Custom packet len is smaller than CCustomPacket");
      }
      const auto* c = static_cast<const CCustomPacket*>(packet->data);
      if (c->data_json == nullptr && c->data_len > 0) {
        return fail("Custom packet data is NULL");
      }
      Json data = c->data_len == 0 ? Json()
                                   : Json::parse(std::string_view(c->data_json, c->data_len),
                                                 nullptr, /*allow_exceptions=*/false);
      if (data.is_discarded()) {
        return fail("Custom packet data is not valid JSON");
      }
      Json doc{{"type_id", bounded(c->type_id, 256)}, {"encoding", "json"}, {"data", std::move(data)}};
      if (c->metadata != nullptr && c->metadata->has_timestamp_us) {
        h.pts_us = static_cast<std::int64_t>(c->metadata->timestamp_us);
      }
      if (c->metadata != nullptr && c->metadata->has_duration_us) {
        h.duration_us = static_cast<std::int64_t>(c->metadata->duration_us);
      }
      const std::string text = doc.dump(-1, ' ', false, Json::error_handler_t::replace);
      if (text.size() > ctx_->output(*index).max_packet_bytes()) {
        return fail("Custom packet of " + std::to_string(text.size()) + " bytes is too large");
      }
      h.kind = PacketKind::kCustom;
      st = ctx_->output(*index).write({reinterpret_cast<const std::byte*>(text.data()), text.size()}, h);
      break;
    }
    default:
      return fail("cannot emit packet type " + std::to_string(static_cast<int>(packet->packet_type)));
  }
  if (!st.is_ok()) {
    if (st.code() == ErrorCode::kCancelled || st.code() == ErrorCode::kResourceExhausted ||
        deferred_.is_ok()) {
      deferred_ = st;
    }
    return fail(st.message());
  }
  return CResult{true, nullptr};
}

CResult NativePluginNode::telemetry(const char* event_type, const std::uint8_t* data,
                                    std::size_t len, const CPacketMetadata* metadata) {
  if (ctx_ == nullptr) {
    return fail("telemetry callback called outside process_packet/flush");
  }
  const std::string type = bounded(event_type, 128);
  if (type.empty()) {
    return fail("telemetry event without a type");
  }
  if (len > 64 * 1024 || (data == nullptr && len > 0)) {
    return fail("telemetry data is NULL or larger than 64 KiB");
  }
  Json doc = len == 0 ? Json::object()
                      : Json::parse(std::string_view(reinterpret_cast<const char*>(data), len),
                                    nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return fail("telemetry data is not valid JSON");
  }
  const std::int64_t ts = metadata != nullptr && metadata->has_timestamp_us
                              ? static_cast<std::int64_t>(metadata->timestamp_us)
                              : -1;
  Status st = ctx_->emit_telemetry(type, doc, ts);
  return st.is_ok() ? CResult{true, nullptr} : fail(st.message());
}

void NativePluginNode::log(CLogLevel level, const char* target, const char* message) {
  const std::string text = bounded(message, 4096);
  const std::string where = bounded(target, 128);
  spdlog::level::level_enum lvl = spdlog::level::info;
  switch (level) {
    case CLogLevel_Trace: lvl = spdlog::level::trace; break;
    case CLogLevel_Debug: lvl = spdlog::level::debug; break;
    case CLogLevel_Info: lvl = spdlog::level::info; break;
    case CLogLevel_Warn: lvl = spdlog::level::warn; break;
    default: lvl = spdlog::level::err; break;
  }
  if (lvl >= spdlog::level::warn) {
    std::lock_guard lock(g_log_mutex);
    last_error_log_ = text;
  }
  if (logger_ != nullptr) {
    logger_->log(lvl, "[{}{}{}] {}", kind_, where.empty() ? "" : " ", where, text);
  }
}

}  // namespace skit::plugins
