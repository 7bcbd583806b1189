// SPDX-License-Identifier: MPL-2.0
// Rewiring: a runner's connections changed while it runs (live sessions).
#pragma once

#include <memory>
#include <vector>

#include "input_ports.hpp"
#include "output_port.hpp"
#include "skit/runtime/runner_spec.hpp"

namespace skit::runtime {

/// Applies batches of RewireCommands to a runner's input and output ports, on the runner
/// thread between two packets, and remembers a retirement. Runner thread only.
class Rewiring {
 public:
  Rewiring(InputPorts& inputs, std::vector<std::unique_ptr<OutputPort>>& outputs,
           spdlog::logger& log);

  /// Applies the whole batch; or, if it changes outputs while one of them is mid-packet
  /// (loaned, not yet published), nothing, returning false: the caller retries at the next
  /// packet boundary. A ring that cannot be attached is logged and skipped.
  bool apply(std::vector<RewireCommand>& batch);

  /// A kRetire was applied: the node finishes its inputs and leaves, without finish().
  [[nodiscard]] bool retiring() const { return retiring_; }

 private:
  [[nodiscard]] bool output_mid_packet() const;

  InputPorts& inputs_;
  std::vector<std::unique_ptr<OutputPort>>& outputs_;
  spdlog::logger& log_;
  bool retiring_ = false;
};

}  // namespace skit::runtime
