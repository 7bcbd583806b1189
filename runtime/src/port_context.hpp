// SPDX-License-Identifier: MPL-2.0
// What the input side, the output side and the loop of one runner share: the thread's doorbell
// and options, the pool table, stop requests, the mailbox of live changes, counters, the
// packet in hand and the hang watch. Owned by the NodeRunner; used only on its thread, except
// where a member says otherwise.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/params.hpp"
#include "skit/core/state.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/layout.hpp"
#include "skit/runtime/pool_table.hpp"
#include "skit/runtime/runner_spec.hpp"

namespace spdlog {
class logger;
}

namespace skit::runtime {

class OutputPort;

/// Live changes queued by other threads (the worker's main thread, the supervisor) for the
/// runner thread, which applies them between two packets in the order they came.
class Mailbox {
 public:
  /// A tune (`is_tune`, `patch`, `op_id`) or one batch of connection changes (`rewire`).
  struct Item {
    bool is_tune = false;
    Json patch;
    std::uint64_t op_id = 0;
    std::vector<RewireCommand> rewire;
    std::optional<NodeRequest> request;  // set: a NodeRequest, `op_id` its request id
  };

  /// Any thread.
  void post(Item item);
  /// Cheap check for the runner thread's loops and waits: something was posted.
  [[nodiscard]] bool pending(std::memory_order order = std::memory_order_acquire) const {
    return pending_.load(order);
  }
  /// Runner thread: everything posted so far, oldest first.
  std::deque<Item> take();
  /// Runner thread: what take() returned and could not be applied yet goes back in front of
  /// anything posted since, so that the order is kept.
  void put_back(std::deque<Item> items);

 private:
  std::atomic<bool> pending_{false};
  std::mutex mutex_;
  std::deque<Item> items_;
};

/// Packet and byte counts of one runner, read by any thread (NodeRunner::stats()).
struct RunnerCounters {
  std::atomic<std::uint64_t> packets_in{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::int64_t> media_time_us{0};  // written by the runner thread only
  std::atomic<std::uint64_t> packets_out{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> dropped{0};  // best effort: packets this producer dropped
  std::atomic<std::uint64_t> telemetry_dropped{0};  // over the per-node telemetry cap

  [[nodiscard]] NodeStats snapshot() const;
};

class PortContext {
 public:
  PortContext(std::string doorbell, PoolTable& pools, RunnerOptions options,
              std::shared_ptr<spdlog::logger> logger);
  PortContext(const PortContext&) = delete;
  PortContext& operator=(const PortContext&) = delete;

  [[nodiscard]] ipc::Doorbell& doorbell() { return doorbell_; }
  [[nodiscard]] PoolTable& pools() { return pools_; }
  [[nodiscard]] const RunnerOptions& options() const { return options_; }
  [[nodiscard]] spdlog::logger& log() { return *logger_; }
  [[nodiscard]] RunnerCounters& counters() { return counters_; }
  [[nodiscard]] const RunnerCounters& counters() const { return counters_; }
  [[nodiscard]] Mailbox& mailbox() { return mailbox_; }

  /// Any thread. The node stops at its next packet boundary; blocked loans and pushes give up.
  void request_stop() { stop_.store(true, std::memory_order_release); }
  [[nodiscard]] bool stop_requested() const { return stop_.load(std::memory_order_relaxed); }

  /// Gives back one reference to the slot of `d`, waking the pool's owner if it waits for one.
  void release(const ipc::SlotDescriptor& d);

  /// A sleeping consumer of `port` is to be woken later (RunnerOptions::wake_batch): at the
  /// latest when this thread is about to sleep.
  void defer_wakeup(OutputPort& port);
  /// Rings the consumers whose wake-up was deferred.
  void flush_wakeups();
  /// Sleeps on this thread's doorbell, first ringing the consumers whose wake-up was
  /// deferred: a thread must never sleep while its consumers sleep on work it queued.
  void sleep(std::chrono::microseconds timeout);

  /// The received packet the node is processing (slot kNoSlot when none), which
  /// OutputWriter::forward() may pass on.
  ipc::SlotDescriptor in_hand{};

  /// Hang watch: steady-clock ns at which the thread entered node code; 0 outside of it.
  /// Written by the runner thread (NodeCall, KernelCall), read by any thread.
  std::atomic<std::int64_t> busy_since_ns{0};

 private:
  ipc::Doorbell doorbell_;
  PoolTable& pools_;
  RunnerOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  std::atomic<bool> stop_{false};
  Mailbox mailbox_;
  RunnerCounters counters_;
  std::vector<OutputPort*> deferred_wakeups_;
};

std::int64_t steady_now_ns();

/// Marks the runner thread as inside node code (for the hang watch).
class NodeCall {
 public:
  explicit NodeCall(PortContext& context) : context_(context) {
    context_.busy_since_ns.store(steady_now_ns(), std::memory_order_relaxed);
  }
  NodeCall(const NodeCall&) = delete;
  NodeCall& operator=(const NodeCall&) = delete;
  ~NodeCall() { context_.busy_since_ns.store(0, std::memory_order_relaxed); }

 private:
  PortContext& context_;
};

/// Marks a call from node code into the runtime: blocking here is backpressure, not a hang.
class KernelCall {
 public:
  explicit KernelCall(PortContext& context)
      : context_(context),
        was_busy_(context_.busy_since_ns.exchange(0, std::memory_order_relaxed) != 0) {}
  KernelCall(const KernelCall&) = delete;
  KernelCall& operator=(const KernelCall&) = delete;
  ~KernelCall() {
    if (was_busy_) {
      context_.busy_since_ns.store(steady_now_ns(), std::memory_order_relaxed);
    }
  }

 private:
  PortContext& context_;
  bool was_busy_;
};

}  // namespace skit::runtime
