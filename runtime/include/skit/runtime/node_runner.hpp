// SPDX-License-Identifier: MPL-2.0
// The node runtime ("kernel"): runs one node on its own thread, moving packets between the
// node and its shared-memory rings, with backpressure, best-effort drops, end of stream,
// live tuning, stop requests and counters. Workers host many runners; the supervisor hosts
// the runners of host-side nodes (streamkit::http_input/http_output).
//
// Inside (runtime/src/): the input side (input_ports: receive, drain, detach markers, stream
// formats), the output side (output_port: loan, publish, fan-out, forward, format replay),
// rewiring (batches of RewireCommands, retirement) and what they share (port_context).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/state.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/layout.hpp"
#include "skit/runtime/pool_table.hpp"
#include "skit/runtime/runner_spec.hpp"

namespace skit::runtime {

class PortContext;
class InputPorts;
class OutputPort;
class Rewiring;

class NodeRunner final : public NodeContext {
 public:
  NodeRunner(RunnerSpec spec, std::unique_ptr<Node> node, PoolTable& pools, EventSink& events,
             RunnerOptions options = {});
  NodeRunner(const NodeRunner&) = delete;
  NodeRunner& operator=(const NodeRunner&) = delete;
  NodeRunner(NodeRunner&&) = delete;
  NodeRunner& operator=(NodeRunner&&) = delete;
  ~NodeRunner() override;

  /// Maps rings, binds the doorbell and connects to every peer doorbell. Call before the
  /// sandbox engages: no socket or mapping is created afterwards.
  Status attach();
  /// Binds this runner's doorbell. Call for every runner of a process before any attach(),
  /// so doorbells between threads of one process use inproc:// instead of ipc://.
  void bind_doorbell();
  /// Runs Node::prepare() (opens files); also before the sandbox.
  Status prepare();
  void start();
  /// Asks the node to stop at the next packet boundary; `from` is the caller's doorbell.
  void request_stop(ipc::Doorbell& from);
  /// Queues a live param patch, applied between two packets; reported to
  /// EventSink::tuned() with `op_id`.
  void tune(const Json& patch, ipc::Doorbell& from, std::uint64_t op_id = 0);
  /// Queues an HTTP request for the node (Node::on_request between two packets); its reply
  /// goes to EventSink::replied() with `request_id`.
  void request(NodeRequest request, std::uint64_t request_id, ipc::Doorbell& from);
  /// Queues connection changes, applied together between two packets.
  void rewire(std::vector<RewireCommand> commands, ipc::Doorbell& from);
  void join();
  [[nodiscard]] bool finished() const { return finished_.load(std::memory_order_acquire); }
  [[nodiscard]] NodeStats stats() const;
  /// How long the node has been inside one call (process/produce/finish) without calling
  /// into the runtime; 0 when idle or waiting. A large value means the node is wedged.
  [[nodiscard]] std::chrono::milliseconds busy_for() const;
  [[nodiscard]] const RunnerSpec& spec() const { return spec_; }
  [[nodiscard]] const std::string& last_error() const { return last_error_; }

  void set_host_source(HostByteSource* source) { host_source_ = source; }
  void set_host_sink(HostByteSink* sink) { host_sink_ = sink; }

  // NodeContext
  [[nodiscard]] const std::string& node_id() const override { return spec_.node_id; }
  [[nodiscard]] std::size_t output_count() const override;
  OutputWriter& output(std::size_t index) override;
  [[nodiscard]] std::optional<std::size_t> output_index(std::string_view pin) const override;
  [[nodiscard]] std::string input_pin(std::size_t index) const override;
  [[nodiscard]] bool stop_requested() const override;
  bool sleep_until(std::chrono::steady_clock::time_point deadline) override;
  spdlog::logger& log() override;
  [[nodiscard]] const StreamInfo* input_info(std::size_t index) const override;
  Result<std::size_t> read_input(std::span<std::byte> buffer) override;
  HostByteSource* host_source() override { return host_source_; }
  HostByteSink* host_sink() override { return host_sink_; }
  Result<UniqueFd> open_file(const std::string& path, FileAccess access) override {
    return skit::open_file(path, access, spec_.confined_files);
  }
  /// Any thread. Capped per node (RunnerOptions::telemetry); kResourceExhausted when the event
  /// was dropped (counted in NodeStats::telemetry_dropped), kInvalidArgument for a bad event.
  Status emit_telemetry(std::string_view event_type, const Json& data,
                        std::int64_t timestamp_us = -1) override;
  void wake_at(std::chrono::steady_clock::time_point deadline) override { timer_ = deadline; }

 private:
  struct Received;
  void thread_main();
  Status run_source();
  Status run_filter();
  /// Takes the next data packet or end of stream from any input, applying live changes and
  /// handling stream formats on the way. Nothing (after sleeping) when no input is ready yet.
  Result<std::optional<Received>> receive();
  /// Applies queued tunes and rewires. Output changes wait while a loan is outstanding.
  void apply_pending_commands();
  /// An input's format changed: Passthrough outputs pass it on, then the node hears of it.
  Status on_input_format(std::size_t index, const StreamInfo& info, PacketKind kind);
  void report(NodeState state, const std::string& message, ErrorCode error = ErrorCode::kOk);

  RunnerSpec spec_;
  std::unique_ptr<Node> node_;
  EventSink& events_;
  std::unique_ptr<PortContext> context_;
  std::unique_ptr<InputPorts> inputs_;
  std::vector<std::unique_ptr<OutputPort>> outputs_;
  std::unique_ptr<Rewiring> rewiring_;
  std::optional<ipc::SlotDescriptor> pull_packet_;  // read_input(): partly consumed packet
  std::uint32_t pull_offset_ = 0;
  HostByteSource* host_source_ = nullptr;
  HostByteSink* host_sink_ = nullptr;

  std::optional<std::chrono::steady_clock::time_point> timer_;  // wake_at(), runner thread
  std::thread thread_;
  // emit_telemetry(): the token bucket, shared by every thread that emits for this node.
  std::mutex telemetry_mutex_;
  double telemetry_tokens_ = -1;  // < 0: full (not used yet)
  std::chrono::steady_clock::time_point telemetry_refilled_{};
  bool telemetry_drop_logged_ = false;
  std::atomic<bool> finished_{false};
  std::string last_error_;
};

}  // namespace skit::runtime
