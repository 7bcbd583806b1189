// SPDX-License-Identifier: MPL-2.0
// What the ring is measured against on the same machine in the same run: the cost of one
// cache line between the two CPUs, and a plain memcpy of the payload.
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <new>

#include "cases.hpp"

namespace skit::ring_bench {

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

}  // namespace skit::ring_bench
