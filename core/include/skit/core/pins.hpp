// SPDX-License-Identifier: MPL-2.0
// Pin declarations: names, types and cardinality of a node's inputs and outputs.
#pragma once

#include <string>
#include <vector>

#include "skit/core/packet_type.hpp"

namespace skit {

enum class Cardinality : std::uint8_t {
  kOne,        // exactly one connection (inputs)
  kBroadcast,  // any number of connections; each gets the same payload (outputs)
  kDynamic,    // a family `in_0, in_1, ...` created on demand (inputs)
};

struct InputPinSpec {
  std::string name;
  std::vector<PacketType> accepts;
  Cardinality cardinality = Cardinality::kOne;
  bool required = true;  // validation fails if nothing is connected
};

struct OutputPinSpec {
  std::string name;
  PacketType produces;
  Cardinality cardinality = Cardinality::kBroadcast;
};

/// How a connection behaves when its ring is full.
enum class ConnectionMode : std::uint8_t {
  kReliable,    // the producer waits (backpressure)
  kBestEffort,  // the oldest queued packet is dropped and counted
};

std::string_view connection_mode_name(ConnectionMode mode);

}  // namespace skit
