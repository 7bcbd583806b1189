// SPDX-License-Identifier: MPL-2.0
// What oneshot runs (run.cpp) and live sessions (sessions/) do alike when they lay out shared
// memory and talk to workers: ring and pool sizes, the order a node's inputs are delivered in,
// the Assign message, and reading the workers' reports.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "skit/core/registry.hpp"
#include "skit/core/state.hpp"
#include "skit/supervisor/run.hpp"
#include "skit/v1/worker.pb.h"

namespace skit::supervisor::orchestration {

/// Packets a ring holds: the requested depth rounded up to a power of two (at least 2).
std::uint32_t ring_slots(std::uint32_t requested);

/// Slots of an output pin's pool. Every ring of the pin's fan-out full (they share slots: one
/// payload, referenced by each), one packet in the hand of each consumer, the producer's loan
/// and one spare. A live pin (`live`) does not know its consumers in advance and changes them:
/// room for a handover (the old ring drained while the new one fills) and for six consumers'
/// packets in hand, or slots that a crashed worker never gave back.
std::uint32_t pool_slots(std::uint32_t ring_slots, std::size_t consumers, bool live);

/// Inputs of a node as (pin, ring segment), in the order the runner reads them: dynamic
/// families by index (in_2 before in_10), then by name.
void sort_inputs(std::vector<std::pair<std::string, std::string>>& inputs);

/// The sandbox of a worker; `network`: one of its nodes declares kNeedsNetwork.
void fill_sandbox(v1::SandboxPolicy& out, const SandboxOptions& sandbox, bool confined_files,
                  bool network);

struct OutputBinding {
  std::string pin;
  std::uint32_t pool_index = 0;
  std::vector<std::string> rings;
};

/// One node of an Assign; `inputs` are sorted here.
void fill_node(v1::NodeAssignment& out, const std::string& id, const std::string& kind,
               const std::string& params_json, const std::string& doorbell,
               std::vector<std::pair<std::string, std::string>> inputs,
               const std::vector<OutputBinding>& outputs);

/// A plugin kind's node: the library its worker loads and the metadata the probe read.
void fill_plugin(v1::NodeAssignment& out, const NodeDescriptor& descriptor);

/// The longest a node of `descriptor` may stay inside one call before it is declared hung:
/// a plugin's call timeout, or the server's node timeout.
std::chrono::milliseconds call_timeout(const NodeDescriptor& descriptor,
                                       std::chrono::milliseconds node_timeout);

NodeState from_proto(v1::NodeState state);
NodeStats from_proto(const v1::NodeStats& stats);

}  // namespace skit::supervisor::orchestration
