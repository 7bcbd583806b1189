// SPDX-License-Identifier: MPL-2.0
// Reporting: the machine's description, figures formatted for the table, and how much CPU
// other processes took while the benchmark ran.
#pragma once

#include <string>

#include "cases.hpp"

namespace skit::ring_bench {

std::string read_first_line(const char* path);
std::string cpu_model();
/// 1.23G, 4.56M, 7.8k.
std::string si(double v);
/// Microseconds with 3 significant digits at most.
std::string us(double v);

struct Row {
  std::string what;
  const Payload* payload;
  const CaseResult* thr;  // may be null
  const CaseResult* lat;  // may be null
  std::string note;
};
void print_row(const Row& row);

/// CPU time of the whole machine (/proc/stat) and of this process and its reaped children,
/// to tell how much other processes used while the benchmark ran.
struct CpuSample {
  double total_s = 0;  // all CPUs, all states
  double busy_s = 0;   // all CPUs, not idle/iowait
  double ours_s = 0;   // this process and its children

  static CpuSample take();
  /// Share of all CPU time since `before` that went to other processes.
  [[nodiscard]] double others_since(const CpuSample& before) const;
};

}  // namespace skit::ring_bench
