// SPDX-License-Identifier: MPL-2.0
// The node runtime ("kernel"): runs one node on its own thread, moving packets between the
// node and its shared-memory rings, with backpressure, best-effort drops, end of stream,
// live tuning, stop requests and counters. Workers host many runners; the supervisor hosts
// the runners of host-side nodes (streamkit::http_input/http_output).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/state.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"

namespace skit::runtime {

/// Every slot pool of a pipeline, mapped in this process, indexed by the pool id that
/// descriptors carry. Consumers release (and forwarders re-reference) slots through it.
/// Thread-safe: live sessions add pools while runners read, so with a name prefix set, a
/// pool not yet mapped here is opened on first use ("<prefix><index>").
class PoolTable {
 public:
  PoolTable();
  ~PoolTable();
  PoolTable(const PoolTable&) = delete;
  PoolTable& operator=(const PoolTable&) = delete;

  Status open(std::uint32_t index, const std::string& segment_name);
  /// Adopts a segment this process created (the supervisor's own view).
  Status adopt(std::uint32_t index, ipc::SlotPool pool);
  /// Lets find() map unknown pools by name.
  void set_name_prefix(std::string prefix);
  [[nodiscard]] ipc::SlotPool* find(std::uint32_t index);

 private:
  static constexpr std::uint32_t kChunk = 256;
  static constexpr std::uint32_t kChunks = 1024;  // 262144 pool ids
  struct Chunk;
  ipc::SlotPool* lookup(std::uint32_t index) const;
  Status insert_locked(std::uint32_t index, ipc::SlotPool pool);
  std::unique_ptr<std::atomic<Chunk*>[]> chunks_;
  std::mutex mutex_;  // writers
  std::string prefix_;
  std::vector<std::unique_ptr<Chunk>> owned_;
  std::vector<ipc::SharedSegment> segments_;
};

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
  bool dynamic = false;
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
  [[nodiscard]] std::size_t output_count() const override { return outputs_.size(); }
  OutputWriter& output(std::size_t index) override;
  [[nodiscard]] bool stop_requested() const override {
    return stop_.load(std::memory_order_relaxed);
  }
  bool sleep_until(std::chrono::steady_clock::time_point deadline) override;
  spdlog::logger& log() override;
  [[nodiscard]] const StreamInfo* input_info(std::size_t index) const override;
  Result<std::size_t> read_input(std::span<std::byte> buffer) override;
  HostByteSource* host_source() override { return host_source_; }
  HostByteSink* host_sink() override { return host_sink_; }
  Result<UniqueFd> open_file(const std::string& path, FileAccess access) override {
    return skit::open_file(path, access, spec_.confined_files);
  }

 private:
  class Output;
  struct Connection {
    std::string name;
    std::unique_ptr<ipc::SharedSegment> segment;
    ipc::Ring ring;
    bool detaching = false;
    bool drop = false;
    std::chrono::steady_clock::time_point deadline{};
  };
  struct Input {
    std::string pin;
    std::optional<Connection> active;
    std::deque<Connection> next;  // later connections of the same pin, read in turn
    bool ended = false;
    bool sticky_pending = false;  // the active connection's recorded format is not read yet
    std::optional<StreamInfo> info;
  };
  struct PendingCommand {
    bool is_tune = false;
    Json patch;
    std::uint64_t op_id = 0;
    std::vector<RewireCommand> rewire;
  };

  friend class NodeCall;
  friend class KernelCall;
  void thread_main();
  Status run_source();
  Status run_filter();
  bool pop_any(ipc::SlotDescriptor& out, std::size_t& index);
  void wait_for_input();
  /// Applies queued tunes and rewires. Output changes wait while a loan is outstanding.
  void apply_pending_commands();
  bool apply_rewire(std::vector<RewireCommand>& commands);
  void attach_input(const std::string& pin, Connection connection);
  /// Moves an input on to its next connection, giving back what is left in the current one.
  void advance(Input& in);
  void expire_detaching();
  [[nodiscard]] bool all_inputs_ended() const;
  [[nodiscard]] bool any_connection() const;
  void release(const ipc::SlotDescriptor& d);
  /// Rings the consumers whose wake-up was deferred (see RunnerOptions::wake_batch).
  void flush_wakeups();
  /// One received packet or end of stream.
  struct Received {
    ipc::SlotDescriptor descriptor{};
    std::size_t index = 0;
    bool end = false;
  };
  /// Takes the next data packet or end of stream from any input, handling stream info and
  /// live tuning on the way. Nothing (after sleeping) when no input is ready yet.
  Result<std::optional<Received>> receive();
  /// The payload bytes a descriptor points at, bounds-checked.
  Result<std::span<const std::byte>> payload(const ipc::SlotDescriptor& d, std::size_t index);
  Status handle_stream_info(const ipc::SlotDescriptor& d, std::size_t index);
  Status apply_stream_info(const StreamInfo& info, PacketKind kind, std::size_t index);
  /// Live inputs: a connection that became active mid-stream (a restart, a switch) first
  /// takes the format its ring recorded, so that a decoder can go on without the stream's
  /// start.
  Status adopt_sticky_info();
  void drain_inputs();
  void report(NodeState state, const std::string& message, ErrorCode error = ErrorCode::kOk);

  RunnerSpec spec_;
  std::unique_ptr<Node> node_;
  PoolTable& pools_;
  EventSink& events_;
  RunnerOptions options_;
  ipc::Doorbell doorbell_;
  std::vector<Input> inputs_;
  std::vector<std::unique_ptr<Output>> outputs_;
  std::size_t next_input_ = 0;
  ipc::SlotDescriptor current_{};  // the packet being processed, for forward()
  std::optional<ipc::SlotDescriptor> pull_packet_;  // read_input(): partly consumed packet
  std::uint32_t pull_offset_ = 0;
  std::shared_ptr<spdlog::logger> logger_;
  HostByteSource* host_source_ = nullptr;
  HostByteSink* host_sink_ = nullptr;

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> tune_pending_{false};  // any command queued
  std::mutex tune_mutex_;
  std::deque<PendingCommand> commands_;
  bool retiring_ = false;
  std::string last_error_;

  std::atomic<std::int64_t> busy_since_ns_{0};  // steady clock; 0 = not in node code
  std::atomic<std::uint64_t> packets_in_{0};
  std::atomic<std::uint64_t> bytes_in_{0};
  std::atomic<std::int64_t> media_time_us_{0};  // written by the runner thread only
  std::atomic<std::uint64_t> packets_out_{0};
  std::atomic<std::uint64_t> bytes_out_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace skit::runtime
