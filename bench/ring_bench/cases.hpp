// SPDX-License-Identifier: MPL-2.0
// Running the measurements: a case between two forked processes, and the in-process baselines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "harness.hpp"

namespace skit::ring_bench {

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

// run_case.cpp
/// Creates the case's segments, forks the producer and the consumer (pinned to `cpus[0]` and
/// `cpus[1]` for the busy cases), waits for both and turns the control block into figures.
CaseResult run_case(int case_no, Mode mode, const Payload& p, const Options& o,
                    const std::vector<int>& cpus);

// baselines.cpp
/// Cost of moving one cache line from one CPU to the other: two processes pinned to `cpus[0]`
/// and `cpus[1]` bounce a counter; half the median round trip (batches of 1000), in ns. On a
/// VM this depends on where the host runs the two vCPUs and can change during a run, so it is
/// measured before and after the cases. Returns a negative value if it cannot be measured.
double core_to_core_ns(const std::vector<int>& cpus);
/// In-process baseline: copy the payload into one of kSlotCount slot-sized buffers in turn, as a
/// producer would if it copied into the pool instead of writing in place.
CaseResult memcpy_case(const Payload& p, const Options& o);

}  // namespace skit::ring_bench
