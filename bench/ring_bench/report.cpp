// SPDX-License-Identifier: MPL-2.0
#include "report.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace skit::ring_bench {

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

CpuSample CpuSample::take() {
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

double CpuSample::others_since(const CpuSample& before) const {
  const double total = total_s - before.total_s;
  const double others = (busy_s - before.busy_s) - (ours_s - before.ours_s);
  return total > 0 ? std::clamp(others / total, 0.0, 1.0) : 0.0;
}

}  // namespace skit::ring_bench
