// SPDX-License-Identifier: MPL-2.0
#include "skit/runtime/node_runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#define SKIT_CPU_RELAX() _mm_pause()
#else
#define SKIT_CPU_RELAX() ((void)0)
#endif

namespace skit::runtime {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// PoolTable

struct PoolTable::Chunk {
  std::array<std::atomic<ipc::SlotPool*>, kChunk> pools{};
  std::array<std::unique_ptr<ipc::SlotPool>, kChunk> owned;
};

PoolTable::PoolTable() : chunks_(new std::atomic<Chunk*>[kChunks]) {
  for (std::uint32_t i = 0; i < kChunks; ++i) {
    chunks_[i].store(nullptr, std::memory_order_relaxed);
  }
}

PoolTable::~PoolTable() = default;

ipc::SlotPool* PoolTable::lookup(std::uint32_t index) const {
  if (index / kChunk >= kChunks) {
    return nullptr;
  }
  Chunk* chunk = chunks_[index / kChunk].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : chunk->pools[index % kChunk].load(std::memory_order_acquire);
}

Status PoolTable::insert_locked(std::uint32_t index, ipc::SlotPool pool) {
  if (index / kChunk >= kChunks) {
    return Status(ErrorCode::kResourceExhausted, "pool id " + std::to_string(index) + " out of range");
  }
  Chunk* chunk = chunks_[index / kChunk].load(std::memory_order_acquire);
  if (chunk == nullptr) {
    owned_.push_back(std::make_unique<Chunk>());
    chunk = owned_.back().get();
    chunks_[index / kChunk].store(chunk, std::memory_order_release);
  }
  auto& slot = chunk->owned[index % kChunk];
  if (slot) {
    *slot = pool;  // re-adopted (same segment): the pointer stays valid for readers
  } else {
    slot = std::make_unique<ipc::SlotPool>(pool);
  }
  chunk->pools[index % kChunk].store(slot.get(), std::memory_order_release);
  return Status::ok();
}

Status PoolTable::open(std::uint32_t index, const std::string& segment_name) {
  std::lock_guard lock(mutex_);
  if (lookup(index) != nullptr) {
    return Status::ok();
  }
  auto segment = ipc::SharedSegment::open(segment_name);
  if (!segment) {
    return segment.status();
  }
  auto pool = ipc::SlotPool::attach(segment->data(), segment->size());
  if (!pool) {
    return pool.status();
  }
  SKIT_RETURN_IF_ERROR(insert_locked(index, *pool));
  segments_.push_back(std::move(segment).value());
  return Status::ok();
}

Status PoolTable::adopt(std::uint32_t index, ipc::SlotPool pool) {
  std::lock_guard lock(mutex_);
  return insert_locked(index, pool);
}

void PoolTable::set_name_prefix(std::string prefix) {
  std::lock_guard lock(mutex_);
  prefix_ = std::move(prefix);
}

ipc::SlotPool* PoolTable::find(std::uint32_t index) {
  if (ipc::SlotPool* pool = lookup(index)) {
    return pool;
  }
  std::string name;
  {
    std::lock_guard lock(mutex_);
    if (prefix_.empty()) {
      return nullptr;
    }
    name = prefix_ + std::to_string(index);
  }
  if (!open(index, name).is_ok()) {
    return nullptr;
  }
  return lookup(index);
}

namespace {
std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}
}  // namespace

/// Marks the runner thread as inside node code (for the hang watch).
class NodeCall {
 public:
  explicit NodeCall(NodeRunner& r) : r_(r) { r_.busy_since_ns_.store(now_ns(), std::memory_order_relaxed); }
  NodeCall(const NodeCall&) = delete;
  NodeCall& operator=(const NodeCall&) = delete;
  ~NodeCall() { r_.busy_since_ns_.store(0, std::memory_order_relaxed); }

 private:
  NodeRunner& r_;
};

/// Marks a call from node code into the runtime: blocking here is backpressure, not a hang.
class KernelCall {
 public:
  explicit KernelCall(NodeRunner& r)
      : r_(r), was_busy_(r_.busy_since_ns_.exchange(0, std::memory_order_relaxed) != 0) {}
  KernelCall(const KernelCall&) = delete;
  KernelCall& operator=(const KernelCall&) = delete;
  ~KernelCall() {
    if (was_busy_) {
      r_.busy_since_ns_.store(now_ns(), std::memory_order_relaxed);
    }
  }

 private:
  NodeRunner& r_;
  bool was_busy_;
};

// ---------------------------------------------------------------------------------------------
// Output: one output pin, its slot pool and one ring per connection.

class NodeRunner::Output final : public OutputWriter {
 public:
  Output(NodeRunner& runner, std::string pin) : runner_(runner), pin_(std::move(pin)) {}

  Status attach(std::uint32_t pool_index, const std::vector<std::string>& ring_segments) {
    pool_index_ = pool_index;
    for (const auto& name : ring_segments) {
      auto segment = ipc::SharedSegment::open(name);
      if (!segment) {
        return segment.status();
      }
      SKIT_RETURN_IF_ERROR(
          add_ring(name, std::make_unique<ipc::SharedSegment>(std::move(segment).value()), false));
    }
    if (!rings_.empty() || runner_.options_.dynamic) {
      ipc::SlotPool* pool = runner_.pools_.find(pool_index);
      if (pool == nullptr) {
        return Status(ErrorCode::kInternal, "output '" + pin_ + "' has no slot pool");
      }
      pool_ = *pool;  // own copy: the allocation cursor is this thread's
      has_pool_ = true;
    }
    return Status::ok();
  }

  [[nodiscard]] const std::string& pin() const { return pin_; }
  [[nodiscard]] bool loan_outstanding() const { return loaned_ != ipc::kNoSlot || scratch_loan_; }
  [[nodiscard]] bool has_ring(const std::string& name) const {
    return std::find(names_.begin(), names_.end(), name) != names_.end();
  }

  /// Adds a connection; with `replay`, the stream's format goes to it before any data.
  Status add_ring(const std::string& name, std::unique_ptr<ipc::SharedSegment> segment,
                  bool replay) {
    auto ring = ipc::Ring::attach(segment->data(), segment->size());
    if (!ring) {
      return ring.status();
    }
    rings_.push_back(*ring);
    segments_.push_back(std::move(segment));
    names_.push_back(name);
    if (!info_bytes_.empty()) {
      (void)rings_.back().set_sticky(info_bytes_, static_cast<std::uint32_t>(info_header_.kind));
    }
    if (replay && !info_bytes_.empty() && has_pool_ && info_bytes_.size() <= pool_.slot_size()) {
      // A consumer that joins mid-stream still learns the format first.
      std::optional<std::uint32_t> slot;
      const auto give_up = Clock::now() + std::chrono::milliseconds(500);
      while (!(slot = pool_.try_acquire()) && Clock::now() < give_up && !runner_.stop_requested()) {
        runner_.doorbell_.wait(std::chrono::milliseconds(5));
      }
      if (slot) {
        std::memcpy(pool_.slot_data(*slot).data(), info_bytes_.data(), info_bytes_.size());
        ipc::SlotDescriptor d;
        d.pool = pool_index_;
        d.slot = *slot;
        d.size = static_cast<std::uint32_t>(info_bytes_.size());
        fill_header(d, info_header_);
        (void)push_one(rings_.back(), d, /*droppable=*/false);
      } else {
        runner_.log().warn("no free slot to replay the stream format to a new connection");
      }
    }
    return Status::ok();
  }

  /// Leaves a connection: a detach marker tells the consumer that nothing more comes.
  void remove_ring(const std::string& name) {
    auto it = std::find(names_.begin(), names_.end(), name);
    if (it == names_.end()) {
      return;
    }
    const auto i = static_cast<std::size_t>(it - names_.begin());
    ipc::SlotDescriptor d;
    d.control = ipc::kControlDetach;
    d.sequence = sequence_++;
    push_marker(rings_[i], d);
    rings_.erase(rings_.begin() + static_cast<std::ptrdiff_t>(i));
    segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(i));
    names_.erase(names_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  [[nodiscard]] const std::vector<ipc::Ring>& rings() const { return rings_; }

  void flush_wakeups() {
    if (!wake_pending_) {
      return;
    }
    wake_pending_ = false;
    for (auto& ring : rings_) {
      if (ring.take_consumer_wakeup()) {
        runner_.doorbell_.ring(ring.consumer_doorbell());
      }
    }
  }

  Result<std::span<std::byte>> loan(std::size_t bytes) override {
    KernelCall kernel(runner_);
    if (rings_.empty()) {  // unconnected output: packets go nowhere
      scratch_.resize(std::max(scratch_.size(), bytes));
      scratch_loan_ = true;
      return std::span<std::byte>(scratch_.data(), bytes);
    }
    if (bytes > pool_.slot_size()) {
      return Status(ErrorCode::kResourceExhausted,
                    "packet of " + std::to_string(bytes) + " bytes exceeds the " +
                        std::to_string(pool_.slot_size()) + "-byte slots of output '" + pin_ +
                        "'");
    }
    if (loaned_ != ipc::kNoSlot) {
      return std::span<std::byte>(pool_.slot_data(loaned_).data(), bytes);
    }
    const auto spin_until = Clock::now() + runner_.options_.spin;
    std::uint32_t spins = 0;
    while (true) {
      if (auto slot = pool_.try_acquire()) {
        loaned_ = *slot;
        return std::span<std::byte>(pool_.slot_data(loaned_).data(), bytes);
      }
      if (runner_.stop_requested()) {
        return Status(ErrorCode::kCancelled, "stopped while waiting for a free slot");
      }
      if ((++spins & 63U) != 0 || Clock::now() < spin_until) {
        SKIT_CPU_RELAX();
        continue;
      }
      pool_.set_owner_waiting(true);
      if (auto slot = pool_.try_acquire()) {
        pool_.set_owner_waiting(false);
        loaned_ = *slot;
        return std::span<std::byte>(pool_.slot_data(loaned_).data(), bytes);
      }
      runner_.flush_wakeups();
      runner_.doorbell_.wait(runner_.options_.idle_wait);
      pool_.set_owner_waiting(false);
    }
  }

  Status publish(std::size_t used, const PacketHeader& header) override {
    KernelCall kernel(runner_);
    if ((header.flags & kFlagStreamInfo) == 0) {
      runner_.packets_out_.fetch_add(1, std::memory_order_relaxed);
      runner_.bytes_out_.fetch_add(used, std::memory_order_relaxed);
    }
    const bool scratch = scratch_loan_;
    scratch_loan_ = false;
    if ((header.flags & kFlagStreamInfo) != 0) {
      // Kept for consumers that connect later (replayed by add_ring()) and recorded in every
      // ring (sticky) for consumers that restart.
      const std::byte* src = scratch ? scratch_.data()
                             : loaned_ != ipc::kNoSlot ? pool_.slot_data(loaned_).data()
                                                       : nullptr;
      if (src != nullptr) {
        info_bytes_.assign(src, src + used);
        info_header_ = header;
        for (auto& ring : rings_) {
          (void)ring.set_sticky(info_bytes_, static_cast<std::uint32_t>(header.kind));
        }
      }
    }
    if (rings_.empty()) {
      if (loaned_ != ipc::kNoSlot) {  // connections left between loan() and publish()
        pool_.set_refs(loaned_, 0);
        loaned_ = ipc::kNoSlot;
      }
      return Status::ok();
    }
    if (loaned_ == ipc::kNoSlot) {
      return Status(ErrorCode::kInternal, "publish() without loan()");
    }
    ipc::SlotDescriptor d;
    d.pool = pool_index_;
    d.slot = loaned_;
    d.offset = 0;
    d.size = static_cast<std::uint32_t>(used);
    fill_header(d, header);
    loaned_ = ipc::kNoSlot;
    pool_.set_refs(d.slot, static_cast<std::uint32_t>(rings_.size()));
    return push_all(d);
  }

  Status forward(const PacketView& packet) override {
    KernelCall kernel(runner_);
    runner_.packets_out_.fetch_add(1, std::memory_order_relaxed);
    runner_.bytes_out_.fetch_add(packet.data.size(), std::memory_order_relaxed);
    if (rings_.empty()) {
      return Status::ok();
    }
    if (packet.forward_token != runner_.current_.sequence + 1 ||
        runner_.current_.slot == ipc::kNoSlot) {
      return Status(ErrorCode::kInternal, "forward() of a packet that is not being processed");
    }
    ipc::SlotDescriptor d = runner_.current_;
    const auto* slot_base = runner_.pools_.find(d.pool)->slot_data(d.slot).data();
    d.offset = static_cast<std::uint32_t>(packet.data.data() - slot_base);
    d.size = static_cast<std::uint32_t>(packet.data.size());
    fill_header(d, packet.header);
    // We hold a reference for the packet in hand, so adding more cannot race with a free.
    runner_.pools_.find(d.pool)->add_refs(d.slot, static_cast<std::uint32_t>(rings_.size()));
    return push_all(d);
  }

  [[nodiscard]] std::size_t max_packet_bytes() const override {
    return has_pool_ ? pool_.slot_size() : std::size_t{1} << 30;
  }

  /// End of stream on every connection; never dropped, even on best-effort rings. A retired
  /// node sends detach markers instead: its consumers go on with their next connection.
  void close(bool failed, bool detach) {
    ipc::SlotDescriptor d;
    std::uint8_t control = ipc::kControlEndOfStream;
    if (failed) {
      control |= ipc::kControlError;
    }
    d.control = detach ? static_cast<std::uint8_t>(ipc::kControlDetach) : control;
    d.sequence = sequence_++;
    for (auto& ring : rings_) {
      if (detach) {
        push_marker(ring, d);
      } else {
        (void)push_one(ring, d, /*droppable=*/false);
      }
    }
  }

 private:
  void fill_header(ipc::SlotDescriptor& d, const PacketHeader& header) {
    d.sequence = sequence_++;
    d.pts_us = header.pts_us;
    d.duration_us = header.duration_us;
    d.flags = header.flags;
    d.sample_rate = header.sample_rate;
    d.channels = header.channels;
    d.trim_start = header.trim_start;
    d.trim_end = header.trim_end;
    d.kind = static_cast<std::uint8_t>(header.kind);
    d.control = ipc::kControlNone;
  }

  Status push_all(const ipc::SlotDescriptor& d) {
    for (std::size_t i = 0; i < rings_.size(); ++i) {
      Status s = push_one(rings_[i], d, /*droppable=*/true);
      if (!s.is_ok()) {
        // Give back the references meant for the rings we did not reach.
        for (std::size_t j = i; j < rings_.size(); ++j) {
          runner_.release(d);
        }
        return s;
      }
    }
    return Status::ok();
  }

  Status push_one(ipc::Ring& ring, const ipc::SlotDescriptor& d, bool droppable) {
    const bool best_effort = ring.mode() == ConnectionMode::kBestEffort;
    const auto spin_until = Clock::now() + runner_.options_.spin;
    std::uint32_t spins = 0;
    while (!ring.try_push(d)) {
      if (best_effort) {
        ipc::SlotDescriptor oldest;
        if (ring.drop_oldest(oldest)) {
          if (oldest.control != ipc::kControlNone) {
            (void)ring.try_push(oldest);  // never lose an end of stream
          }
          runner_.release(oldest);
          runner_.dropped_.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      if (runner_.stop_requested() && droppable) {
        return Status(ErrorCode::kCancelled, "stopped while the output was blocked");
      }
      if ((++spins & 63U) != 0 || Clock::now() < spin_until) {
        SKIT_CPU_RELAX();
        continue;
      }
      ring.set_producer_waiting(true);
      if (ring.try_push(d)) {
        ring.set_producer_waiting(false);
        break;
      }
      runner_.flush_wakeups();
      runner_.doorbell_.wait(runner_.options_.idle_wait);
      ring.set_producer_waiting(false);
      if (runner_.stop_requested() && !droppable) {
        return Status(ErrorCode::kCancelled, "stopped");  // the consumer is going away too
      }
    }
    // Wake a sleeping consumer now only at end of stream or once a batch is queued; else
    // defer until this thread sleeps (flush_wakeups) or the batch fills.
    if (!droppable || ring.size() >= runner_.options_.wake_batch) {
      if (ring.take_consumer_wakeup()) {
        runner_.doorbell_.ring(ring.consumer_doorbell());
      }
    } else {
      wake_pending_ = true;
    }
    return Status::ok();
  }

  /// A control marker on a live ring: waits a bounded time on a full reliable ring (its
  /// consumer may be gone; it then gives up on the marker after its grace period).
  void push_marker(ipc::Ring& ring, const ipc::SlotDescriptor& d) {
    const auto give_up = Clock::now() + std::chrono::seconds(1);
    while (!ring.try_push(d)) {
      if (ring.mode() == ConnectionMode::kBestEffort) {
        ipc::SlotDescriptor oldest;
        if (ring.drop_oldest(oldest)) {
          runner_.release(oldest);
          runner_.dropped_.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      if (Clock::now() >= give_up) {
        return;
      }
      ring.set_producer_waiting(true);
      if (ring.try_push(d)) {
        ring.set_producer_waiting(false);
        break;
      }
      runner_.flush_wakeups();
      runner_.doorbell_.wait(std::chrono::milliseconds(20));
      ring.set_producer_waiting(false);
    }
    if (ring.take_consumer_wakeup()) {
      runner_.doorbell_.ring(ring.consumer_doorbell());
    }
  }

  NodeRunner& runner_;
  std::string pin_;
  std::uint32_t pool_index_ = 0;
  ipc::SlotPool pool_;
  bool has_pool_ = false;
  std::vector<ipc::Ring> rings_;
  std::vector<std::unique_ptr<ipc::SharedSegment>> segments_;
  std::vector<std::string> names_;
  std::vector<std::byte> info_bytes_;  // last stream info published (dynamic runners)
  PacketHeader info_header_;
  bool scratch_loan_ = false;
  std::uint32_t loaned_ = ipc::kNoSlot;
  std::uint64_t sequence_ = 0;
  std::vector<std::byte> scratch_;
  bool wake_pending_ = false;
};

// ---------------------------------------------------------------------------------------------
// NodeRunner

NodeRunner::NodeRunner(RunnerSpec spec, std::unique_ptr<Node> node, PoolTable& pools,
                       EventSink& events, RunnerOptions options)
    : spec_(std::move(spec)),
      node_(std::move(node)),
      pools_(pools),
      events_(events),
      options_(options),
      doorbell_(spec_.doorbell) {
  const std::string name = "node." + spec_.node_id;
  logger_ = spdlog::get(name);
  if (!logger_) {
    logger_ = spdlog::default_logger()->clone(name);
  }
}

NodeRunner::~NodeRunner() {
  stop_.store(true);
  if (thread_.joinable()) {
    thread_.join();
  }
}

void NodeRunner::bind_doorbell() { doorbell_.bind(); }

Status NodeRunner::attach() {
  doorbell_.bind();
  doorbell_.connect(events_.wake_endpoint());
  for (const auto& in : spec_.inputs) {
    auto segment = ipc::SharedSegment::open(in.ring_segment);
    if (!segment) {
      return segment.status();
    }
    auto ring = ipc::Ring::attach(segment->data(), segment->size());
    if (!ring) {
      return ring.status();
    }
    doorbell_.connect(ring->producer_doorbell());
    Connection c;
    c.name = in.ring_segment;
    c.segment = std::make_unique<ipc::SharedSegment>(std::move(segment).value());
    c.ring = *ring;
    attach_input(in.pin, std::move(c));
  }
  for (const auto& out : spec_.outputs) {
    auto output = std::make_unique<Output>(*this, out.pin);
    SKIT_RETURN_IF_ERROR(output->attach(out.pool_index, out.ring_segments));
    for (const auto& ring : output->rings()) {
      doorbell_.connect(ring.consumer_doorbell());
    }
    outputs_.push_back(std::move(output));
  }
  return Status::ok();
}

void NodeRunner::attach_input(const std::string& pin, Connection connection) {
  for (auto& in : inputs_) {
    if (in.pin == pin) {
      if (in.active || !in.next.empty()) {
        in.next.push_back(std::move(connection));
      } else {
        in.active = std::move(connection);
        in.sticky_pending = options_.dynamic;
      }
      in.ended = false;
      return;
    }
  }
  Input in;
  in.pin = pin;
  in.active = std::move(connection);
  in.sticky_pending = options_.dynamic;
  inputs_.push_back(std::move(in));
}

Status NodeRunner::prepare() {
  Status s = node_->prepare(*this);
  if (!s.is_ok()) {
    last_error_ = s.to_string();
  }
  return s;
}

void NodeRunner::start() {
  thread_ = std::thread([this] { thread_main(); });
}

void NodeRunner::request_stop(ipc::Doorbell& from) {
  stop_.store(true, std::memory_order_release);
  from.ring(spec_.doorbell);
}

void NodeRunner::tune(const Json& patch, ipc::Doorbell& from, std::uint64_t op_id) {
  {
    std::lock_guard lock(tune_mutex_);
    PendingCommand c;
    c.is_tune = true;
    c.patch = patch;
    c.op_id = op_id;
    commands_.push_back(std::move(c));
  }
  tune_pending_.store(true, std::memory_order_release);
  from.ring(spec_.doorbell);
}

void NodeRunner::rewire(std::vector<RewireCommand> commands, ipc::Doorbell& from) {
  {
    std::lock_guard lock(tune_mutex_);
    PendingCommand c;
    c.rewire = std::move(commands);
    commands_.push_back(std::move(c));
  }
  tune_pending_.store(true, std::memory_order_release);
  from.ring(spec_.doorbell);
}

void NodeRunner::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

NodeStats NodeRunner::stats() const {
  return NodeStats{packets_in_.load(std::memory_order_relaxed),
                   packets_out_.load(std::memory_order_relaxed),
                   bytes_in_.load(std::memory_order_relaxed),
                   bytes_out_.load(std::memory_order_relaxed),
                   dropped_.load(std::memory_order_relaxed),
                   media_time_us_.load(std::memory_order_relaxed)};
}

std::chrono::milliseconds NodeRunner::busy_for() const {
  const std::int64_t since = busy_since_ns_.load(std::memory_order_relaxed);
  if (since == 0) {
    return std::chrono::milliseconds(0);
  }
  return std::chrono::milliseconds((now_ns() - since) / 1000000);
}

OutputWriter& NodeRunner::output(std::size_t index) { return *outputs_.at(index); }

bool NodeRunner::sleep_until(Clock::time_point deadline) {
  KernelCall kernel(*this);
  while (!stop_requested()) {
    const auto now = Clock::now();
    if (now >= deadline) {
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
    if (left < std::chrono::milliseconds(2)) {
      std::this_thread::sleep_until(deadline);  // finer than the doorbell's 1 ms poll
      return !stop_requested();
    }
    flush_wakeups();
    doorbell_.wait(std::min<std::chrono::microseconds>(left - std::chrono::milliseconds(1),
                                                       options_.idle_wait));
    apply_pending_commands();
  }
  return false;
}

spdlog::logger& NodeRunner::log() { return *logger_; }

void NodeRunner::report(NodeState state, const std::string& message, ErrorCode error) {
  events_.post(spec_.node_id, state, message, error, stats());
  doorbell_.ring(events_.wake_endpoint());
}

void NodeRunner::thread_main() {
  report(NodeState::kRunning, "");
  apply_pending_commands();
  const bool source = !spec_.accepts_input || spec_.pulls_input ||
                      (inputs_.empty() && !options_.dynamic);
  Status status = source ? run_source() : run_filter();
  if (status.is_ok() && !stop_requested() && !retiring_) {
    NodeCall call(*this);
    status = node_->finish(*this);
  }
  const bool failed = !status.is_ok() && status.code() != ErrorCode::kCancelled;
  for (auto& out : outputs_) {
    out->close(failed, retiring_ && !failed);
  }
  flush_wakeups();
  if (!failed) {
    drain_inputs();  // a node that ends early must not leave its producers blocked
  }
  if (failed) {
    last_error_ = status.to_string();
    report(NodeState::kFailed, last_error_, status.code());
  } else {
    report(NodeState::kStopped, retiring_          ? "removed"
                                : stop_requested() ? "shutdown"
                                                   : "completed");
  }
  finished_.store(true, std::memory_order_release);
}

Status NodeRunner::run_source() {
  while (!stop_requested()) {
    apply_pending_commands();
    if (retiring_ && (!spec_.pulls_input || !any_connection())) {
      return Status::ok();
    }
    auto produced = [this] {
      NodeCall call(*this);
      return node_->produce(*this);
    }();
    if (!produced) {
      return produced.status();
    }
    if (*produced == Node::Produced::kDone) {
      return Status::ok();
    }
  }
  return Status(ErrorCode::kCancelled, "stopped");
}

bool NodeRunner::any_connection() const {
  return std::any_of(inputs_.begin(), inputs_.end(), [](const Input& in) {
    return (in.active && !in.ended) || !in.next.empty();
  });
}

bool NodeRunner::all_inputs_ended() const {
  return !inputs_.empty() && std::all_of(inputs_.begin(), inputs_.end(), [](const Input& in) {
           return in.ended && in.next.empty();
         });
}

void NodeRunner::advance(Input& in) {
  if (in.active) {
    // Whatever is left (a grace period ran out, or a dropped connection) is given back.
    ipc::SlotDescriptor d;
    while (in.active->ring.try_pop(d)) {
      if (d.control == ipc::kControlNone) {
        release(d);
      }
    }
    in.active->ring.set_consumer_waiting(false);
    in.active.reset();
  }
  if (!in.next.empty()) {
    in.active = std::move(in.next.front());
    in.next.pop_front();
    in.ended = false;
    in.sticky_pending = options_.dynamic;
  }
}

void NodeRunner::expire_detaching() {
  if (!options_.dynamic) {
    return;
  }
  const auto now = Clock::now();
  for (auto& in : inputs_) {
    if (in.active && in.active->detaching && now >= in.active->deadline) {
      logger_->warn("input '{}': the old connection sent no detach marker in time; dropping it",
                    in.pin);
      advance(in);
    }
  }
}

Result<std::optional<NodeRunner::Received>> NodeRunner::receive() {
  if (stop_requested()) {
    return Status(ErrorCode::kCancelled, "stopped");
  }
  apply_pending_commands();
  expire_detaching();
  SKIT_RETURN_IF_ERROR(adopt_sticky_info());
  Received r;
  if (!pop_any(r.descriptor, r.index)) {
    if (retiring_ && !any_connection()) {
      return std::optional<Received>{};
    }
    wait_for_input();
    return std::optional<Received>{};
  }
  const ipc::SlotDescriptor& d = r.descriptor;
  Input& in = inputs_[r.index];
  if ((d.control & ipc::kControlDetach) != 0) {
    advance(in);
    return std::optional<Received>{};
  }
  if ((d.control & ipc::kControlEndOfStream) != 0) {
    if (!in.next.empty() || (in.active && in.active->detaching)) {
      advance(in);  // a connection that is being replaced ended: go on with the next one
      return std::optional<Received>{};
    }
    in.ended = true;
    if ((d.control & ipc::kControlError) != 0) {
      return Status(ErrorCode::kCancelled, "upstream of input '" + in.pin + "' failed");
    }
    r.end = true;
    return std::optional<Received>{r};
  }
  if (in.active && in.active->detaching && in.active->drop) {
    release(d);
    return std::optional<Received>{};
  }
  if ((d.flags & kFlagStreamInfo) != 0) {
    Status s = handle_stream_info(d, r.index);
    release(d);
    SKIT_RETURN_IF_ERROR(s);
    return std::optional<Received>{};
  }
  packets_in_.fetch_add(1, std::memory_order_relaxed);
  bytes_in_.fetch_add(d.size, std::memory_order_relaxed);
  if (d.pts_us >= 0 && d.pts_us + d.duration_us > media_time_us_.load(std::memory_order_relaxed)) {
    media_time_us_.store(d.pts_us + d.duration_us, std::memory_order_relaxed);
  }
  return std::optional<Received>{r};
}

Result<std::span<const std::byte>> NodeRunner::payload(const ipc::SlotDescriptor& d,
                                                       std::size_t index) {
  ipc::SlotPool* pool = pools_.find(d.pool);
  if (pool == nullptr || d.slot >= pool->slot_count() ||
      static_cast<std::uint64_t>(d.offset) + d.size > pool->slot_size()) {
    return Status(ErrorCode::kInternal,
                  "malformed descriptor on input '" + inputs_[index].pin + "'");
  }
  return std::span<const std::byte>(pool->slot_data(d.slot).subspan(d.offset, d.size));
}

Status NodeRunner::run_filter() {
  while (true) {
    if (all_inputs_ended()) {
      return Status::ok();
    }
    if (retiring_ && !any_connection()) {
      return Status::ok();
    }
    if (!options_.dynamic && inputs_.empty()) {
      return Status::ok();
    }
    auto received = receive();
    if (!received) {
      return received.status();
    }
    if (!*received) {
      continue;
    }
    const ipc::SlotDescriptor d = (*received)->descriptor;
    const std::size_t index = (*received)->index;
    if ((*received)->end) {
      NodeCall call(*this);
      SKIT_RETURN_IF_ERROR(node_->on_input_end(*this, index));
      continue;
    }
    auto data = payload(d, index);
    if (!data) {
      return data.status();
    }
    PacketView view;
    view.header.kind = static_cast<PacketKind>(d.kind);
    view.header.pts_us = d.pts_us;
    view.header.duration_us = d.duration_us;
    view.header.flags = d.flags;
    view.header.sample_rate = d.sample_rate;
    view.header.channels = d.channels;
    view.header.trim_start = d.trim_start;
    view.header.trim_end = d.trim_end;
    view.data = *data;
    view.sequence = d.sequence;
    view.input_index = index;
    view.forward_token = d.sequence + 1;
    current_ = d;
    Status s = [&] {
      NodeCall call(*this);
      return node_->process(*this, view);
    }();
    current_.slot = ipc::kNoSlot;
    release(d);
    SKIT_RETURN_IF_ERROR(s);
  }
}

Status NodeRunner::handle_stream_info(const ipc::SlotDescriptor& d, std::size_t index) {
  auto bytes = payload(d, index);
  if (!bytes) {
    return bytes.status();
  }
  auto info = StreamInfo::parse(*bytes);
  if (!info) {
    return info.status();
  }
  return apply_stream_info(*info, static_cast<PacketKind>(d.kind), index);
}

Status NodeRunner::apply_stream_info(const StreamInfo& info, PacketKind kind, std::size_t index) {
  if (inputs_[index].info && *inputs_[index].info == info) {
    return Status::ok();  // replayed to a new connection of the same stream: nothing changed
  }
  inputs_[index].info = info;
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    if (spec_.outputs[i].passthrough) {
      SKIT_RETURN_IF_ERROR(outputs_[i]->write_stream_info(info, kind));
    }
  }
  NodeCall call(*this);
  return node_->on_stream_info(*this, index, info);
}

Status NodeRunner::adopt_sticky_info() {
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    Input& in = inputs_[i];
    if (!in.sticky_pending) {
      continue;
    }
    in.sticky_pending = false;
    std::vector<std::byte> bytes;
    std::uint32_t kind = 0;
    if (!in.active || !in.active->ring.sticky(bytes, kind)) {
      continue;
    }
    auto info = StreamInfo::parse(bytes);
    if (info) {
      SKIT_RETURN_IF_ERROR(apply_stream_info(*info, static_cast<PacketKind>(kind), i));
    }
  }
  return Status::ok();
}

const StreamInfo* NodeRunner::input_info(std::size_t index) const {
  if (index >= inputs_.size() || !inputs_[index].info) {
    return nullptr;
  }
  return &*inputs_[index].info;
}

Result<std::size_t> NodeRunner::read_input(std::span<std::byte> buffer) {
  if (!spec_.pulls_input || (inputs_.empty() && !options_.dynamic)) {
    return Status(ErrorCode::kInternal, "read_input() is for pull-mode nodes");
  }
  KernelCall kernel(*this);
  while (!pull_packet_) {
    if (!inputs_.empty() && inputs_[0].ended && inputs_[0].next.empty()) {
      return std::size_t{0};
    }
    if (retiring_ && !any_connection()) {
      return std::size_t{0};
    }
    auto received = receive();
    if (!received) {
      return received.status();
    }
    if (!*received) {
      continue;
    }
    if ((*received)->end) {
      return std::size_t{0};
    }
    pull_packet_ = (*received)->descriptor;
    pull_offset_ = 0;
  }
  const ipc::SlotDescriptor& d = *pull_packet_;
  auto data = payload(d, 0);
  if (!data) {
    return data.status();
  }
  const auto bytes = data->subspan(pull_offset_);
  const std::size_t n = std::min(bytes.size(), buffer.size());
  std::memcpy(buffer.data(), bytes.data(), n);
  pull_offset_ += static_cast<std::uint32_t>(n);
  if (pull_offset_ >= d.size) {
    release(d);
    pull_packet_.reset();
  }
  return n;
}

void NodeRunner::drain_inputs() {
  if (pull_packet_) {
    release(*pull_packet_);
    pull_packet_.reset();
  }
  if (options_.dynamic) {
    // Live rings outlive this node; give back what is queued and stop reading them (the
    // supervisor detaches the producers).
    for (auto& in : inputs_) {
      while (in.active || !in.next.empty()) {
        advance(in);
        if (!in.active) {
          break;
        }
      }
    }
    return;
  }
  std::size_t open = 0;
  for (const auto& in : inputs_) {
    open += in.ended ? 0 : 1;
  }
  while (open > 0 && !stop_requested()) {
    ipc::SlotDescriptor d;
    std::size_t index = 0;
    if (!pop_any(d, index)) {
      wait_for_input();
      continue;
    }
    if ((d.control & ipc::kControlEndOfStream) != 0) {
      inputs_[index].ended = true;
      --open;
      continue;
    }
    release(d);
  }
}

bool NodeRunner::pop_any(ipc::SlotDescriptor& out, std::size_t& index) {
  const std::size_t n = inputs_.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (next_input_ + k) % n;
    Input& in = inputs_[i];
    if (in.ended || !in.active) {
      continue;
    }
    ipc::Ring& ring = in.active->ring;
    if (ring.try_pop(out)) {
      // Wake a producer blocked on a full ring once half of it has drained: it then refills
      // many slots per doorbell instead of one.
      if (ring.size() <= ring.capacity() / 2 && ring.take_producer_wakeup()) {
        doorbell_.ring(ring.producer_doorbell());
      }
      next_input_ = (i + 1) % n;
      index = i;
      return true;
    }
  }
  return false;
}

void NodeRunner::wait_for_input() {
  auto any_ready = [this] {
    for (const auto& in : inputs_) {
      if (!in.ended && in.active && !in.active->ring.empty()) {
        return true;
      }
    }
    return false;
  };
  if (options_.spin.count() > 0) {
    const auto spin_until = Clock::now() + options_.spin;
    std::uint32_t spins = 0;
    while ((++spins & 63U) != 0 || Clock::now() < spin_until) {
      if (any_ready() || stop_requested() || tune_pending_.load(std::memory_order_relaxed)) {
        return;
      }
      SKIT_CPU_RELAX();
    }
  }
  for (auto& in : inputs_) {
    if (!in.ended && in.active) {
      in.active->ring.set_consumer_waiting(true);
    }
  }
  if (!any_ready() && !stop_requested() && !tune_pending_.load(std::memory_order_acquire)) {
    flush_wakeups();
    doorbell_.wait(options_.idle_wait);
  }
  for (auto& in : inputs_) {
    if (!in.ended && in.active) {
      in.active->ring.set_consumer_waiting(false);
    }
  }
}

void NodeRunner::apply_pending_commands() {
  if (!tune_pending_.load(std::memory_order_acquire)) {
    return;
  }
  std::deque<PendingCommand> queue;
  {
    std::lock_guard lock(tune_mutex_);
    queue.swap(commands_);
    tune_pending_.store(false, std::memory_order_release);
  }
  while (!queue.empty()) {
    PendingCommand& c = queue.front();
    if (c.is_tune) {
      Status s = node_->tune(c.patch);
      if (!s.is_ok()) {
        logger_->warn("tune rejected: {}", s.to_string());
      }
      events_.tuned(spec_.node_id, c.op_id, s);
      if (c.op_id != 0) {
        doorbell_.ring(events_.wake_endpoint());
      }
    } else if (!apply_rewire(c.rewire)) {
      break;  // an output is mid-packet: retry at the next boundary, keeping the order
    }
    queue.pop_front();
  }
  if (!queue.empty()) {
    std::lock_guard lock(tune_mutex_);
    while (!queue.empty()) {
      commands_.push_front(std::move(queue.back()));
      queue.pop_back();
    }
    tune_pending_.store(true, std::memory_order_release);
  }
}

bool NodeRunner::apply_rewire(std::vector<RewireCommand>& commands) {
  for (const auto& c : commands) {
    const bool output_change = c.type == RewireCommand::Type::kAttachOutput ||
                               c.type == RewireCommand::Type::kDetachOutput;
    if (output_change) {
      for (const auto& out : outputs_) {
        if (out->loan_outstanding()) {
          return false;
        }
      }
    }
  }
  for (auto& c : commands) {
    switch (c.type) {
      case RewireCommand::Type::kAttachInput: {
        auto ring = ipc::Ring::attach(c.segment->data(), c.segment->size());
        if (!ring) {
          logger_->error("cannot attach input ring {}: {}", c.segment_name,
                         ring.status().to_string());
          break;
        }
        Connection conn;
        conn.name = c.segment_name;
        conn.segment = std::move(c.segment);
        conn.ring = *ring;
        attach_input(c.pin, std::move(conn));
        break;
      }
      case RewireCommand::Type::kDetachInput: {
        for (auto& in : inputs_) {
          auto mark = [&](Connection& conn) {
            if (conn.name == c.segment_name) {
              conn.detaching = true;
              conn.drop = c.drop;
              conn.deadline = Clock::now() + c.grace;
            }
          };
          if (in.active) {
            mark(*in.active);
          }
          for (auto& conn : in.next) {
            mark(conn);
          }
          if (in.active && in.active->detaching && c.grace.count() == 0) {
            advance(in);  // the producer is gone: nothing more will come
          }
        }
        break;
      }
      case RewireCommand::Type::kAttachOutput:
        for (auto& out : outputs_) {
          if (out->pin() == c.pin) {
            Status s = out->add_ring(c.segment_name, std::move(c.segment), /*replay=*/true);
            if (!s.is_ok()) {
              logger_->error("cannot attach output ring {}: {}", c.segment_name, s.to_string());
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

void NodeRunner::flush_wakeups() {
  for (auto& out : outputs_) {
    out->flush_wakeups();
  }
}

void NodeRunner::release(const ipc::SlotDescriptor& d) {
  if (d.slot == ipc::kNoSlot) {
    return;
  }
  ipc::SlotPool* pool = pools_.find(d.pool);
  if (pool != nullptr && pool->release(d.slot)) {
    doorbell_.ring(pool->owner_doorbell());
  }
}

}  // namespace skit::runtime
