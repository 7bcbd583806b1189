// SPDX-License-Identifier: MPL-2.0
//
// A header-only C++ layer over the StreamKit native plugin C ABI v2 (streamkit_plugin.h).
//
// Write a class with
//   static const CNodeMetadata& metadata();                         // usually via Metadata
//   Plugin(const nlohmann::json& params, streamkit::Logger log);    // throws on bad params
//   void process(std::string_view pin, const CPacket& packet, streamkit::Output& out);
// and optionally
//   void update_params(const nlohmann::json& patch);
//   void flush(streamkit::Output& out);
// then export it with STREAMKIT_CPP_PLUGIN(Plugin). Exceptions never cross the C boundary: the
// adapter catches them and returns a CResult whose message lives in the instance until the next
// call on it (create_instance failures go to the log callback, since there is no instance).
#ifndef STREAMKIT_PLUGIN_HPP
#define STREAMKIT_PLUGIN_HPP

#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "streamkit_plugin.h"

namespace streamkit {

using json = nlohmann::json;

// Thrown by plugins for a failure the host should see (any std::exception works the same way).
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The host's log callback; a no-op when the host passed none.
class Logger {
 public:
  Logger() = default;
  Logger(CLogCallback callback, void* user_data, std::string target)
      : callback_(callback), user_data_(user_data), target_(std::move(target)) {}
  void log(CLogLevel level, const std::string& message) const {
    if (callback_ != nullptr) callback_(level, target_.c_str(), message.c_str(), user_data_);
  }
  void debug(const std::string& m) const { log(CLogLevel_Debug, m); }
  void info(const std::string& m) const { log(CLogLevel_Info, m); }
  void warn(const std::string& m) const { log(CLogLevel_Warn, m); }
  void error(const std::string& m) const { log(CLogLevel_Error, m); }

 private:
  CLogCallback callback_ = nullptr;
  void* user_data_ = nullptr;
  std::string target_;
};

// The output and telemetry callbacks of one process_packet/flush call. Every emit throws
// streamkit::Error when the host refuses the packet (unknown pin, pipeline stopping), so the
// failure reaches the host as the call's result.
class Output {
 public:
  Output(COutputCallback output_callback, void* output_user_data,
         CTelemetryCallback telemetry_callback, void* telemetry_user_data)
      : output_(output_callback), output_ud_(output_user_data), telemetry_(telemetry_callback),
        telemetry_ud_(telemetry_user_data) {}

  void packet(const char* pin, const CPacket& packet) {
    if (output_ == nullptr) throw Error("the host passed no output callback");
    CResult r = output_(pin, &packet, output_ud_);
    if (!r.success) {
      throw Error(std::string("output '") + pin + "' refused the packet: " +
                  (r.error_message != nullptr ? r.error_message : "no reason given"));
    }
  }
  void audio(const char* pin, uint32_t sample_rate, uint16_t channels,
             std::span<const float> samples) {
    CAudioFrame frame{sample_rate, channels, samples.data(), samples.size()};
    packet(pin, CPacket{CPacketType_RawAudio, &frame, sizeof frame});
  }
  void text(const char* pin, std::string_view text) {
    packet(pin, CPacket{CPacketType_Text, text.data(), text.size()});
  }
  void transcription(const char* pin, const json& transcription) {
    std::string body = transcription.dump();
    packet(pin, CPacket{CPacketType_Transcription, body.data(), body.size()});
  }
  void custom(const char* pin, const char* type_id, const json& data,
              const CPacketMetadata* metadata = nullptr) {
    std::string body = data.dump();
    CCustomPacket custom{type_id, CCustomEncoding_Json, body.data(), body.size(), metadata};
    packet(pin, CPacket{CPacketType_Custom, &custom, sizeof custom});
  }
  // Telemetry is best effort: a host without the callback (an older host) loses the event.
  void telemetry(const char* event_type, const json& data,
                 const CPacketMetadata* metadata = nullptr) {
    if (telemetry_ == nullptr) return;
    std::string body = data.dump();
    telemetry_(event_type, reinterpret_cast<const uint8_t*>(body.data()), body.size(), metadata,
               telemetry_ud_);
  }

 private:
  COutputCallback output_;
  void* output_ud_;
  CTelemetryCallback telemetry_;
  void* telemetry_ud_;
};

// Accessors for an input packet; they throw streamkit::Error on a packet of another kind.
inline const CAudioFrame& audio_of(const CPacket& p) {
  if (p.packet_type != CPacketType_RawAudio || p.data == nullptr || p.len < sizeof(CAudioFrame))
    throw Error("expected a RawAudio packet");
  return *static_cast<const CAudioFrame*>(p.data);
}
inline std::span<const float> samples_of(const CAudioFrame& f) {
  return {f.samples, f.samples == nullptr ? 0 : f.sample_count};
}
// The text of a Text packet, or the `text` field of a Transcription packet.
inline std::string text_of(const CPacket& p) {
  if (p.packet_type == CPacketType_Text)
    return std::string(static_cast<const char*>(p.data), p.data == nullptr ? 0 : p.len);
  if (p.packet_type == CPacketType_Transcription) {
    json t = json::parse(std::string_view(static_cast<const char*>(p.data), p.len), nullptr,
                         false);
    if (t.is_discarded() || !t.is_object()) throw Error("a Transcription packet is not JSON");
    return t.value("text", std::string());
  }
  throw Error("expected a Text or Transcription packet");
}

// Pin type helpers.
inline CPacketTypeInfo type_of(CPacketType type) { return CPacketTypeInfo{type, nullptr, nullptr}; }

// Builds a CNodeMetadata whose strings and arrays it owns; keep it in a function-local static
// so that the pointers live as long as the library.
class Metadata {
 public:
  explicit Metadata(std::string kind) : kind_(std::move(kind)) {}
  Metadata& description(std::string d) {
    description_ = std::move(d);
    return *this;
  }
  Metadata& input(std::string name, std::vector<CPacketTypeInfo> accepts) {
    inputs_.push_back({std::move(name), std::move(accepts)});
    return *this;
  }
  Metadata& output(std::string name, CPacketTypeInfo produces) {
    outputs_.push_back({std::move(name), produces});
    return *this;
  }
  // An audio format for a pin type; the Metadata keeps it.
  const CAudioFormat* audio_format(uint32_t sample_rate, uint16_t channels,
                                   CSampleFormat format = CSampleFormat_F32) {
    formats_.push_back(CAudioFormat{sample_rate, channels, format});
    return &formats_.back();
  }
  const char* custom_type_id(std::string id) { return strings_.emplace_back(std::move(id)).c_str(); }
  Metadata& param_schema(const json& schema) {
    schema_ = schema.dump();
    return *this;
  }
  Metadata& category(std::string name) {
    categories_.push_back(std::move(name));
    return *this;
  }
  // The C view; call once, after the last builder call.
  const CNodeMetadata& c() {
    c_inputs_.clear();
    for (auto& in : inputs_)
      c_inputs_.push_back(CInputPin{in.name.c_str(), in.accepts.data(), in.accepts.size()});
    c_outputs_.clear();
    for (auto& out : outputs_) c_outputs_.push_back(COutputPin{out.name.c_str(), out.produces});
    c_categories_.clear();
    for (auto& name : categories_) c_categories_.push_back(name.c_str());
    c_ = CNodeMetadata{kind_.c_str(),
                       description_.empty() ? nullptr : description_.c_str(),
                       c_inputs_.data(),
                       c_inputs_.size(),
                       c_outputs_.data(),
                       c_outputs_.size(),
                       schema_.empty() ? nullptr : schema_.c_str(),
                       c_categories_.data(),
                       c_categories_.size()};
    return c_;
  }

 private:
  struct In {
    std::string name;
    std::vector<CPacketTypeInfo> accepts;
  };
  struct Out {
    std::string name;
    CPacketTypeInfo produces;
  };
  std::string kind_, description_, schema_;
  std::deque<In> inputs_;
  std::deque<Out> outputs_;
  std::deque<CAudioFormat> formats_;  // deque: pointers stay valid as it grows
  std::deque<std::string> strings_;
  std::deque<std::string> categories_;
  std::vector<CInputPin> c_inputs_;
  std::vector<COutputPin> c_outputs_;
  std::vector<const char*> c_categories_;
  CNodeMetadata c_{};
};

// Turns the class P into the C entry point table.
template <class P>
class PluginAdapter {
 public:
  static const CNativePluginAPI* api() {
    static const CNativePluginAPI table{STREAMKIT_NATIVE_PLUGIN_API_VERSION,
                                        &get_metadata,
                                        &create_instance,
                                        &process_packet,
                                        &update_params,
                                        &flush,
                                        &destroy_instance};
    return &table;
  }

 private:
  struct Instance {
    std::unique_ptr<P> plugin;
    Logger log;
    std::string error;  // the message of the last failed call, kept alive for the host
  };

  static const CNodeMetadata* get_metadata() {
    try {
      return &P::metadata();
    } catch (...) {
      return nullptr;
    }
  }

  static json parse_params(const char* params_json) {
    if (params_json == nullptr || *params_json == '\0') return json::object();
    json params = json::parse(params_json);
    if (params.is_null()) return json::object();
    if (!params.is_object()) throw Error("params must be a JSON object");
    return params;
  }

  static CPluginHandle create_instance(const char* params_json, CLogCallback log_callback,
                                       void* log_user_data) {
    Logger log(log_callback, log_user_data, std::string("plugin::native::") + P::metadata().kind);
    try {
      auto instance = std::make_unique<Instance>();
      instance->log = log;
      instance->plugin = std::make_unique<P>(parse_params(params_json), log);
      return instance.release();
    } catch (const std::exception& e) {
      log.error(std::string("create_instance failed: ") + e.what());
    } catch (...) {
      log.error("create_instance failed: unknown exception");
    }
    return nullptr;
  }

  template <class F>
  static CResult guarded(CPluginHandle handle, F&& body) {
    auto* instance = static_cast<Instance*>(handle);
    if (instance == nullptr) return streamkit_error("null plugin handle");
    try {
      body(*instance->plugin);
      return streamkit_ok();
    } catch (const std::exception& e) {
      instance->error = e.what();
    } catch (...) {
      instance->error = "unknown exception";
    }
    return streamkit_error(instance->error.c_str());
  }

  static CResult process_packet(CPluginHandle handle, const char* input_pin, const CPacket* packet,
                                COutputCallback output_callback, void* output_user_data,
                                CTelemetryCallback telemetry_callback,
                                void* telemetry_user_data) {
    return guarded(handle, [&](P& plugin) {
      if (packet == nullptr) throw Error("null packet");
      Output out(output_callback, output_user_data, telemetry_callback, telemetry_user_data);
      plugin.process(input_pin != nullptr ? std::string_view(input_pin) : std::string_view("in"),
                     *packet, out);
    });
  }

  static CResult update_params(CPluginHandle handle, const char* params_json) {
    return guarded(handle, [&](P& plugin) {
      json patch = parse_params(params_json);
      if constexpr (requires(P& p, const json& j) { p.update_params(j); }) {
        plugin.update_params(patch);
      } else {
        if (!patch.empty()) throw Error("this plugin has no tunable params");
      }
    });
  }

  static CResult flush(CPluginHandle handle, COutputCallback output_callback,
                       void* output_user_data, CTelemetryCallback telemetry_callback,
                       void* telemetry_user_data) {
    return guarded(handle, [&](P& plugin) {
      if constexpr (requires(P& p, Output& o) { p.flush(o); }) {
        Output out(output_callback, output_user_data, telemetry_callback, telemetry_user_data);
        plugin.flush(out);
      }
    });
  }

  static void destroy_instance(CPluginHandle handle) {
    try {
      delete static_cast<Instance*>(handle);
    } catch (...) {
    }
  }
};

}  // namespace streamkit

// Exports the entry point for the plugin class `Class`.
#define STREAMKIT_CPP_PLUGIN(Class) \
  extern "C" STREAMKIT_PLUGIN_ENTRY(::streamkit::PluginAdapter<Class>::api())

#endif  // STREAMKIT_PLUGIN_HPP
