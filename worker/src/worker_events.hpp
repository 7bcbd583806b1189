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
  explicit EventQueue(std::string endpoint);
  void post(const std::string& node_id, NodeState state, const std::string& message,
            ErrorCode error, const NodeStats& stats) override;
  /// Only tunes that asked for an answer (op_id != 0) are reported.
  void tuned(const std::string& node_id, std::uint64_t op_id, const Status& status) override;
  /// Queued while fewer than kMaxQueuedTelemetry telemetry events wait (the main thread
  /// sends them at its next wake-up); past that, refused (the runner counts the drop).
  bool telemetry(const std::string& node_id, std::string_view event_type, const Json& data,
                 std::int64_t timestamp_us, std::int64_t emitted_at_us) override;
  /// Queues the reply and signals wake_fd(): node replies come from any thread.
  void replied(const std::string& node_id, std::uint64_t request_id,
               const NodeReply& reply) override;
  [[nodiscard]] const std::string& wake_endpoint() const override { return endpoint_; }
  /// Readable while replies wait (an eventfd the main loop polls beside its sockets).
  [[nodiscard]] int wake_fd() const { return wake_fd_.get(); }
  /// Clears wake_fd() (the main thread, before drain()).
  void clear_wake() const;
  std::deque<v1::WorkerMessage> drain();

  static constexpr std::size_t kMaxQueuedTelemetry = 1024;

 private:
  std::string endpoint_;
  UniqueFd wake_fd_;
  std::mutex mutex_;
  std::deque<v1::WorkerMessage> queue_;
  std::size_t queued_telemetry_ = 0;
};

}  // namespace skit::worker
