// SPDX-License-Identifier: MPL-2.0
// The measured path: a producer writes a payload into a slot of the pool and pushes its
// descriptor; the consumer pops it, reads the payload and releases the slot.
#include <optional>
#include <stdexcept>
#include <vector>

#include "harness.hpp"

namespace skit::ring_bench {

void ring_producer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o) {
  SharedSegment pool_seg = open_segment(n.pool);
  SharedSegment ring_seg = open_segment(n.ring);
  SlotPool pool = must(SlotPool::attach(pool_seg.data(), pool_seg.size()), "attach pool");
  Ring ring = must(Ring::attach(ring_seg.data(), ring_seg.size()), "attach ring");
  std::optional<ipc::Doorbell> bell;
  if (mode == Mode::kRingSleepLatency) {
    bell.emplace(n.producer_bell);
    bell->bind();
  }
  const std::vector<std::byte> source = pattern(p.bytes);
  const std::size_t written = touched_bytes(p);
  std::uint64_t rings = 0;

  // Claims a slot and writes the payload into it (for a frame passed by reference: only the
  // first cache line, where a real producer would have rendered it in place).
  auto produce = [&](std::uint64_t seq) {
    std::uint32_t slot = 0;
    while (true) {
      if (auto s = pool.try_acquire()) {
        slot = *s;
        break;
      }
      SKIT_BENCH_RELAX();
    }
    std::byte* data = pool.slot_data(slot).data();
    std::memcpy(data, source.data(), written);
    std::memcpy(data, &seq, sizeof seq);
    SlotDescriptor d;
    d.slot = slot;
    d.size = static_cast<std::uint32_t>(p.bytes);
    d.sequence = seq;
    return d;
  };
  auto push = [&](const SlotDescriptor& d) {
    while (!ring.try_push(d)) {
      SKIT_BENCH_RELAX();
    }
    if (ring.take_consumer_wakeup()) {
      if (!bell) {
        throw std::runtime_error("the busy consumer went to sleep");
      }
      bell->ring(ring.consumer_doorbell());
      ++rings;
    }
  };
  auto stamp = [&](const SlotDescriptor& d) {
    const std::uint64_t t = now_ns();
    std::memcpy(pool.slot_data(d.slot).data() + 8, &t, sizeof t);
  };

  wait_flag(ctl.consumer_ready);
  if (bell) {
    // Only now: connecting to a doorbell that is not bound yet makes ZeroMQ retry after its
    // reconnect interval (100 ms), and the rings queued meanwhile arrive that late.
    bell->connect(ring.consumer_doorbell());
  }
  std::uint64_t seq = 0;
  const std::uint64_t t0 = now_ns();
  ctl.t_start_ns.store(t0, std::memory_order_release);
  if (mode == Mode::kRingThroughput) {
    const std::uint64_t deadline = t0 + o.budget_ms * 1000000ULL;
    const int batch = p.bytes >= 65536 && !p.by_reference ? 1 : 256;
    do {
      for (int k = 0; k < batch; ++k) {
        push(produce(seq++));
      }
    } while (now_ns() < deadline);
  } else if (mode == Mode::kRingBusyLatency) {
    const std::uint64_t deadline = t0 + o.budget_ms * 1000000ULL;
    while (true) {
      wait_acked(ctl, seq, true);
      const std::uint64_t next = now_ns() + o.busy_gap_ns;
      while (now_ns() < next) {
        SKIT_BENCH_RELAX();
      }
      if (next >= deadline) {
        break;
      }
      const SlotDescriptor d = produce(seq++);
      stamp(d);
      push(d);
    }
  } else {  // kRingSleepLatency
    for (std::uint32_t i = 0; i < o.sleep_samples; ++i) {
      wait_acked(ctl, seq, false);
      sleep_ns(o.sleep_gap_ns);
      const SlotDescriptor d = produce(seq++);
      stamp(d);
      push(d);
    }
  }
  ctl.sent.store(seq, std::memory_order_relaxed);
  SlotDescriptor eos;
  eos.control = ipc::kControlEndOfStream;
  eos.sequence = seq;
  push(eos);
  ctl.rings.store(rings, std::memory_order_relaxed);
  wait_flag(ctl.consumer_done);  // keep the doorbell open until the consumer has drained
}

void ring_consumer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o) {
  SharedSegment pool_seg = open_segment(n.pool);
  SharedSegment ring_seg = open_segment(n.ring);
  SlotPool pool = must(SlotPool::attach(pool_seg.data(), pool_seg.size()), "attach pool");
  Ring ring = must(Ring::attach(ring_seg.data(), ring_seg.size()), "attach ring");
  const bool sleeping = mode == Mode::kRingSleepLatency;
  std::optional<ipc::Doorbell> bell;
  if (sleeping) {
    bell.emplace(n.consumer_bell);
    bell->bind();
    bell->connect(pool.owner_doorbell());
  }
  std::vector<std::uint64_t> lat;
  if (is_latency(mode)) {
    lat.reserve(sleeping ? o.sleep_samples : o.budget_ms * 1000000ULL / o.busy_gap_ns + 16);
  }
  const std::size_t read_bytes = touched_bytes(p);
  WindowMarks marks(ctl, o, p.bytes, !p.by_reference);
  const bool throughput = mode == Mode::kRingThroughput;
  std::uint64_t expected = 0;
  std::uint64_t received = 0;
  std::uint64_t errors = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t sink = 0;
  std::uint64_t t_end = 0;
  ctl.consumer_ready.store(1, std::memory_order_release);

  while (true) {
    SlotDescriptor d;
    if (!ring.try_pop(d)) {
      if (!sleeping) {
        SKIT_BENCH_RELAX();
        continue;
      }
      // The runtime's sleep handshake (NodeRunner::wait_for_input), without its spin phase.
      ring.set_consumer_waiting(true);
      if (ring.empty()) {
        if (!bell->wait(std::chrono::milliseconds(100))) {
          ++timeouts;
        }
      }
      ring.set_consumer_waiting(false);
      continue;
    }
    const std::uint64_t t1 = now_ns();
    if (ring.take_producer_wakeup()) {
      throw std::runtime_error("the producer went to sleep");
    }
    if ((d.control & ipc::kControlEndOfStream) != 0) {
      t_end = t1;
      break;
    }
    const std::byte* data = pool.slot_data(d.slot).data();
    std::uint64_t header[2];
    std::memcpy(header, data, sizeof header);
    if (d.sequence != expected || header[0] != expected || d.size != p.bytes) {
      ++errors;
    }
    expected = d.sequence + 1;
    if (is_latency(mode)) {
      lat.push_back(t1 - header[1]);
    }
    sink += read_words(data + kHeaderBytes, read_bytes - kHeaderBytes);
    if (pool.release(d.slot)) {
      if (!bell) {
        throw std::runtime_error("the busy producer went to sleep on the pool");
      }
      bell->ring(pool.owner_doorbell());
    }
    ++received;
    if (throughput) {
      marks.on_message(received);
    } else {
      ctl.acked.store(received, std::memory_order_release);
    }
  }
  keep(sink);
  ctl.received = received;
  ctl.t_end_ns = t_end;
  ctl.errors = errors;
  ctl.timeouts = timeouts;
  record_latencies(ctl, lat);
  ctl.consumer_done.store(1, std::memory_order_release);
}

}  // namespace skit::ring_bench
