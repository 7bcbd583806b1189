// SPDX-License-Identifier: MPL-2.0
// The outcome of recent oneshot requests, by the X-Skit-Request-Id their response carried:
// a browser cannot read HTTP trailers, so a client whose streamed response ended early asks
// GET /api/v1/process/{id} why. Bounded: the oldest outcomes are forgotten first.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>

#include "skit/core/status.hpp"

namespace skit::gateway {

class RequestOutcomes {
 public:
  explicit RequestOutcomes(std::size_t capacity = 1024) : capacity_(capacity) {}

  /// A new request, "running"; returns its id.
  std::string begin();
  /// The request ended with HTTP `http_status` and the run's `status`.
  void finish(const std::string& id, unsigned http_status, const Status& status,
              std::uint64_t bytes_in, std::uint64_t bytes_out);
  /// {request_id, state: running|succeeded|failed, http_status, error?: {code, message, node?},
  ///  started_at, finished_at?, duration_seconds?, bytes_in, bytes_out}.
  [[nodiscard]] std::optional<nlohmann::json> find(const std::string& id) const;

 private:
  struct Outcome {
    std::chrono::system_clock::time_point started;
    std::chrono::steady_clock::time_point started_steady;
    bool finished = false;
    unsigned http_status = 0;
    Status status;
    double seconds = 0;
    std::string finished_at;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
  };
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Outcome> by_id_;
  std::deque<std::string> order_;  // oldest first
};

}  // namespace skit::gateway
