// SPDX-License-Identifier: MPL-2.0
// skit_ring_bench: one hop through a shared-memory descriptor ring between two processes,
// measured beside a plain in-process memcpy and a ZeroMQ-only ipc:// PUSH/PULL baseline in the
// same run. Prints a table and a final one-line summary starting with "ring:".
//
// How a case runs: the parent plays the supervisor. It creates the segments (slot pool, ring,
// control block) under "skit-<pid>-bench<N>-..." names, then forks a consumer and a producer.
// Each child opens the segments by name and attaches, as a worker does, runs its side and
// writes its figures into the control block. The parent never creates a ZeroMQ context, so
// every child starts with a fresh one (a ZeroMQ context does not survive fork()).
//
// Usage: skit_ring_bench [--budget-ms N] [--samples N] [--no-pin]

#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/layout.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SKIT_BENCH_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define SKIT_BENCH_RELAX() asm volatile("yield" ::: "memory")
#else
#define SKIT_BENCH_RELAX() ((void)0)
#endif

namespace {

namespace ipc = skit::ipc;
using ipc::Ring;
using ipc::SharedSegment;
using ipc::SlotDescriptor;
using ipc::SlotPool;

// --- configuration --------------------------------------------------------------------------

// The ring and pool are sized as the supervisor sizes them by default: RunOptions::ring_capacity
// = 32 and, for one consumer, ring_capacity + consumers + 2 slots.
constexpr std::uint32_t kRingCapacity = 32;
constexpr std::uint32_t kSlotCount = kRingCapacity + 1 + 2;
constexpr std::size_t kLine = ipc::kCacheLine;
constexpr std::size_t kHeaderBytes = 16;           // payload starts with {sequence, send time ns}
constexpr unsigned kChildTimeoutS = 30;            // watchdog: a hung child is killed by SIGALRM
constexpr std::size_t kZmqQueueBytes = 64U << 20;  // cap of ZeroMQ's queued payload (HWM)
constexpr std::uint32_t kWindows = 10;  // a throughput case is cut into windows; median rate
constexpr std::uint32_t kMaxMarks = 64;

struct Payload {
  const char* name;
  std::size_t bytes;
  bool by_reference;  // write/read only the first cache line: the frame is passed by reference
};

constexpr std::array<Payload, 3> kPayloads{{
    {"64 B", 64, false},
    {"3840 B", 3840, false},    // 20 ms of stereo s16 at 48 kHz
    {"1.4 MB", 1382400, true},  // one 1280x720 I420 frame
}};
constexpr Payload kFrameFullTouch{"1.4 MB", 1382400, false};

struct Options {
  std::uint64_t budget_ms = 1000;       // per throughput case and per busy-latency case
  std::uint32_t sleep_samples = 5000;   // per sleeping-consumer and ZeroMQ latency case
  std::uint64_t busy_gap_ns = 20000;    // gap between latency probes, busy consumer
  std::uint64_t sleep_gap_ns = 200000;  // gap between latency probes, sleeping consumer
  bool pin = true;
};

enum class Mode {
  kRingThroughput,
  kRingBusyLatency,
  kRingSleepLatency,
  kZmqThroughput,
  kZmqLatency
};

bool is_latency(Mode m) {
  return m == Mode::kRingBusyLatency || m == Mode::kRingSleepLatency || m == Mode::kZmqLatency;
}
bool is_zmq(Mode m) {
  return m == Mode::kZmqThroughput || m == Mode::kZmqLatency;
}

// --- small helpers --------------------------------------------------------------------------

std::uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

void sleep_ns(std::uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000ULL), static_cast<long>(ns % 1000000000ULL)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
  }
}

/// Keeps the compiler from dropping a store or a computation whose result is unused.
template <class T>
void keep(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

/// Reads `bytes` (a multiple of 8) and folds them, so the consumer really touches the payload.
std::uint64_t read_words(const std::byte* data, std::size_t bytes) {
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i + 8 <= bytes; i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, data + i, 8);
    acc ^= w + i;
  }
  return acc;
}

std::size_t touched_bytes(const Payload& p) {
  return p.by_reference ? kLine : p.bytes;
}

std::vector<std::byte> pattern(std::size_t bytes) {
  std::vector<std::byte> out(bytes);
  for (std::size_t i = 0; i < bytes; ++i) {
    out[i] = static_cast<std::byte>((i * 131U + 7U) & 0xFFU);
  }
  return out;
}

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) {
    throw std::runtime_error(std::string("sched_setaffinity: ") + std::strerror(errno));
  }
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &set)) {
        out.push_back(i);
      }
    }
  }
  return out;
}

template <class T>
T must(skit::Result<T> result, const char* what) {
  if (!result) {
    throw std::runtime_error(std::string(what) + ": " + result.status().to_string());
  }
  return std::move(result).value();
}

// --- the control block shared by the parent and both children -------------------------------

struct Control {
  alignas(64) std::atomic<std::uint32_t> consumer_ready;  // consumer attached/bound
  std::atomic<std::uint32_t> consumer_warm;               // ZeroMQ: first message arrived
  alignas(64) std::atomic<std::uint32_t> consumer_done;
  alignas(64) std::atomic<std::uint64_t> t_start_ns;  // producer: first timed message
  std::atomic<std::uint64_t> sent;                    // producer: timed messages pushed
  std::atomic<std::uint64_t> rings;                   // producer: doorbells rung
  // Latency cases: probes the consumer has finished with. A probe is sent only once the
  // previous one is done, so no probe ever waits behind another in a queue.
  alignas(64) std::atomic<std::uint64_t> acked;
  // Written by the consumer before consumer_done; read by the parent after both exited.
  std::uint64_t received;
  std::uint64_t t_end_ns;
  std::uint64_t errors;    // sequence or payload mismatches
  std::uint64_t timeouts;  // doorbell waits that ended without a ring
  std::uint64_t samples;
  double min_us, p50_us, p99_us, p999_us, max_us;
  std::uint32_t marks;  // throughput: (time, messages received) at each window boundary
  std::uint64_t mark_ns[kMaxMarks];
  std::uint64_t mark_count[kMaxMarks];
  // Index 0: producer, 1: consumer.
  std::int64_t preempted[2];  // involuntary context switches over the child's life
  char error[2][200];
};

/// Consumer side of a throughput case: notes (time, count) every window so that the parent
/// can report the median window rate, which a burst of unrelated load on the machine disturbs
/// less than the overall rate.
class WindowMarks {
 public:
  WindowMarks(Control& ctl, const Options& o, std::size_t payload_bytes, bool touch_all)
      : ctl_(ctl),
        window_ns_(o.budget_ms * 1000000ULL / kWindows),
        check_mask_(payload_bytes >= 65536 && touch_all ? 0 : 255) {}

  void on_message(std::uint64_t count) {
    if ((count & check_mask_) != 0 && count != 1) {
      return;
    }
    const std::uint64_t t = now_ns();
    if (t < next_ || ctl_.marks >= kMaxMarks) {
      return;
    }
    ctl_.mark_ns[ctl_.marks] = t;
    ctl_.mark_count[ctl_.marks] = count;
    ++ctl_.marks;
    next_ = t + window_ns_;
  }

 private:
  Control& ctl_;
  std::uint64_t window_ns_;
  std::uint64_t check_mask_;
  std::uint64_t next_ = 0;
};

std::int64_t involuntary_switches() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nivcsw;
}

void wait_flag(const std::atomic<std::uint32_t>& flag) {
  while (flag.load(std::memory_order_acquire) == 0) {
    sleep_ns(50000);
  }
}

/// Latency probes: waits until the consumer has finished with probe `seq - 1`.
void wait_acked(const Control& ctl, std::uint64_t seq, bool spin) {
  while (ctl.acked.load(std::memory_order_acquire) < seq) {
    if (spin) {
      SKIT_BENCH_RELAX();
    } else {
      sleep_ns(20000);
    }
  }
}

struct Names {
  std::string pool, ring, control, producer_bell, consumer_bell, zmq;
};

Names names_for(int case_no) {
  const std::string run = std::to_string(::getpid()) + "-bench" + std::to_string(case_no);
  return {"skit-" + run + "-pool",
          "skit-" + run + "-ring",
          "skit-" + run + "-ctl",
          ipc::doorbell_endpoint(run, "producer"),
          ipc::doorbell_endpoint(run, "consumer"),
          "ipc://@skit-" + run + "-zmq"};
}

SharedSegment open_segment(const std::string& name) {
  return must(SharedSegment::open(name), "open segment");
}

void record_latencies(Control& ctl, std::vector<std::uint64_t>& lat) {
  // The first probes pay for page faults and cold caches: drop them.
  const std::size_t warm = std::min<std::size_t>(100, lat.size() / 10);
  lat.erase(lat.begin(), lat.begin() + static_cast<std::ptrdiff_t>(warm));
  ctl.samples = lat.size();
  if (lat.empty()) {
    return;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) {
    const auto idx = static_cast<std::size_t>(std::ceil(q * static_cast<double>(lat.size()))) - 1;
    return static_cast<double>(lat[std::min(idx, lat.size() - 1)]) / 1000.0;
  };
  ctl.min_us = static_cast<double>(lat.front()) / 1000.0;
  ctl.p50_us = pct(0.50);
  ctl.p99_us = pct(0.99);
  ctl.p999_us = pct(0.999);
  ctl.max_us = static_cast<double>(lat.back()) / 1000.0;
}

// --- ring producer / consumer -----------------------------------------------------------------

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

// --- ZeroMQ baseline --------------------------------------------------------------------------

int zmq_hwm(const Payload& p) {
  return static_cast<int>(std::clamp<std::size_t>(kZmqQueueBytes / p.bytes, 32, 1000));
}

void zmq_producer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::push);
  socket.set(zmq::sockopt::sndhwm, zmq_hwm(p));
  socket.set(zmq::sockopt::linger, 2000);
  wait_flag(ctl.consumer_ready);
  socket.connect(n.zmq);
  std::vector<std::byte> source = pattern(p.bytes);
  // Warm-up: one-byte messages until the consumer has seen one (the connection is up).
  const std::byte one{1};
  while (ctl.consumer_warm.load(std::memory_order_acquire) == 0) {
    socket.send(zmq::const_buffer(&one, 1), zmq::send_flags::none);
    sleep_ns(1000000);
  }
  // zmq_send copies the buffer into a new message: that copy is the producer's write.
  auto send = [&](std::uint64_t seq, bool stamp) {
    std::memcpy(source.data(), &seq, sizeof seq);
    if (stamp) {
      const std::uint64_t t = now_ns();
      std::memcpy(source.data() + 8, &t, sizeof t);
    }
    socket.send(zmq::const_buffer(source.data(), source.size()), zmq::send_flags::none);
  };
  std::uint64_t seq = 0;
  const std::uint64_t t0 = now_ns();
  ctl.t_start_ns.store(t0, std::memory_order_release);
  if (mode == Mode::kZmqThroughput) {
    const std::uint64_t deadline = t0 + o.budget_ms * 1000000ULL;
    const int batch = p.bytes >= 65536 ? 1 : 256;
    do {
      for (int k = 0; k < batch; ++k) {
        send(seq++, false);
      }
    } while (now_ns() < deadline);
  } else {
    for (std::uint32_t i = 0; i < o.sleep_samples; ++i) {
      wait_acked(ctl, seq, false);
      sleep_ns(o.sleep_gap_ns);
      send(seq++, true);
    }
  }
  ctl.sent.store(seq, std::memory_order_relaxed);
  socket.send(zmq::const_buffer(nullptr, 0), zmq::send_flags::none);  // end of stream
  wait_flag(ctl.consumer_done);
}

void zmq_consumer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::pull);
  socket.set(zmq::sockopt::rcvhwm, zmq_hwm(p));
  socket.set(zmq::sockopt::linger, 0);
  socket.bind(n.zmq);
  std::vector<std::uint64_t> lat;
  if (mode == Mode::kZmqLatency) {
    lat.reserve(o.sleep_samples);
  }
  const std::size_t read_bytes = touched_bytes(p);
  WindowMarks marks(ctl, o, p.bytes, true);
  std::uint64_t expected = 0;
  std::uint64_t received = 0;
  std::uint64_t errors = 0;
  std::uint64_t sink = 0;
  std::uint64_t t_end = 0;
  ctl.consumer_ready.store(1, std::memory_order_release);
  zmq::message_t msg;
  while (true) {
    if (!socket.recv(msg, zmq::recv_flags::none)) {
      continue;
    }
    const std::uint64_t t1 = now_ns();
    if (msg.size() == 0) {
      t_end = t1;
      break;
    }
    if (msg.size() == 1) {  // warm-up
      ctl.consumer_warm.store(1, std::memory_order_release);
      continue;
    }
    const auto* data = static_cast<const std::byte*>(msg.data());
    std::uint64_t header[2];
    std::memcpy(header, data, sizeof header);
    if (header[0] != expected || msg.size() != p.bytes) {
      ++errors;
    }
    expected = header[0] + 1;
    if (mode == Mode::kZmqLatency) {
      lat.push_back(t1 - header[1]);
    }
    sink += read_words(data + kHeaderBytes, read_bytes - kHeaderBytes);
    ++received;
    if (mode == Mode::kZmqThroughput) {
      marks.on_message(received);
    } else {
      ctl.acked.store(received, std::memory_order_release);
    }
  }
  keep(sink);
  ctl.received = received;
  ctl.t_end_ns = t_end;
  ctl.errors = errors;
  record_latencies(ctl, lat);
  ctl.consumer_done.store(1, std::memory_order_release);
}

// --- parent: running one case -------------------------------------------------------------------

struct CaseResult {
  bool ok = false;
  std::string error;
  std::uint64_t messages = 0;
  double msgs_per_s = 0;
  double gbytes_per_s = 0;
  std::uint64_t samples = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  double overall_msgs_per_s = 0;  // whole budget, disturbances included
  std::uint64_t rings = 0, timeouts = 0;
  std::int64_t preempted = -1;  // busy cases only: involuntary context switches of both
  double c2c_ns = -1;           // busy cases only: CPU-to-CPU cache line just before the case
};

/// Median rate over the full windows a consumer marked; the overall rate if there are few.
double median_window_rate(const Control& ctl, double overall) {
  std::vector<double> rates;
  for (std::uint32_t i = 1; i < ctl.marks; ++i) {
    const auto dt = static_cast<double>(ctl.mark_ns[i] - ctl.mark_ns[i - 1]) / 1e9;
    if (dt > 0) {
      rates.push_back(static_cast<double>(ctl.mark_count[i] - ctl.mark_count[i - 1]) / dt);
    }
  }
  if (rates.size() < 3) {
    return overall;
  }
  std::sort(rates.begin(), rates.end());
  return rates.size() % 2 == 1 ? rates[rates.size() / 2]
                               : (rates[rates.size() / 2 - 1] + rates[rates.size() / 2]) / 2;
}

pid_t spawn(const std::function<void()>& body, Control& ctl, int role, int cpu) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid != 0) {
    return pid;
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::alarm(kChildTimeoutS);
  int rc = 0;
  try {
    if (cpu >= 0) {
      pin_to(cpu);
    }
    body();
    ctl.preempted[role] = involuntary_switches();
  } catch (const std::exception& e) {
    std::snprintf(ctl.error[role], sizeof ctl.error[role], "%s", e.what());
    rc = 1;
  }
  std::fflush(nullptr);
  ::_exit(rc);  // no destructors: the segments belong to the parent
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return sig == SIGALRM ? std::string("timed out") : "killed by signal " + std::to_string(sig);
  }
  return "exit code " + std::to_string(WEXITSTATUS(status));
}

double core_to_core_ns(const std::vector<int>& cpus);

CaseResult run_case(int case_no, Mode mode, const Payload& p, const Options& o,
                    const std::vector<int>& cpus) {
  CaseResult r;
  const Names n = names_for(case_no);
  // Let deferred kernel work of the previous case (exited processes, freed segments) finish
  // before the next case starts.
  sleep_ns(100000000ULL);
  auto ctl_seg = SharedSegment::create(n.control, sizeof(Control));
  if (!ctl_seg) {
    r.error = ctl_seg.status().to_string();
    return r;
  }
  auto* ctl = new (ctl_seg->data()) Control{};
  std::optional<SharedSegment> pool_seg;
  std::optional<SharedSegment> ring_seg;
  if (!is_zmq(mode)) {
    auto ps = SharedSegment::create(
        n.pool, SlotPool::bytes_for(kSlotCount, static_cast<std::uint32_t>(p.bytes)));
    auto rs = SharedSegment::create(n.ring, Ring::bytes_for(kRingCapacity));
    if (!ps || !rs) {
      r.error = !ps ? ps.status().to_string() : rs.status().to_string();
      return r;
    }
    pool_seg.emplace(std::move(ps).value());
    ring_seg.emplace(std::move(rs).value());
    SlotPool::init(pool_seg->data(), pool_seg->size(), kSlotCount,
                   static_cast<std::uint32_t>(p.bytes), n.producer_bell);
    Ring::init(ring_seg->data(), ring_seg->size(), kRingCapacity, skit::ConnectionMode::kReliable,
               n.producer_bell, n.consumer_bell);
  }
  // Busy cases pin producer and consumer to different CPUs; the others let the scheduler place
  // them and ZeroMQ's I/O threads.
  const bool pin = o.pin && cpus.size() >= 2 &&
                   (mode == Mode::kRingThroughput || mode == Mode::kRingBusyLatency);
  const int producer_cpu = pin ? cpus[0] : -1;
  const int consumer_cpu = pin ? cpus[1] : -1;
  if (pin) {
    r.c2c_ns = core_to_core_ns(cpus);
  }

  auto consumer = [&] {
    if (is_zmq(mode)) {
      zmq_consumer(n, *ctl, mode, p, o);
    } else {
      ring_consumer(n, *ctl, mode, p, o);
    }
  };
  auto producer = [&] {
    if (is_zmq(mode)) {
      zmq_producer(n, *ctl, mode, p, o);
    } else {
      ring_producer(n, *ctl, mode, p, o);
    }
  };
  std::array<pid_t, 2> pids{spawn(producer, *ctl, 0, producer_cpu),
                            spawn(consumer, *ctl, 1, consumer_cpu)};
  std::array<bool, 2> running{pids[0] > 0, pids[1] > 0};
  if (!running[0] || !running[1]) {
    r.error = std::string("fork: ") + std::strerror(errno);
  }
  while (running[0] || running[1]) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (pid != pids[i] || !running[i]) {
        continue;
      }
      running[i] = false;
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && r.error.empty()) {
        r.error = std::string(i == 0 ? "producer: " : "consumer: ") +
                  (ctl->error[i][0] != 0 ? std::string(ctl->error[i]) : describe_exit(status));
        const int other = 1 - i;
        if (running[other]) {
          ::kill(pids[other], SIGKILL);  // its peer is gone; it would only wait for the watchdog
        }
      }
    }
  }
  if (!r.error.empty()) {
    return r;
  }
  const std::uint64_t sent = ctl->sent.load();
  if (ctl->received != sent || ctl->errors != 0) {
    r.error = "sent " + std::to_string(sent) + ", received " + std::to_string(ctl->received) +
              ", " + std::to_string(ctl->errors) + " out of sequence or malformed";
    return r;
  }
  r.ok = true;
  r.messages = ctl->received;
  const double seconds = static_cast<double>(ctl->t_end_ns - ctl->t_start_ns.load()) / 1e9;
  r.overall_msgs_per_s = seconds > 0 ? static_cast<double>(r.messages) / seconds : 0;
  r.msgs_per_s = mode == Mode::kRingThroughput || mode == Mode::kZmqThroughput
                     ? median_window_rate(*ctl, r.overall_msgs_per_s)
                     : r.overall_msgs_per_s;
  r.gbytes_per_s = r.msgs_per_s * static_cast<double>(p.bytes) / 1e9;
  r.samples = ctl->samples;
  r.p50_us = ctl->p50_us;
  r.p99_us = ctl->p99_us;
  r.p999_us = ctl->p999_us;
  r.max_us = ctl->max_us;
  r.rings = ctl->rings.load();
  r.timeouts = ctl->timeouts;
  if (mode == Mode::kRingThroughput || mode == Mode::kRingBusyLatency) {
    // Both spin on their own CPU: every involuntary switch is another task taking the CPU.
    // (In the sleeping and ZeroMQ cases the processes' own threads preempt one another.)
    r.preempted = ctl->preempted[0] + ctl->preempted[1];
  }
  return r;
}

// In-process baseline: copy the payload into one of kSlotCount slot-sized buffers in turn, as a
// producer would if it copied into the pool instead of writing in place.
/// Cost of moving one cache line from one CPU to the other: two processes pinned to `cpus[0]`
/// and `cpus[1]` bounce a counter; half the median round trip (batches of 1000), in ns. On a
/// VM this depends on where the host runs the two vCPUs and can change during a run, so it is
/// measured before and after the cases. Returns a negative value if it cannot be measured.
double core_to_core_ns(const std::vector<int>& cpus) {
  if (cpus.size() < 2) {
    return -1;
  }
  constexpr int kBatches = 40;
  constexpr std::uint64_t kRounds = 1000;
  struct PingPong {
    alignas(64) std::atomic<std::uint64_t> ball;
    alignas(64) std::array<std::uint64_t, kBatches> batch_ns;
  };
  const std::string name = "skit-" + std::to_string(::getpid()) + "-bench-c2c";
  auto seg = SharedSegment::create(name, sizeof(PingPong));
  if (!seg) {
    return -1;
  }
  auto* pp = new (seg->data()) PingPong{};
  std::array<pid_t, 2> pids{};
  for (int side = 0; side < 2; ++side) {
    std::fflush(nullptr);
    pids[side] = ::fork();
    if (pids[side] == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::alarm(kChildTimeoutS);
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpus[side], &set);
      ::sched_setaffinity(0, sizeof(set), &set);
      // Side 0 serves odd values, side 1 answers with the next even one.
      std::uint64_t v = side == 0 ? 1 : 2;
      for (int b = 0; b < kBatches; ++b) {
        const std::uint64_t t0 = now_ns();
        for (std::uint64_t i = 0; i < kRounds; ++i, v += 2) {
          if (side == 0) {
            pp->ball.store(v, std::memory_order_release);
          }
          while (pp->ball.load(std::memory_order_acquire) != (side == 0 ? v + 1 : v - 1)) {
            SKIT_BENCH_RELAX();
          }
          if (side == 1) {
            pp->ball.store(v, std::memory_order_release);
          }
        }
        if (side == 0) {
          pp->batch_ns[static_cast<std::size_t>(b)] = now_ns() - t0;
        }
      }
      ::_exit(0);
    }
  }
  bool ok = true;
  for (const pid_t pid : pids) {
    int status = 0;
    ok = ok && pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
  }
  if (!ok) {
    return -1;
  }
  std::array<std::uint64_t, kBatches> batches = pp->batch_ns;
  std::sort(batches.begin(), batches.end());
  return static_cast<double>(batches[kBatches / 2]) / static_cast<double>(kRounds) / 2.0;
}

CaseResult memcpy_case(const Payload& p, const Options& o) {
  const std::size_t stride = (p.bytes + kLine - 1) / kLine * kLine;
  const std::vector<std::byte> source = pattern(p.bytes);
  std::vector<std::byte> slots(stride * kSlotCount);
  for (std::uint32_t i = 0; i < kSlotCount; ++i) {  // fault the pages in
    std::memcpy(slots.data() + i * stride, source.data(), p.bytes);
  }
  const int batch = p.bytes >= 65536 ? 1 : 1024;
  std::uint64_t count = 0;
  std::uint32_t slot = 0;
  const std::uint64_t t0 = now_ns();
  const std::uint64_t deadline = t0 + o.budget_ms * 1000000ULL / 2;
  std::uint64_t t1 = 0;
  do {
    for (int k = 0; k < batch; ++k) {
      std::byte* dst = slots.data() + static_cast<std::size_t>(slot) * stride;
      std::memcpy(dst, source.data(), p.bytes);
      keep(dst);
      slot = slot + 1 == kSlotCount ? 0 : slot + 1;
    }
    count += static_cast<std::uint64_t>(batch);
    t1 = now_ns();
  } while (t1 < deadline);
  CaseResult r;
  r.ok = true;
  r.messages = count;
  r.msgs_per_s = static_cast<double>(count) / (static_cast<double>(t1 - t0) / 1e9);
  r.gbytes_per_s = r.msgs_per_s * static_cast<double>(p.bytes) / 1e9;
  return r;
}

// --- reporting ---------------------------------------------------------------------------------

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::string model = "unknown";
  std::string family;
  std::string number;
  while (std::getline(in, line)) {
    auto value = [&] {
      const auto colon = line.find(':');
      return colon == std::string::npos ? std::string() : line.substr(colon + 2);
    };
    if (line.rfind("model name", 0) == 0) {
      model = value();
    } else if (line.rfind("cpu family", 0) == 0) {
      family = value();
    } else if (line.rfind("model\t", 0) == 0) {
      number = value();
    }
    if (line.empty() && model != "unknown") {
      break;
    }
  }
  return model + " (family " + family + ", model " + number + ")";
}

std::string si(double v) {
  char buf[32];
  if (v >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

std::string us(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.2f" : (v < 100 ? "%.1f" : "%.0f"), v);
  return buf;
}

struct Row {
  std::string what;
  const Payload* payload;
  const CaseResult* thr;  // may be null
  const CaseResult* lat;  // may be null
  std::string note;
};

void print_row(const Row& row) {
  std::string msgs = "-", gbs = "-", p50 = "-", p99 = "-", p999 = "-";
  std::string note = row.note;
  auto fail = [&](const CaseResult* c) {
    if (c != nullptr && !c->ok) {
      note = "FAILED: " + c->error;
      return true;
    }
    return false;
  };
  std::string preempted = "-";
  std::int64_t switches = -1;
  auto add_switches = [&](const CaseResult* c) {
    if (c->preempted >= 0) {
      switches = std::max<std::int64_t>(switches, 0) + c->preempted;
    }
  };
  if (row.thr != nullptr && !fail(row.thr)) {
    msgs = si(row.thr->msgs_per_s);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", row.thr->gbytes_per_s);
    gbs = buf;
    if (row.thr->overall_msgs_per_s > 0 &&
        std::abs(row.thr->overall_msgs_per_s / row.thr->msgs_per_s - 1.0) > 0.1) {
      note += "; overall " + si(row.thr->overall_msgs_per_s) + "/s";
    }
    add_switches(row.thr);
  }
  if (row.lat != nullptr && !fail(row.lat)) {
    p50 = us(row.lat->p50_us);
    p99 = us(row.lat->p99_us);
    p999 = us(row.lat->p999_us);
    add_switches(row.lat);
  }
  if (switches >= 0) {
    preempted = std::to_string(switches);
  }
  std::string c2c;
  for (const CaseResult* c : {row.thr, row.lat}) {
    if (c != nullptr && c->ok && c->c2c_ns >= 0) {
      c2c += (c2c.empty() ? "" : "/") + std::to_string(std::lround(c->c2c_ns));
    }
  }
  if (!c2c.empty()) {
    note += "; c2c " + c2c + " ns";
  }
  std::printf("%-34s %-7s %9s %8s %9s %9s %9s %8s  %s\n", row.what.c_str(), row.payload->name,
              msgs.c_str(), gbs.c_str(), p50.c_str(), p99.c_str(), p999.c_str(), preempted.c_str(),
              note.c_str());
}

/// CPU time of the whole machine (/proc/stat) and of this process and its reaped children,
/// to tell how much other processes used while the benchmark ran.
struct CpuSample {
  double total_s = 0;  // all CPUs, all states
  double busy_s = 0;   // all CPUs, not idle/iowait
  double ours_s = 0;   // this process and its children

  static CpuSample take() {
    CpuSample c;
    std::ifstream in("/proc/stat");
    std::string cpu;
    std::uint64_t v[8] = {};
    in >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
    std::uint64_t total = 0;
    for (auto x : v) {
      total += x;
    }
    const auto hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    c.total_s = static_cast<double>(total) / hz;
    c.busy_s = static_cast<double>(total - v[3] - v[4]) / hz;
    for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
      rusage ru{};
      ::getrusage(who, &ru);
      c.ours_s += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                  static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }
    return c;
  }
  /// Share of all CPU time since `before` that went to other processes.
  [[nodiscard]] double others_since(const CpuSample& before) const {
    const double total = total_s - before.total_s;
    const double others = (busy_s - before.busy_s) - (ours_s - before.ours_s);
    return total > 0 ? std::clamp(others / total, 0.0, 1.0) : 0.0;
  }
};

void usage() {
  std::fprintf(stderr,
               "usage: skit_ring_bench [--budget-ms N] [--samples N] [--no-pin]\n"
               "  --budget-ms N  time per throughput and busy-latency case (default 1000)\n"
               "  --samples N    probes per sleeping-consumer and ZeroMQ latency case "
               "(default 5000, one per 200 us)\n"
               "  --no-pin       do not pin the busy producer and consumer to CPUs\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--budget-ms" && i + 1 < argc) {
      o.budget_ms = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--samples" && i + 1 < argc) {
      o.sleep_samples = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else if (arg == "--no-pin") {
      o.pin = false;
    } else {
      usage();
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  if (o.budget_ms == 0 || o.sleep_samples == 0) {
    usage();
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  const std::vector<int> cpus = allowed_cpus();
  const bool pinned = o.pin && cpus.size() >= 2;
  utsname uts{};
  ::uname(&uts);
  const CpuSample idle_start = CpuSample::take();
  sleep_ns(500000000ULL);
  const double background = CpuSample::take().others_since(idle_start);
  const double c2c_before = core_to_core_ns(cpus);
  std::printf("skit_ring_bench: one ring hop between two processes\n");
  std::printf(
      "machine : %s, %ld CPUs online, %zu allowed, kernel %s, clocksource %s\n",
      cpu_model().c_str(), ::sysconf(_SC_NPROCESSORS_ONLN), cpus.size(), uts.release,
      read_first_line("/sys/devices/system/clocksource/clocksource0/current_clocksource").c_str());
  if (c2c_before >= 0) {
    std::printf(
        "c2c     : one cache line from CPU %d to CPU %d takes %.0f ns (half a ping-pong round "
        "trip; on a VM it depends on\n          where the host runs the vCPUs)\n",
        cpus[0], cpus[1], c2c_before);
  }
  std::printf("load    : other processes used %.0f%% of the CPUs in the 0.5 s before the run%s\n",
              background * 100,
              background > 0.05 ? "  WARNING: the machine is busy, figures will be noisy" : "");
  std::printf(
      "setup   : ring capacity %u, pool of %u slots (supervisor defaults); busy cases %s;"
      " sleeping/ZeroMQ cases unpinned\n",
      kRingCapacity, kSlotCount,
      pinned ? ("pin producer to CPU " + std::to_string(cpus[0]) + ", consumer to CPU " +
                std::to_string(cpus[1]))
                   .c_str()
             : "unpinned");
  std::printf("budget  : %" PRIu64 " ms per throughput/busy case, %u probes every %" PRIu64
              " us per sleeping/ZeroMQ latency case\n\n",
              o.budget_ms, o.sleep_samples, o.sleep_gap_ns / 1000);

  struct PerSize {
    CaseResult mem, ring_thr, ring_busy, ring_sleep, zmq_thr, zmq_lat;
  };
  std::array<PerSize, kPayloads.size()> res;
  CaseResult frame_full;
  int case_no = 0;
  const std::uint64_t started = now_ns();
  const CpuSample run_start = CpuSample::take();
  for (std::size_t i = 0; i < kPayloads.size(); ++i) {
    const Payload& p = kPayloads[i];
    if (::isatty(STDERR_FILENO) != 0) {
      std::fprintf(stderr, "  running %s ...\n", p.name);
    }
    res[i].mem = memcpy_case(p, o);
    res[i].ring_thr = run_case(case_no++, Mode::kRingThroughput, p, o, cpus);
    res[i].ring_busy = run_case(case_no++, Mode::kRingBusyLatency, p, o, cpus);
    res[i].ring_sleep = run_case(case_no++, Mode::kRingSleepLatency, p, o, cpus);
    res[i].zmq_thr = run_case(case_no++, Mode::kZmqThroughput, p, o, cpus);
    res[i].zmq_lat = run_case(case_no++, Mode::kZmqLatency, p, o, cpus);
  }
  frame_full = run_case(case_no++, Mode::kRingThroughput, kFrameFullTouch, o, cpus);
  const double total_s = static_cast<double>(now_ns() - started) / 1e9;
  const double others = CpuSample::take().others_since(run_start);
  const double c2c_after = core_to_core_ns(cpus);

  std::printf("%-34s %-7s %9s %8s %9s %9s %9s %8s  %s\n", "case", "payload", "msgs/s", "GB/s",
              "p50 us", "p99 us", "p99.9 us", "preempt", "notes");
  std::printf("%s\n", std::string(128, '-').c_str());
  for (std::size_t i = 0; i < kPayloads.size(); ++i) {
    const Payload& p = kPayloads[i];
    const PerSize& r = res[i];
    print_row({"memcpy into a slot (in-process)", &p, &r.mem, nullptr, ""});
    print_row(
        {"ring, busy consumer", &p, &r.ring_thr, &r.ring_busy,
         p.by_reference ? "by reference: 1st cache line written/read" : "payload written/read"});
    std::string sleep_note;
    if (r.ring_sleep.ok) {
      sleep_note = "woken by doorbell " + std::to_string(r.ring_sleep.rings) + "/" +
                   std::to_string(r.ring_sleep.messages);
      if (r.ring_sleep.timeouts != 0) {
        sleep_note += ", " + std::to_string(r.ring_sleep.timeouts) + " wait timeouts";
      }
    }
    print_row({"ring, sleeping consumer (doorbell)", &p, nullptr, &r.ring_sleep, sleep_note});
    print_row({"ZeroMQ ipc:// PUSH/PULL (copy)", &p, &r.zmq_thr, &r.zmq_lat,
               "blocking recv; HWM " + std::to_string(zmq_hwm(p))});
  }
  print_row({"ring, busy, frame written+read", &kFrameFullTouch, &frame_full, nullptr,
             "informative: whole 1.4 MB memcpy'd in, read out"});
  std::printf(
      "\nmsgs/s: unpaced producer, median rate over %" PRIu64
      " ms windows of the budget; "
      "GB/s = msgs/s x payload (by reference:\n  bytes passed, not copied). latency: one way, "
      "CLOCK_MONOTONIC stamped into the payload just before the push, read just\n  after the pop; "
      "each probe waits until the previous one was consumed, then %" PRIu64 " us (busy) / %" PRIu64
      " us\n  (sleeping, ZeroMQ). preempt: involuntary context switches of the pinned busy "
      "producer + consumer over the\n  row's cases (a few dozen on a quiet machine). c2c: what "
      "one cache line costs from CPU to CPU, measured just\n  before the row's throughput/latency "
      "case (%.0f ns before the run, %.0f ns after). Run took %.1f s; other\n  processes used "
      "%.0f%% of the CPUs meanwhile%s.\n\n",
      o.budget_ms / kWindows, o.busy_gap_ns / 1000, o.sleep_gap_ns / 1000, c2c_before, c2c_after,
      total_s, others * 100, others > 0.05 ? " (WARNING: figures disturbed)" : "");

  // Targets.
  const PerSize& small = res[0];
  const PerSize& audio = res[1];
  const PerSize& frame = res[2];
  bool all_ok = frame_full.ok;
  for (const auto& r : res) {
    all_ok = all_ok && r.mem.ok && r.ring_thr.ok && r.ring_busy.ok && r.ring_sleep.ok &&
             r.zmq_thr.ok && r.zmq_lat.ok;
  }
  auto verdict = [](bool ok, bool pass) { return !ok ? "ERROR" : (pass ? "PASS" : "MISS"); };
  const bool t1 = small.ring_thr.ok && small.ring_thr.msgs_per_s >= 2e6;
  const bool t2 = small.ring_busy.ok && small.ring_busy.p50_us < 5.0;
  const double ratio = frame.ring_thr.ok && frame.zmq_thr.ok && frame.zmq_thr.msgs_per_s > 0
                           ? frame.ring_thr.msgs_per_s / frame.zmq_thr.msgs_per_s
                           : 0.0;
  const bool t3 = ratio >= 100.0;
  char line[1024];
  std::snprintf(
      line, sizeof line,
      "ring: 64B %s msg/s = %.1fx the 2M target %s; 64B busy p50 %s us p99 %s us vs <5 us %s;"
      " 1.4MB by reference %s frames/s vs ZeroMQ copy %s frames/s = %.0fx vs >=100x %s;"
      " sleeping p50/p99 64B %s/%s us; 3840B %s msg/s %.1f GB/s p50 %s us;"
      " ZeroMQ 64B %s msg/s p50 %s us; memcpy 1.4MB %s/s %.1f GB/s; other load %.0f%%;"
      " c2c %.0f/%.0f ns",
      si(small.ring_thr.msgs_per_s).c_str(), small.ring_thr.msgs_per_s / 2e6,
      verdict(small.ring_thr.ok, t1), us(small.ring_busy.p50_us).c_str(),
      us(small.ring_busy.p99_us).c_str(), verdict(small.ring_busy.ok, t2),
      si(frame.ring_thr.msgs_per_s).c_str(), si(frame.zmq_thr.msgs_per_s).c_str(), ratio,
      verdict(frame.ring_thr.ok && frame.zmq_thr.ok, t3), us(small.ring_sleep.p50_us).c_str(),
      us(small.ring_sleep.p99_us).c_str(), si(audio.ring_thr.msgs_per_s).c_str(),
      audio.ring_thr.gbytes_per_s, us(audio.ring_busy.p50_us).c_str(),
      si(small.zmq_thr.msgs_per_s).c_str(), us(small.zmq_lat.p50_us).c_str(),
      si(frame.mem.msgs_per_s).c_str(), frame.mem.gbytes_per_s, others * 100, c2c_before,
      c2c_after);
  std::printf("%s\n", line);
  return all_ok ? 0 : 1;
}
