// SPDX-License-Identifier: MPL-2.0
#include "orchestration.hpp"

#include <algorithm>

namespace skit::supervisor::orchestration {

std::uint32_t ring_slots(std::uint32_t requested) {
  std::uint32_t p = 2;
  while (p < requested) {
    p <<= 1U;
  }
  return p;
}

std::uint32_t pool_slots(std::uint32_t ring_slots, std::size_t consumers, bool live) {
  constexpr std::uint32_t kLoanAndSpare = 2;
  if (!live) {
    return ring_slots + static_cast<std::uint32_t>(consumers) + kLoanAndSpare;
  }
  constexpr std::uint32_t kLiveConsumersOrLeaks = 6;
  return ring_slots /* handover */ + ring_slots + kLiveConsumersOrLeaks + kLoanAndSpare;
}

void sort_inputs(std::vector<std::pair<std::string, std::string>>& inputs) {
  std::sort(inputs.begin(), inputs.end(), [](const auto& a, const auto& b) {
    if (a.first.size() != b.first.size()) {
      return a.first.size() < b.first.size();
    }
    return a.first < b.first;
  });
}

void fill_sandbox(v1::SandboxPolicy& out, const SandboxOptions& sandbox, bool confined_files,
                  bool network) {
  out.set_enabled(sandbox.enabled);
  out.set_address_space_bytes(sandbox.address_space_bytes);
  out.set_max_open_files(sandbox.max_open_files);
  out.set_allow_network(network);
  out.set_confined_files(confined_files);
}

void fill_node(v1::NodeAssignment& out, const std::string& id, const std::string& kind,
               const std::string& params_json, const std::string& doorbell,
               std::vector<std::pair<std::string, std::string>> inputs,
               const std::vector<OutputBinding>& outputs) {
  out.set_node_id(id);
  out.set_kind(kind);
  out.set_params_json(params_json);
  out.set_doorbell(doorbell);
  sort_inputs(inputs);
  for (const auto& [pin, ring] : inputs) {
    auto* b = out.add_inputs();
    b->set_pin(pin);
    b->set_ring_segment(ring);
  }
  for (const auto& o : outputs) {
    auto* b = out.add_outputs();
    b->set_pin(o.pin);
    b->set_pool_index(o.pool_index);
    for (const auto& r : o.rings) {
      b->add_ring_segments(r);
    }
  }
}

void fill_plugin(v1::NodeAssignment& out, const NodeDescriptor& descriptor) {
  if (descriptor.native_plugin) {
    out.set_plugin_library(descriptor.native_plugin->library_path);
    out.set_plugin_metadata_json(descriptor.native_plugin->metadata_json);
  }
}

std::chrono::milliseconds call_timeout(const NodeDescriptor& descriptor,
                                       std::chrono::milliseconds node_timeout) {
  if (descriptor.native_plugin && descriptor.native_plugin->call_timeout) {
    return *descriptor.native_plugin->call_timeout;
  }
  return node_timeout;
}

NodeState from_proto(v1::NodeState state) {
  switch (state) {
    case v1::NODE_STATE_READY: return NodeState::kReady;
    case v1::NODE_STATE_RUNNING: return NodeState::kRunning;
    case v1::NODE_STATE_STOPPED: return NodeState::kStopped;
    case v1::NODE_STATE_FAILED: return NodeState::kFailed;
    default: return NodeState::kInitializing;
  }
}

NodeStats from_proto(const v1::NodeStats& s) {
  return NodeStats{s.packets_in(), s.packets_out(),   s.bytes_in(),
                   s.bytes_out(),  s.dropped(),       s.media_time_us(),
                   s.telemetry_dropped()};
}

}  // namespace skit::supervisor::orchestration
