// SPDX-License-Identifier: MPL-2.0
// What a NodeRunner is given: its node's connections (RunnerSpec), tuning (RunnerOptions),
// live connection changes (RewireCommand), and where it reports state (EventSink).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/state.hpp"
#include "skit/ipc/segment.hpp"

namespace skit::runtime {

/// Where a runner reports state changes; must be thread-safe.
class EventSink {
 public:
  virtual ~EventSink() = default;
  /// `error`: the code of a failure (kFailed), so that the run's status keeps it (a corrupt
  /// input stays kCorruptMedia); kOk for every other state.
  virtual void post(const std::string& node_id, NodeState state, const std::string& message,
                    ErrorCode error, const NodeStats& stats) = 0;
  /// Endpoint of the thread that drains the events; runners ring it after post().
  [[nodiscard]] virtual const std::string& wake_endpoint() const = 0;
  /// A live param patch was applied (or rejected) between two packets; `op_id` as given to
  /// NodeRunner::tune().
  virtual void tuned(const std::string& /*node_id*/, std::uint64_t /*op_id*/,
                     const Status& /*status*/) {}
  /// A node's answer to a NodeRequest (NodeRunner::request); any thread, and wakes the
  /// thread that drains the events by itself.
  virtual void replied(const std::string& /*node_id*/, std::uint64_t /*request_id*/,
                       const NodeReply& /*reply*/) {}
  /// A telemetry event of a node, already capped and truncated by its runner: `data` is a
  /// JSON object carrying "event_type". Any thread. False when it was dropped (a full queue,
  /// or no one to deliver it to), counted by the runner.
  virtual bool telemetry(const std::string& /*node_id*/, std::string_view /*event_type*/,
                         const Json& /*data*/, std::int64_t /*timestamp_us*/,
                         std::int64_t /*emitted_at_us*/) {
    return false;
  }
};

/// The runtime's own cap on a node's telemetry (NodeContext::emit_telemetry), protecting the
/// supervisor and the watchers whatever a node (or a plugin, or a script) emits: a token bucket
/// of `burst` events refilled at `per_second`; events over it are dropped and counted
/// (NodeStats::telemetry_dropped). Strings longer than `max_string_bytes` are truncated, and
/// an event whose JSON is still larger than `max_event_bytes` is dropped.
struct TelemetryLimits {
  double per_second = 200;
  double burst = 400;
  std::size_t max_string_bytes = 4096;
  std::size_t max_event_bytes = 64 * 1024;
};

struct RunnerOptions {
  // Busy-poll before sleeping on a doorbell. Off by default: on a machine with fewer cores
  // than busy nodes, spinning takes CPU from the node that would make progress.
  std::chrono::microseconds spin{0};
  std::chrono::milliseconds idle_wait{100};  // longest single sleep (stop/tune are also rung)
  // A sleeping consumer is woken once this many packets wait, or when the producer itself is
  // about to sleep, whichever comes first: one doorbell per batch, not per packet, while the
  // producer is busy; no added latency when it idles (live pipelines).
  std::uint32_t wake_batch = 8;
  // Live session: inputs and outputs come and go (rewire()); a node without connections
  // waits for some instead of ending, and every output has its pool from the start.
  // Live sessions are also the only runs with watchers: a oneshot run's telemetry is dropped
  // (debug-logged) by the runner.
  bool dynamic = false;
  TelemetryLimits telemetry;
};

struct RunnerInput {
  std::string pin;
  std::string ring_segment;
};

struct RunnerOutput {
  std::string pin;
  bool passthrough = false;  // declared Passthrough: stream info is forwarded automatically
  std::uint32_t pool_index = 0;
  std::vector<std::string> ring_segments;
};

struct RunnerSpec {
  std::string node_id;
  std::string kind;
  std::string doorbell;  // endpoint the runner thread sleeps on
  bool pulls_input = false;
  bool accepts_input = true;  // false: a source (no declared input pins)
  // File params hold canonical paths checked by the supervisor: open them following no
  // symbolic link (see skit::open_file).
  bool confined_files = false;
  std::vector<RunnerInput> inputs;
  std::vector<RunnerOutput> outputs;
};

/// One change of a runner's connections. A batch of them is applied by the runner's thread
/// between two packets, all together (a switch from one ring to another loses nothing).
struct RewireCommand {
  enum class Type : std::uint8_t {
    kAttachInput,   // `pin` gets the ring `segment`; after the pin's current one if any
    kDetachInput,   // the ring `segment_name` is leaving: drain (or drop) it up to the
                    // producer's detach marker, or `grace` at most
    kAttachOutput,  // `pin` also writes to `segment` (stream info is replayed first)
    kDetachOutput,  // stop writing to `segment_name`, closing it with a detach marker
    kRetire,        // removal: finish draining the inputs, close every output with a detach
                    // marker and stop, without flushing (finish() is not called)
  };
  Type type = Type::kAttachInput;
  std::string pin;
  std::string segment_name;
  std::unique_ptr<ipc::SharedSegment> segment;  // attach: mapped by the caller
  bool drop = false;
  std::chrono::milliseconds grace{2000};
};

}  // namespace skit::runtime
