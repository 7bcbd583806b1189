// SPDX-License-Identifier: MPL-2.0
// Audio helpers for integration tests: make media with ffmpeg, decode any output to f32 with
// ffmpeg, probe it with ffprobe, and measure it (RMS level, tone amplitude by Goertzel, peak
// frequency, duration). Every external tool runs through Process, with a deadline.
// Header-only, like skit_test_support.hpp.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "skit_test_support.hpp"

namespace skit::testing {

/// Full path of an executable found on PATH ("" if none).
/// A gain of 2 in decibels (6.0206 dB): what a doubled amplitude measures.
inline const double kSixDb = 20.0 * std::log10(2.0);

inline std::string find_tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const fs::path candidate = fs::path(dirs.substr(start, end - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
    start = end + 1;
  }
  return "";
}

struct ToolResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs a tool found on PATH (argv[0] is its name) to completion.
inline ToolResult run_tool(std::vector<std::string> argv,
                           std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const std::string exe = find_tool(argv.at(0));
  if (exe.empty()) {
    return {127, "", argv[0] + ": not found on PATH (scripts/bootstrap.sh installs it)"};
  }
  argv[0] = exe;
  Process p(argv);
  p.wait(timeout);
  return {p.exit_code(), p.out(), p.err()};
}

/// Runs ffmpeg quietly (`-v error`, no stdin, overwrite) with `args`; the test fails with
/// ffmpeg's message if it does.
inline bool ffmpeg(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"};
  argv.insert(argv.end(), args.begin(), args.end());
  const ToolResult r = run_tool(argv);
  EXPECT_EQ(r.exit_code, 0) << "ffmpeg failed: " << r.err;
  return r.exit_code == 0;
}

/// A sine from ffmpeg's lavfi (aevalsrc): `amplitude * sin(2 pi freq t)` for `seconds`, at
/// `rate` Hz, the same in every channel. `codec_args` pick the output encoding, e.g.
/// {"-c:a", "libopus", "-b:a", "96k"} or {"-c:a", "pcm_s16le"}.
inline bool make_sine(const std::string& path, double freq, double amplitude, double seconds,
                      int rate = 48000, int channels = 1,
                      const std::vector<std::string>& codec_args = {"-c:a", "pcm_s16le"}) {
  char expr[160];
  std::snprintf(expr, sizeof expr, "aevalsrc=exprs='%.9g*sin(2*PI*%.9g*t)':s=%d:d=%.9g", amplitude,
                freq, rate, seconds);
  std::vector<std::string> args = {"-f", "lavfi", "-i", expr, "-ac", std::to_string(channels)};
  args.insert(args.end(), codec_args.begin(), codec_args.end());
  args.insert(args.end(), {"-map_metadata", "-1", "-fflags", "+bitexact", path});
  return ffmpeg(args);
}

/// Mono f32 audio as ffmpeg decodes it.
struct Decoded {
  std::vector<float> samples;
  int rate = 0;
  std::string err;  // ffmpeg's stderr (`-v error`): empty when the file decodes cleanly
  int exit_code = -1;

  [[nodiscard]] double seconds() const {
    return rate > 0 ? static_cast<double>(samples.size()) / rate : 0.0;
  }
  /// The samples without the first and last `edge_s` seconds (codec edge effects).
  [[nodiscard]] std::span<const float> middle(double edge_s = 0.05) const {
    const auto edge = static_cast<std::size_t>(edge_s * rate);
    if (samples.size() <= 2 * edge) {
      return {};
    }
    return std::span<const float>(samples).subspan(edge, samples.size() - 2 * edge);
  }
};

/// Decodes `path` with `ffmpeg -v error -i path -f f32le -ac 1 [-ar rate] -`: downmixed to mono,
/// resampled to `rate` (0 keeps the file's own rate, which is then read with ffprobe).
inline Decoded decode_f32(const std::string& path, int rate = 48000) {
  Decoded d;
  std::vector<std::string> argv = {"ffmpeg", "-nostdin", "-hide_banner", "-v",  "error", "-i",
                                   path,     "-f",       "f32le",        "-ac", "1"};
  if (rate > 0) {
    argv.insert(argv.end(), {"-ar", std::to_string(rate)});
  }
  argv.emplace_back("-");
  const ToolResult r = run_tool(argv);
  d.exit_code = r.exit_code;
  d.err = r.err;
  d.samples.resize(r.out.size() / sizeof(float));
  std::memcpy(d.samples.data(), r.out.data(), d.samples.size() * sizeof(float));
  if (rate > 0) {
    d.rate = rate;
  } else {
    const ToolResult p =
        run_tool({"ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                  "stream=sample_rate", "-of", "default=noprint_wrappers=1:nokey=1", path});
    d.rate = std::atoi(p.out.c_str());
  }
  return d;
}

/// The first audio stream as ffprobe reports it.
struct Probe {
  std::string codec;
  int rate = 0;
  int channels = 0;
  std::string format;  // container (format_name)
  std::string err;     // ffprobe's stderr with -v error: empty for a clean file
  int exit_code = -1;
};

inline Probe probe(const std::string& path) {
  const ToolResult r =
      run_tool({"ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                "stream=codec_name,sample_rate,channels:format=format_name", "-of",
                "default=noprint_wrappers=1", path});
  Probe p;
  p.exit_code = r.exit_code;
  p.err = r.err;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    const std::string key = line.substr(0, eq);
    const std::string value = line.substr(eq + 1);
    if (key == "codec_name") {
      p.codec = value;
    } else if (key == "sample_rate") {
      p.rate = std::atoi(value.c_str());
    } else if (key == "channels") {
      p.channels = std::atoi(value.c_str());
    } else if (key == "format_name") {
      p.format = value;
    }
  }
  return p;
}

/// ffmpeg's complaints when it decodes the whole file (`-v error ... -f null -`): "" if clean.
inline std::string decode_errors(const std::string& path) {
  const ToolResult r = run_tool(
      {"ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", path, "-f", "null", "-"});
  return r.exit_code == 0 ? r.err : "exit " + std::to_string(r.exit_code) + ": " + r.err;
}

/// RMS level in dBFS (a full-scale sine is -3.01 dBFS).
inline double rms_db(std::span<const float> x) {
  if (x.empty()) {
    return -std::numeric_limits<double>::infinity();
  }
  double sum = 0;
  for (float v : x) {
    sum += static_cast<double>(v) * v;
  }
  return 10.0 * std::log10(sum / static_cast<double>(x.size()) + 1e-30);
}

/// RMS levels (dB) of consecutive `window_s` windows (20 ms: one Opus frame).
inline std::vector<double> window_levels(const Decoded& d, double window_s = 0.02) {
  const auto n = static_cast<std::size_t>(window_s * d.rate);
  std::vector<double> out;
  for (std::size_t i = 0; n > 0 && i + n <= d.samples.size(); i += n) {
    out.push_back(rms_db(std::span<const float>(d.samples).subspan(i, n)));
  }
  return out;
}

/// Mean of 20 ms window levels between two times (seconds).
inline double mean_level(const std::vector<double>& levels, double from_s, double to_s) {
  const auto a = static_cast<std::size_t>(from_s / 0.02);
  const auto b = std::min(levels.size(), static_cast<std::size_t>(to_s / 0.02));
  double sum = 0;
  for (std::size_t i = a; i < b; ++i) {
    sum += levels[i];
  }
  return b > a ? sum / static_cast<double>(b - a) : -200.0;
}

/// Amplitude (peak, linear) of the component at `freq` Hz: a Hann-windowed Goertzel filter,
/// normalized so that `a * sin(2 pi freq t)` gives `a`.
inline double tone_amplitude(std::span<const float> x, double rate, double freq) {
  const std::size_t n = x.size();
  if (n < 2) {
    return 0;
  }
  const double w = 2.0 * std::numbers::pi * freq / rate;
  const double coeff = 2.0 * std::cos(w);
  double s1 = 0;
  double s2 = 0;
  double window_sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double hann = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(i) /
                                             static_cast<double>(n - 1));
    const double s0 = x[i] * hann + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    window_sum += hann;
  }
  const double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return 2.0 * std::sqrt(std::max(power, 0.0)) / window_sum;
}

inline double amplitude_db(double amplitude) {
  return 20.0 * std::log10(amplitude + 1e-30);
}

/// The frequency in [lo, hi] (scanned in `step` Hz) with the largest tone amplitude.
inline double peak_frequency(std::span<const float> x, double rate, double lo, double hi,
                             double step = 0.25) {
  double best_f = lo;
  double best_a = -1;
  for (double f = lo; f <= hi; f += step) {
    const double a = tone_amplitude(x, rate, f);
    if (a > best_a) {
      best_a = a;
      best_f = f;
    }
  }
  return best_f;
}

/// A copy of a sample pipeline with `from` replaced by `to` (every occurrence), written to
/// `path`; fails the test if `from` does not occur.
inline void write_variant(const std::string& sample, const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& edits) {
  std::string yaml = read_file(sample);
  for (const auto& [from, to] : edits) {
    const auto at = yaml.find(from);
    EXPECT_NE(at, std::string::npos) << "'" << from << "' not in " << sample;
    for (auto pos = at; pos != std::string::npos; pos = yaml.find(from, pos + to.size())) {
      yaml.replace(pos, from.size(), to);
    }
  }
  write_file(path, yaml);
}

/// Like run_skit, but skit runs with `dir` as its working directory (sample pipelines name
/// their files relative to the repository root). Also checks that nothing is left behind.
inline RunResult run_skit_in(const std::string& dir, const std::vector<std::string>& args,
                             std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  // env -C changes directory and execs skit in the same process, so the pid is skit's.
  std::vector<std::string> argv = {find_tool("env"), "-C", dir, SKIT_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto t0 = std::chrono::steady_clock::now();
  Process p(argv);
  p.wait(timeout);
  RunResult r{p.exit_code(), p.out(), p.err(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
  EXPECT_TRUE(shm_segments_of(p.pid()).empty()) << "shared memory left behind";
  const pid_t pid = p.pid();
  EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, std::chrono::seconds(5)))
      << "worker processes outlived their supervisor";
  return r;
}

}  // namespace skit::testing
