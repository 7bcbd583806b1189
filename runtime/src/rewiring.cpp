// SPDX-License-Identifier: MPL-2.0
#include "rewiring.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace skit::runtime {

Rewiring::Rewiring(InputPorts& inputs, std::vector<std::unique_ptr<OutputPort>>& outputs,
                   spdlog::logger& log)
    : inputs_(inputs), outputs_(outputs), log_(log) {}

bool Rewiring::output_mid_packet() const {
  return std::any_of(outputs_.begin(), outputs_.end(),
                     [](const auto& out) { return out->loan_outstanding(); });
}

bool Rewiring::apply(std::vector<RewireCommand>& batch) {
  const bool changes_outputs = std::any_of(batch.begin(), batch.end(), [](const auto& c) {
    return c.type == RewireCommand::Type::kAttachOutput ||
           c.type == RewireCommand::Type::kDetachOutput;
  });
  if (changes_outputs && output_mid_packet()) {
    return false;
  }
  for (auto& c : batch) {
    switch (c.type) {
      case RewireCommand::Type::kAttachInput: {
        Status s = inputs_.attach(c.pin, c.segment_name, std::move(c.segment));
        if (!s.is_ok()) {
          log_.error("cannot attach input ring {}: {}", c.segment_name, s.to_string());
        }
        break;
      }
      case RewireCommand::Type::kDetachInput:
        inputs_.detach(c.segment_name, c.drop, c.grace);
        break;
      case RewireCommand::Type::kAttachOutput:
        for (auto& out : outputs_) {
          if (out->pin() == c.pin) {
            Status s = out->add_ring(c.segment_name, std::move(c.segment), /*replay=*/true);
            if (!s.is_ok()) {
              log_.error("cannot attach output ring {}: {}", c.segment_name, s.to_string());
            }
            break;
          }
        }
        break;
      case RewireCommand::Type::kDetachOutput:
        for (auto& out : outputs_) {
          if (out->has_ring(c.segment_name)) {
            out->remove_ring(c.segment_name);
          }
        }
        break;
      case RewireCommand::Type::kRetire:
        retiring_ = true;
        break;
    }
  }
  return true;
}

}  // namespace skit::runtime
