// SPDX-License-Identifier: MPL-2.0
// The supervisor's messages in runtime terms: an assigned node becomes a NodeRunner, a
// Rewire becomes per-node batches of RewireCommands.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "skit/runtime/node_runner.hpp"
#include "skit/v1/worker.pb.h"

namespace skit::worker {

/// Creates the node from the builtin registry and its runner, as `assign` places it. Fails
/// (naming the node) on an unknown kind or bad params.
Result<std::unique_ptr<runtime::NodeRunner>> make_runner(const v1::NodeAssignment& node,
                                                         const v1::Assign& assign,
                                                         runtime::PoolTable& pools,
                                                         runtime::EventSink& events);

struct RewireBatches {
  std::map<std::string, std::vector<runtime::RewireCommand>> by_node;
  std::string error;  // rings that could not be mapped ("; "-separated), reported in the Ack
};
/// Maps the rings that are attached here, on the calling (main) thread, so that the
/// supervisor may unlink their names once it has the Ack.
RewireBatches rewire_batches(const v1::Rewire& rewire);

}  // namespace skit::worker
