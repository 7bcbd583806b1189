// SPDX-License-Identifier: MPL-2.0
// A test-side driver of the StreamKit native plugin C ABI v2: dlopens a plugin library, checks
// its API version, reads its metadata, creates instances and feeds them packets, collecting
// what they emit through the output, telemetry and log callbacks. It calls process_packet
// and flush the way the host does (with the telemetry pair). Header-only.
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "streamkit_plugin.h"
#include "word_errors.hpp"

namespace skit::testing {

/// One packet a plugin emitted, copied out of the callback.
struct EmittedPacket {
  std::string pin;
  CPacketType type = CPacketType_Any;
  uint32_t sample_rate = 0;  // RawAudio
  uint16_t channels = 0;
  std::vector<float> samples;
  std::string text;            // Text, Transcription (JSON), Custom (data JSON), Binary
  std::string custom_type_id;  // Custom
  bool has_timestamp = false;  // Custom metadata
  uint64_t timestamp_us = 0;
  nlohmann::json json() const { return nlohmann::json::parse(text); }
};

struct TelemetryEvent {
  std::string event_type;
  nlohmann::json data;
};

struct LogLine {
  CLogLevel level;
  std::string target;
  std::string message;
};

/// What one call produced.
struct Collected {
  std::vector<EmittedPacket> packets;
  std::vector<TelemetryEvent> telemetry;
  /// Samples of every RawAudio packet, concatenated (the last packet's rate/channels).
  std::vector<float> audio() const {
    std::vector<float> all;
    for (const auto& p : packets) all.insert(all.end(), p.samples.begin(), p.samples.end());
    return all;
  }
  void append(Collected&& other) {
    for (auto& p : other.packets) packets.push_back(std::move(p));
    for (auto& t : other.telemetry) telemetry.push_back(std::move(t));
  }
};

class PluginLibrary;

/// One plugin instance (a pipeline node).
class PluginInstance {
 public:
  PluginInstance(const CNativePluginAPI* api, CPluginHandle handle,
                 std::shared_ptr<std::vector<LogLine>> logs)
      : api_(api), handle_(handle), logs_(std::move(logs)) {}
  ~PluginInstance() {
    if (handle_ != nullptr) api_->destroy_instance(handle_);
  }
  PluginInstance(const PluginInstance&) = delete;
  PluginInstance& operator=(const PluginInstance&) = delete;

  /// Feeds one packet; throws std::runtime_error with the plugin's message on failure.
  Collected process(const CPacket& packet, const char* pin = "in") {
    Collected c;
    CResult r = api_->process_packet(handle_, pin, &packet, &on_output, &c, &on_telemetry, &c);
    check(r, "process_packet");
    return c;
  }
  Collected audio(std::span<const float> samples, uint32_t rate, uint16_t channels,
                  const char* pin = "in") {
    CAudioFrame frame{rate, channels, samples.data(), samples.size()};
    return process(CPacket{CPacketType_RawAudio, &frame, sizeof frame}, pin);
  }
  /// Feeds `samples` in packets of `chunk` samples (a mono stream), collecting everything.
  Collected audio_stream(std::span<const float> samples, uint32_t rate, size_t chunk) {
    Collected all;
    for (size_t at = 0; at < samples.size(); at += chunk)
      all.append(audio(samples.subspan(at, std::min(chunk, samples.size() - at)), rate, 1));
    all.append(flush());
    return all;
  }
  Collected text(const std::string& text, const char* pin = "in") {
    return process(CPacket{CPacketType_Text, text.data(), text.size()}, pin);
  }
  Collected flush() {
    Collected c;
    check(api_->flush(handle_, &on_output, &c, &on_telemetry, &c), "flush");
    return c;
  }
  /// update_params's result: "" on success, else the plugin's message.
  std::string update_params(const nlohmann::json& patch) {
    std::string body = patch.dump();
    CResult r = api_->update_params(handle_, body.c_str());
    return r.success ? "" : (r.error_message != nullptr ? r.error_message : "(no message)");
  }
  const std::vector<LogLine>& logs() const { return *logs_; }

 private:
  static void check(CResult r, const char* what) {
    if (!r.success)
      throw std::runtime_error(std::string(what) + " failed: " +
                               (r.error_message != nullptr ? r.error_message : "(no message)"));
  }
  static CResult on_output(const char* pin, const CPacket* packet, void* ud) {
    auto* c = static_cast<Collected*>(ud);
    EmittedPacket e;
    e.pin = pin != nullptr ? pin : "";
    e.type = packet->packet_type;
    switch (packet->packet_type) {
      case CPacketType_RawAudio: {
        if (packet->len < sizeof(CAudioFrame)) return streamkit_error("short CAudioFrame");
        const auto* f = static_cast<const CAudioFrame*>(packet->data);
        e.sample_rate = f->sample_rate;
        e.channels = f->channels;
        e.samples.assign(f->samples, f->samples + f->sample_count);
        break;
      }
      case CPacketType_Custom: {
        if (packet->len < sizeof(CCustomPacket)) return streamkit_error("short CCustomPacket");
        const auto* cp = static_cast<const CCustomPacket*>(packet->data);
        e.custom_type_id = cp->type_id != nullptr ? cp->type_id : "";
        e.text.assign(cp->data_json, cp->data_len);
        if (cp->metadata != nullptr && cp->metadata->has_timestamp_us) {
          e.has_timestamp = true;
          e.timestamp_us = cp->metadata->timestamp_us;
        }
        break;
      }
      default:
        e.text.assign(static_cast<const char*>(packet->data), packet->len);
    }
    c->packets.push_back(std::move(e));
    return streamkit_ok();
  }
  static CResult on_telemetry(const char* event_type, const uint8_t* data, size_t len,
                              const CPacketMetadata*, void* ud) {
    auto* c = static_cast<Collected*>(ud);
    c->telemetry.push_back(
        {event_type, nlohmann::json::parse(reinterpret_cast<const char*>(data),
                                           reinterpret_cast<const char*>(data) + len)});
    return streamkit_ok();
  }

  const CNativePluginAPI* api_;
  CPluginHandle handle_;
  std::shared_ptr<std::vector<LogLine>> logs_;
};

/// A dlopened plugin library.
class PluginLibrary {
 public:
  explicit PluginLibrary(const std::string& path) {
    handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) throw std::runtime_error("dlopen " + path + ": " + ::dlerror());
    auto entry = reinterpret_cast<StreamkitNativePluginApiFn>(
        ::dlsym(handle_, STREAMKIT_NATIVE_PLUGIN_ENTRY_SYMBOL));
    if (entry == nullptr) throw std::runtime_error(path + " exports no streamkit_native_plugin_api");
    api_ = entry();
    if (api_ == nullptr) throw std::runtime_error(path + ": the entry point returned NULL");
    if (api_->version != STREAMKIT_NATIVE_PLUGIN_API_VERSION)
      throw std::runtime_error(path + ": API version " + std::to_string(api_->version));
    metadata_ = api_->get_metadata();
    if (metadata_ == nullptr) throw std::runtime_error(path + ": get_metadata returned NULL");
  }
  ~PluginLibrary() {
    // Not dlclose()d: engine libraries (espeak-ng, onnxruntime) keep process-wide state and
    // threads that do not survive an unload; the host keeps plugins loaded the same way.
  }
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const CNativePluginAPI& api() const { return *api_; }
  const CNodeMetadata& metadata() const { return *metadata_; }

  /// A new instance, or nullptr when create_instance refused (`error` gets the logged reason).
  std::unique_ptr<PluginInstance> create(const nlohmann::json& params,
                                         std::string* error = nullptr) {
    auto logs = std::make_shared<std::vector<LogLine>>();
    std::string body = params.dump();
    CPluginHandle h = api_->create_instance(body.c_str(), &on_log, logs.get());
    if (h == nullptr) {
      if (error != nullptr) {
        *error = "";
        for (const auto& l : *logs) *error += l.message + "\n";
      }
      return nullptr;
    }
    return std::make_unique<PluginInstance>(api_, h, logs);
  }

 private:
  static void on_log(CLogLevel level, const char* target, const char* message, void* ud) {
    static_cast<std::vector<LogLine>*>(ud)->push_back(
        {level, target != nullptr ? target : "", message != nullptr ? message : ""});
  }

  void* handle_ = nullptr;
  const CNativePluginAPI* api_ = nullptr;
  const CNodeMetadata* metadata_ = nullptr;
};

}  // namespace skit::testing
