// SPDX-License-Identifier: MPL-2.0
// The subscribers of session events (WebSocket clients, gRPC WatchEvents calls): each has a
// bounded queue of its own (EventSubscription, public), so that a slow one loses events
// instead of slowing a session or another subscriber.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "skit/supervisor/sessions.hpp"

namespace skit::supervisor::sessions {

class EventHub {
 public:
  explicit EventHub(std::size_t default_capacity) : default_capacity_(default_capacity) {}

  std::shared_ptr<EventSubscription> subscribe(std::size_t capacity);
  /// To every open subscription; `stats`: a newer counters snapshot replaces a queued one.
  void emit(const SessionEvent& event, bool stats);
  /// Closes every subscription (shutdown).
  void close_all();
  /// Events dropped for lagging subscribers, closed ones included.
  std::uint64_t dropped();

 private:
  std::size_t default_capacity_;
  std::vector<std::weak_ptr<EventSubscription>> subscribers_;
  std::uint64_t dropped_by_closed_ = 0;
};

}  // namespace skit::supervisor::sessions
