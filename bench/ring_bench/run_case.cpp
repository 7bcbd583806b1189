// SPDX-License-Identifier: MPL-2.0
// One case: the parent plays the supervisor (creates the segments), forks a producer and a
// consumer that attach by name as workers do, and collects what they wrote.
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <new>
#include <optional>

#include "cases.hpp"

namespace skit::ring_bench {

namespace {

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

}  // namespace

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

}  // namespace skit::ring_bench
