// SPDX-License-Identifier: MPL-2.0
// A pipeline node backed by a native plugin instance. Runs only in a worker: the library is
// loaded and the instance created in start(), on the node's thread after the worker's sandbox
// engaged, so a plugin's constructor never runs unconfined.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/registry.hpp"
#include "skit/plugins/native_library.hpp"
#include "skit/plugins/plugin_kinds.hpp"

namespace skit::plugins {

class NativePluginNode final : public Node {
 public:
  /// Largest packet written on an output; bigger audio frames from a plugin are split.
  static constexpr std::size_t kMaxPacketBytes = 256 * 1024;

  NativePluginNode(std::shared_ptr<const NativePluginRef> ref, std::string kind,
                   std::shared_ptr<const ParamSchema> schema, Json params,
                   std::vector<std::string> input_pins, std::vector<std::string> output_pins);
  ~NativePluginNode() override;

  Status start(NodeContext& ctx) override;
  Status process(NodeContext& ctx, const PacketView& packet) override;
  Status finish(NodeContext& ctx) override;
  Status tune(const Json& patch) override;

  // C callbacks (the plugin calls them during process_packet/flush, on the node's thread).
  CResult emit(const char* pin_name, const CPacket* packet);
  CResult telemetry(const char* event_type, const std::uint8_t* data, std::size_t len,
                    const CPacketMetadata* metadata);
  void log(CLogLevel level, const char* target, const char* message);

 private:
  struct OutputClock {
    std::int64_t base_pts_us = -1;
    std::uint64_t samples = 0;  // per channel, at `rate`
    std::uint32_t rate = 0;
  };

  Status call_failed(const char* call, const CResult& result);
  Status write_audio(std::size_t output, const std::string& pin, const CAudioFrame& frame);
  CResult fail(std::string message);

  std::shared_ptr<const NativePluginRef> ref_;
  std::string kind_;
  std::shared_ptr<const ParamSchema> schema_;
  Json params_;
  std::vector<std::string> input_pins_;
  std::vector<std::string> output_pins_;
  std::optional<NativeLibrary> library_;
  CPluginHandle handle_ = nullptr;
  NodeContext* ctx_ = nullptr;         // during a plugin call
  const PacketView* current_ = nullptr;  // the input being processed, for timestamps
  std::vector<OutputClock> clocks_;
  std::string last_error_log_;  // the plugin's last error log line, for failures it leaves unexplained
  std::string callback_error_;  // kept alive for the CResult message handed to the plugin
  Status deferred_;             // a runtime failure inside a callback (a stop, a full slot)
  spdlog::logger* logger_ = nullptr;
};

}  // namespace skit::plugins
