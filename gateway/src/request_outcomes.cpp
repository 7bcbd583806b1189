// SPDX-License-Identifier: MPL-2.0
#include "request_outcomes.hpp"

#include "skit/core/ids.hpp"

namespace skit::gateway {

std::string RequestOutcomes::begin() {
  std::string id = uuid_v4();
  std::lock_guard lock(mutex_);
  if (order_.size() >= capacity_) {
    by_id_.erase(order_.front());
    order_.pop_front();
  }
  by_id_[id] = Outcome{std::chrono::system_clock::now(), std::chrono::steady_clock::now()};
  order_.push_back(id);
  return id;
}

void RequestOutcomes::finish(const std::string& id, unsigned http_status, const Status& status,
                             std::uint64_t bytes_in, std::uint64_t bytes_out) {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    return;
  }
  Outcome& o = it->second;
  o.finished = true;
  o.http_status = http_status;
  o.status = status;
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - o.started_steady).count();
  o.finished_at = rfc3339_now();
  o.bytes_in = bytes_in;
  o.bytes_out = bytes_out;
}

std::optional<nlohmann::json> RequestOutcomes::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    return std::nullopt;
  }
  const Outcome& o = it->second;
  nlohmann::json j{{"request_id", id},
                   {"started_at", rfc3339(o.started)},
                   {"bytes_in", o.bytes_in},
                   {"bytes_out", o.bytes_out}};
  if (!o.finished) {
    j["state"] = "running";
    return j;
  }
  const bool ok = o.status.is_ok() && o.http_status < 400;
  j["state"] = ok ? "succeeded" : "failed";
  j["http_status"] = o.http_status;
  j["finished_at"] = o.finished_at;
  j["duration_seconds"] = o.seconds;
  if (!o.status.is_ok()) {
    nlohmann::json error{{"code", error_code_name(o.status.code())},
                         {"message", o.status.to_string()}};
    if (!o.status.where().node_id.empty()) {
      error["node"] = o.status.where().node_id;
    }
    j["error"] = error;
  }
  return j;
}

}  // namespace skit::gateway
