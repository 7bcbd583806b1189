// SPDX-License-Identifier: MPL-2.0
// Live sessions under load: how many real-time sessions of the issue-6 pipeline
//   file_reader -> ogg demuxer -> pacer -> opus decoder -> gain -> opus encoder -> ogg muxer
//   -> file_writer
// run at once without falling behind, what each costs in memory and CPU (beside N `ffmpeg -re`
// processes doing the same work), and how long a synchronous tunenode takes to reach the node.
//
// usage: skit_sessions_bench --skit PATH [--sessions 10,25,50,60] [--seconds 20]
//                            [--tune-sessions 50] [--tunes 400]
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "skit/gateway/session_json.hpp"
#include "skit/supervisor/sessions.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using skit::Json;
using skit::supervisor::SessionConfig;
using skit::supervisor::SessionManager;

namespace {

/// The pipeline with live state, as StreamKit's JSON (the REST API's shape).
skit::Result<Json> pipeline_json(SessionManager& m, const std::string& id) {
  auto view = m.pipeline(id);
  if (!view) {
    return view.status();
  }
  return skit::gateway::pipeline_json(*view);
}

struct Args {
  std::string skit;
  std::vector<int> sessions = {10, 25, 50, 60};
  double seconds = 20;
  int tune_sessions = 50;
  int tunes = 400;
  // The server's own default (sessions.placement), so that the figures are the ones a
  // default server gives.
  std::string placement{skit::supervisor::placement_name(skit::supervisor::SessionConfig{}.placement)};
};

int run(const std::string& command) { return std::system(command.c_str()); }

double cpu_seconds(int who) {
  rusage u{};
  ::getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// Proportional set size (shared pages split between their users), in bytes.
std::uint64_t pss_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key) {
    if (key == "Pss:") {
      in >> kb >> unit;
      return kb * 1024;
    }
    std::getline(in, key);
  }
  return 0;
}

std::uint64_t rss_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::string yaml_for(const std::string& in, const std::string& out) {
  return "mode: dynamic\n"
         "nodes:\n"
         "  reader: {kind: core::file_reader, params: {path: '" + in + "'}}\n"
         "  demux: {kind: containers::ogg::demuxer, needs: reader}\n"
         "  pacer: {kind: core::pacer, needs: demux}\n"
         "  dec: {kind: audio::opus::decoder, needs: pacer}\n"
         "  gain: {kind: audio::gain, params: {gain: 1.0}, needs: dec}\n"
         "  enc: {kind: audio::opus::encoder, needs: gain}\n"
         "  mux: {kind: containers::ogg::muxer, params: {codec: opus}, needs: enc}\n"
         "  writer: {kind: core::file_writer, params: {path: '" + out + "'}, needs: mux}\n";
}

std::string state_of(const Json& pipeline, const std::string& node) {
  const Json& st = pipeline["nodes"][node]["state"];
  return st.is_string() ? st.get<std::string>() : st.begin().key();
}

double decoded_seconds(const std::string& path) {
  const std::string cmd = "ffprobe -v error -show_entries format=duration -of csv=p=0 '" + path + "'";
  FILE* p = ::popen(cmd.c_str(), "r");
  double d = 0;
  if (p != nullptr) {
    if (std::fscanf(p, "%lf", &d) != 1) {
      d = 0;
    }
    ::pclose(p);
  }
  return d;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct LoadResult {
  int sessions = 0;
  double worst_lag_s = 0;    // completion - (start + media length), worst session
  double median_lag_s = 0;
  int short_outputs = 0;     // outputs missing more than one frame
  double cpu_s = 0;          // workers + manager
  double pss_per_session_mb = 0;
  double rss_per_session_mb = 0;
  std::vector<double> tune_ms;
  bool kept_pace = false;
};

LoadResult run_sessions(const Args& args, const std::string& input, const fs::path& dir, int n,
                        bool tune) {
  SessionConfig config;
  config.worker_executable = args.skit;
  config.max_sessions = static_cast<std::size_t>(n) + 8;
  config.placement = *skit::supervisor::parse_placement(args.placement);
  LoadResult r;
  r.sessions = n;
  const double cpu0 = cpu_seconds(RUSAGE_CHILDREN) + cpu_seconds(RUSAGE_SELF);
  {
    SessionManager m(config);
    std::vector<std::string> outs;
    std::vector<Clock::time_point> started;
    for (int i = 0; i < n; ++i) {
      outs.push_back((dir / ("out-" + std::to_string(i) + ".ogg")).string());
      auto created = m.create_session("s" + std::to_string(i), yaml_for(input, outs.back()));
      if (!created) {
        std::fprintf(stderr, "create failed: %s\n", created.status().to_string().c_str());
        std::exit(1);
      }
      started.push_back(Clock::now());
    }
    // Memory once everything runs: shortly after the last session started (the first ones
    // may end early when creating many sessions takes a while).
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(2.0, args.seconds / 2)));
    std::uint64_t pss = pss_bytes(::getpid());
    std::uint64_t rss = rss_bytes(::getpid());
    std::set<int> workers;  // grouped nodes share one
    for (int i = 0; i < n; ++i) {
      auto p = pipeline_json(m, "s" + std::to_string(i));
      for (const auto& [id, node] : (*p)["nodes"].items()) {
        const int pid = node["worker_pid"].get<int>();
        if (pid > 0 && workers.insert(pid).second) {
          pss += pss_bytes(pid);
          rss += rss_bytes(pid);
        }
      }
    }
    if (std::getenv("SKIT_BENCH_PROFILE") != nullptr) {
      // CPU seconds per node kind (per-node placement: one worker per node).
      std::map<std::string, double> by_node;
      for (int i = 0; i < n; ++i) {
        auto p = pipeline_json(m, "s" + std::to_string(i));
        for (const auto& [id, node] : (*p)["nodes"].items()) {
          std::ifstream stat("/proc/" + std::to_string(node["worker_pid"].get<int>()) + "/stat");
          std::string line;
          std::getline(stat, line);
          const auto close = line.rfind(')');
          if (close == std::string::npos) {
            continue;
          }
          std::istringstream rest(line.substr(close + 2));
          std::string field;
          double ut = 0;
          double st = 0;
          for (int f = 3; f <= 15 && rest >> field; ++f) {
            if (f == 14) ut = std::stod(field);
            if (f == 15) st = std::stod(field);
          }
          by_node[id] += (ut + st) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        }
      }
      for (const auto& [id, cpu] : by_node) {
        std::fprintf(stderr, "  cpu %-7s %.3f s per session\n", id.c_str(), cpu / n);
      }
    }
    r.pss_per_session_mb = static_cast<double>(pss) / n / (1 << 20);
    r.rss_per_session_mb = static_cast<double>(rss) / n / (1 << 20);
    if (tune) {
      // Synchronous tunes, round robin over the sessions' gain nodes, until the streams end.
      const auto stop_at = started.front() + std::chrono::duration<double>(args.seconds - 1.0);
      int k = 0;
      while (Clock::now() < stop_at && static_cast<int>(r.tune_ms.size()) < args.tunes) {
        const auto t0 = Clock::now();
        auto s = m.tune_node("s" + std::to_string(k % n), "gain",
                             Json{{"gain", (k % 2) != 0 ? 1.0 : 0.5}}, /*wait=*/true);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (s.is_ok()) {
          r.tune_ms.push_back(ms);
        }
        ++k;
        std::this_thread::sleep_for(10ms);
      }
    }
    // Completion of every session (its writer stopped). The lag may be slightly negative:
    // a session starts streaming before create_session() returns.
    std::vector<double> lags(static_cast<std::size_t>(n), 0.0);
    std::vector<bool> finished(static_cast<std::size_t>(n), false);
    const auto give_up = started.back() + std::chrono::duration<double>(args.seconds * 3 + 10);
    int done = 0;
    while (done < n && Clock::now() < give_up) {
      for (int i = 0; i < n; ++i) {
        const auto k = static_cast<std::size_t>(i);
        if (finished[k]) {
          continue;
        }
        auto p = pipeline_json(m, "s" + std::to_string(i));
        if (p && state_of(*p, "writer") == "Stopped") {
          lags[k] = std::chrono::duration<double>(Clock::now() - started[k]).count() - args.seconds;
          finished[k] = true;
          ++done;
        }
      }
      std::this_thread::sleep_for(20ms);
    }
    for (int i = 0; i < n; ++i) {
      if (!finished[static_cast<std::size_t>(i)]) {
        lags[static_cast<std::size_t>(i)] = 1e9;
        auto p = pipeline_json(m, "s" + std::to_string(i));
        std::fprintf(stderr, "session s%d did not finish:\n", i);
        if (std::getenv("SKIT_BENCH_HOLD") != nullptr) {
          std::fprintf(stderr, "%s\n", p->dump().c_str());
          std::this_thread::sleep_for(120s);
        }
        for (const auto& [id, node] : (*p)["nodes"].items()) {
          std::fprintf(stderr, "  %-7s %s in %llu out %llu\n", id.c_str(), node["state"].dump().c_str(),
                       static_cast<unsigned long long>(node["stats"]["received"].get<std::uint64_t>()),
                       static_cast<unsigned long long>(node["stats"]["sent"].get<std::uint64_t>()));
        }
      }
    }
    r.worst_lag_s = *std::max_element(lags.begin(), lags.end());
    r.median_lag_s = percentile(lags, 0.5);
    for (int i = 0; i < n; ++i) {
      if (decoded_seconds(outs[static_cast<std::size_t>(i)]) < args.seconds - 0.021) {
        ++r.short_outputs;
      }
    }
    for (int i = 0; i < n; ++i) {
      (void)m.destroy_session("s" + std::to_string(i));
    }
  }
  r.cpu_s = cpu_seconds(RUSAGE_CHILDREN) + cpu_seconds(RUSAGE_SELF) - cpu0;
  // Keeping pace: every session ends within half a second of its media length (the lag is the
  // pipeline's own latency plus the 20 ms poll of this loop) and nothing is lost.
  r.kept_pace = r.worst_lag_s < 0.5 && r.short_outputs == 0;
  return r;
}

/// The same real-time work with ffmpeg: N processes of `ffmpeg -re` (decode, volume, encode).
double run_ffmpeg(const std::string& input, const fs::path& dir, int n, double* worst_lag) {
  const double cpu0 = cpu_seconds(RUSAGE_CHILDREN);
  std::vector<pid_t> pids;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    const std::string out = (dir / ("ff-" + std::to_string(i) + ".ogg")).string();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execlp("ffmpeg", "ffmpeg", "-nostdin", "-v", "error", "-y", "-re", "-i", input.c_str(),
               "-af", "volume=1.0", "-c:a", "libopus", "-f", "ogg", out.c_str(),
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  double last = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    last = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  *worst_lag = last;
  return cpu_seconds(RUSAGE_CHILDREN) - cpu0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--skit") {
      args.skit = next();
    } else if (a == "--sessions") {
      args.sessions.clear();
      std::stringstream ss(next());
      std::string item;
      while (std::getline(ss, item, ',')) {
        args.sessions.push_back(std::stoi(item));
      }
    } else if (a == "--seconds") {
      args.seconds = std::stod(next());
    } else if (a == "--tune-sessions") {
      args.tune_sessions = std::stoi(next());
    } else if (a == "--placement") {
      args.placement = next();
    } else if (a == "--tunes") {
      args.tunes = std::stoi(next());
    } else {
      std::printf("usage: %s --skit PATH [--sessions 10,25,50,60] [--seconds 20] "
                  "[--tune-sessions 50] [--tunes 400] [--placement grouped|per-node]\n"
                  "  --placement defaults to the server's sessions.placement (%s)\n",
                  argv[0], Args{}.placement.c_str());
      return a == "--help" ? 0 : 2;
    }
  }
  if (args.skit.empty()) {
    std::fprintf(stderr, "--skit is required\n");
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() / ("skit-sessions-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string input = (dir / "in.ogg").string();
  char cmd[512];
  std::snprintf(cmd, sizeof cmd,
                "ffmpeg -nostdin -v error -y -f lavfi -i 'sine=f=440:r=48000:d=%.3f' -ac 2 "
                "-c:a libopus -b:a 96k '%s'",
                args.seconds, input.c_str());
  if (run(cmd) != 0) {
    std::fprintf(stderr, "could not make the input clip\n");
    return 1;
  }
  std::printf("Live sessions: %.0f s stereo Opus clip, paced in real time, 8 nodes per session "
              "(%s placement), on %u CPUs\n\n",
              args.seconds, args.placement.c_str(), std::thread::hardware_concurrency());
  std::printf("%9s %10s %10s %8s %12s %12s %11s %12s\n", "sessions", "worst lag", "median lag",
              "short", "PSS/session", "RSS/session", "CPU/sess-s", "keeps pace");
  int best = 0;
  LoadResult at_target;
  for (int n : args.sessions) {
    LoadResult r = run_sessions(args, input, dir, n, n == args.tune_sessions);
    std::printf("%9d %9.3fs %9.3fs %8d %9.1f MB %9.1f MB %10.4f %12s\n", r.sessions,
                r.worst_lag_s, r.median_lag_s, r.short_outputs, r.pss_per_session_mb,
                r.rss_per_session_mb, r.cpu_s / (n * args.seconds), r.kept_pace ? "yes" : "NO");
    std::fflush(stdout);
    if (r.kept_pace) {
      best = std::max(best, n);
    }
    if (n == args.tune_sessions) {
      at_target = r;
    }
  }
  // ffmpeg doing the same work, at the tune-session count.
  const int n = args.tune_sessions;
  double ff_wall = 0;
  const double ff_cpu = run_ffmpeg(input, dir, n, &ff_wall);
  std::printf("\nffmpeg -re x %d (decode, volume, encode): CPU/sess-s %.4f, all done after %.2f s\n",
              n, ff_cpu / (n * args.seconds), ff_wall);
  if (at_target.sessions == n) {
    std::printf("skit/ffmpeg CPU ratio at %d sessions: %.2fx\n", n,
                at_target.cpu_s / std::max(ff_cpu, 1e-9));
  }
  if (!at_target.tune_ms.empty()) {
    std::printf("\nsynchronous tunenode at %d sessions (request -> applied in the node between "
                "two frames), %zu tunes: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                n, at_target.tune_ms.size(), percentile(at_target.tune_ms, 0.5),
                percentile(at_target.tune_ms, 0.99),
                *std::max_element(at_target.tune_ms.begin(), at_target.tune_ms.end()));
    std::printf("data path from the gain node to the file: up to 3 rings x 16 packets x 20 ms "
                "when they are full; in steady state they hold about one packet\n");
  }
  std::printf("\nsummary: %d concurrent real-time sessions kept pace (target >= 50); tune p99 "
              "%.2f ms (target < 25 ms + ring depth)\n",
              best, percentile(at_target.tune_ms, 0.99));
  fs::remove_all(dir);
  return 0;
}
