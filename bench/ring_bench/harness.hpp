// SPDX-License-Identifier: MPL-2.0
// What every part of skit_ring_bench shares: its configuration and cases, the control block
// that the parent and both children of a case map, and small helpers (time, CPUs, payloads).
#pragma once

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <vector>

#include "skit/core/status.hpp"
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

namespace skit::ring_bench {

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

inline bool is_latency(Mode m) {
  return m == Mode::kRingBusyLatency || m == Mode::kRingSleepLatency || m == Mode::kZmqLatency;
}
inline bool is_zmq(Mode m) {
  return m == Mode::kZmqThroughput || m == Mode::kZmqLatency;
}

// --- small helpers --------------------------------------------------------------------------

inline std::uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

inline void sleep_ns(std::uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000ULL), static_cast<long>(ns % 1000000000ULL)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
  }
}

/// Keeps the compiler from dropping a store or a computation whose result is unused.
template <class T>
inline void keep(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

/// Reads `bytes` (a multiple of 8) and folds them, so the consumer really touches the payload.
inline std::uint64_t read_words(const std::byte* data, std::size_t bytes) {
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i + 8 <= bytes; i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, data + i, 8);
    acc ^= w + i;
  }
  return acc;
}

inline std::size_t touched_bytes(const Payload& p) {
  return p.by_reference ? kLine : p.bytes;
}

inline std::vector<std::byte> pattern(std::size_t bytes) {
  std::vector<std::byte> out(bytes);
  for (std::size_t i = 0; i < bytes; ++i) {
    out[i] = static_cast<std::byte>((i * 131U + 7U) & 0xFFU);
  }
  return out;
}

inline void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) {
    throw std::runtime_error(std::string("sched_setaffinity: ") + std::strerror(errno));
  }
}

inline std::vector<int> allowed_cpus() {
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
inline T must(skit::Result<T> result, const char* what) {
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

inline std::int64_t involuntary_switches() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nivcsw;
}

inline void wait_flag(const std::atomic<std::uint32_t>& flag) {
  while (flag.load(std::memory_order_acquire) == 0) {
    sleep_ns(50000);
  }
}

/// Latency probes: waits until the consumer has finished with probe `seq - 1`.
inline void wait_acked(const Control& ctl, std::uint64_t seq, bool spin) {
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

inline Names names_for(int case_no) {
  const std::string run = std::to_string(::getpid()) + "-bench" + std::to_string(case_no);
  return {"skit-" + run + "-pool",
          "skit-" + run + "-ring",
          "skit-" + run + "-ctl",
          ipc::doorbell_endpoint(run, "producer"),
          ipc::doorbell_endpoint(run, "consumer"),
          "ipc://@skit-" + run + "-zmq"};
}

inline SharedSegment open_segment(const std::string& name) {
  return must(SharedSegment::open(name), "open segment");
}

inline void record_latencies(Control& ctl, std::vector<std::uint64_t>& lat) {
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

// --- the two sides of a case, run in the children ---------------------------------------------

// ring_hop.cpp: one hop through a shared-memory ring, as between two worker processes.
void ring_producer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o);
void ring_consumer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o);

// zmq_baseline.cpp: the same messages through ZeroMQ alone (ipc:// PUSH/PULL, copied).
int zmq_hwm(const Payload& p);
void zmq_producer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o);
void zmq_consumer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o);

}  // namespace skit::ring_bench
