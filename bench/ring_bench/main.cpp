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
//
// Parts: harness.hpp (configuration, control block), ring_hop.cpp (the ring's two sides),
// zmq_baseline.cpp (ZeroMQ's), baselines.cpp (memcpy, CPU-to-CPU cache line), run_case.cpp
// (forking a case), report.cpp (table and machine description), and here the run and summary.

#include <sys/utsname.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "report.hpp"

namespace {

using namespace skit::ring_bench;

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
