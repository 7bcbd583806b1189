// SPDX-License-Identifier: MPL-2.0
// Event forwarding: what the runners report becomes messages for the supervisor.
#pragma once

#include <deque>
#include <mutex>
#include <string>

#include "skit/runtime/runner_spec.hpp"
#include "skit/v1/worker.pb.h"

namespace skit::worker {

void fill_stats(v1::NodeStats& out, const std::string& node_id, const NodeStats& stats);

/// Collects runner events (from the runner threads) as WorkerMessages; the main thread sends
/// them to the supervisor.
class EventQueue final : public runtime::EventSink {
 public:
  explicit EventQueue(std::string endpoint) : endpoint_(std::move(endpoint)) {}
  void post(const std::string& node_id, NodeState state, const std::string& message,
            ErrorCode error, const NodeStats& stats) override;
  /// Only tunes that asked for an answer (op_id != 0) are reported.
  void tuned(const std::string& node_id, std::uint64_t op_id, const Status& status) override;
  [[nodiscard]] const std::string& wake_endpoint() const override { return endpoint_; }
  std::deque<v1::WorkerMessage> drain();

 private:
  std::string endpoint_;
  std::mutex mutex_;
  std::deque<v1::WorkerMessage> queue_;
};

}  // namespace skit::worker
