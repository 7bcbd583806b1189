// SPDX-License-Identifier: MPL-2.0
// Signal helpers for node tests: tone generators, Goertzel level measurement, channel
// extraction and zero-crossing frequency estimates.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

namespace skit::testing {

inline constexpr double kPi = 3.14159265358979323846;

/// `frames` frames of amplitude * sin(2 pi freq t) on every one of `channels` channels.
inline std::vector<float> sine(double freq, double amplitude, std::uint32_t rate, std::size_t frames,
                               std::uint16_t channels = 1) {
  std::vector<float> out(frames * channels);
  for (std::size_t i = 0; i < frames; ++i) {
    const auto v = static_cast<float>(amplitude * std::sin(2.0 * kPi * freq * static_cast<double>(i) / rate));
    for (std::size_t c = 0; c < channels; ++c) {
      out[i * channels + c] = v;
    }
  }
  return out;
}

inline std::vector<float> constant(float value, std::size_t frames, std::uint16_t channels = 1) {
  return std::vector<float>(frames * channels, value);
}

/// Channel `c` of interleaved samples.
inline std::vector<float> channel(std::span<const float> interleaved, std::size_t channels, std::size_t c) {
  std::vector<float> out;
  out.reserve(interleaved.size() / channels);
  for (std::size_t i = c; i < interleaved.size(); i += channels) {
    out.push_back(interleaved[i]);
  }
  return out;
}

/// Amplitude of the `freq` component of `x` (Goertzel; exact for whole cycles in the window).
inline double goertzel(std::span<const float> x, double freq, double rate) {
  const double w = 2.0 * kPi * freq / rate;
  const double coeff = 2.0 * std::cos(w);
  double s1 = 0;
  double s2 = 0;
  for (float v : x) {
    const double s = v + coeff * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  const double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return 2.0 * std::sqrt(std::max(power, 0.0)) / static_cast<double>(x.size());
}

/// Frequency estimate from rising zero crossings.
inline double zero_crossing_freq(std::span<const float> x, double rate) {
  std::size_t first = 0;
  std::size_t last = 0;
  std::size_t count = 0;
  for (std::size_t i = 1; i < x.size(); ++i) {
    if (x[i - 1] < 0.0F && x[i] >= 0.0F) {
      if (count == 0) {
        first = i;
      }
      last = i;
      ++count;
    }
  }
  if (count < 2) {
    return 0.0;
  }
  return static_cast<double>(count - 1) * rate / static_cast<double>(last - first);
}

inline float max_abs(std::span<const float> x) {
  float m = 0.0F;
  for (float v : x) {
    m = std::max(m, std::abs(v));
  }
  return m;
}

}  // namespace skit::testing
