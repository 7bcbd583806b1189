// SPDX-License-Identifier: MPL-2.0
#include "events.hpp"

namespace skit::supervisor {

// ---- EventSubscription (the public, thread-safe queue of one subscriber) --------------------

std::optional<SessionEvent> EventSubscription::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [this] { return closed_ || !queue_.empty(); });
  if (queue_.empty()) {
    return std::nullopt;
  }
  SessionEvent e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

std::uint64_t EventSubscription::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

std::uint64_t EventSubscription::coalesced() const {
  std::lock_guard lock(mutex_);
  return coalesced_;
}

void EventSubscription::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  ready_.notify_all();
  notify();
}

void EventSubscription::set_listener(std::function<void()> listener) {
  std::lock_guard lock(listener_mutex_);
  listener_ = std::move(listener);
}

void EventSubscription::notify() {
  std::lock_guard lock(listener_mutex_);
  if (listener_) {
    listener_();
  }
}

bool EventSubscription::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

void EventSubscription::push(SessionEvent event, bool coalesce_stats) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      return;
    }
    if (coalesce_stats) {
      // A newer snapshot of the same node's counters replaces the queued one.
      for (auto& queued : queue_) {
        if (queued.kind == SessionEvent::Kind::kNodeStatsUpdated &&
            queued.session_id == event.session_id && queued.node_id == event.node_id) {
          queued = std::move(event);
          ++coalesced_;
          return;
        }
      }
    }
    if (queue_.size() >= capacity_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(std::move(event));
  }
  ready_.notify_one();
  notify();
}

namespace sessions {

std::shared_ptr<EventSubscription> EventHub::subscribe(std::size_t capacity) {
  auto sub = std::make_shared<EventSubscription>(capacity == 0 ? default_capacity_ : capacity);
  subscribers_.push_back(sub);
  return sub;
}

void EventHub::emit(const SessionEvent& event, bool stats) {
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    auto sub = it->lock();
    if (!sub || sub->closed()) {
      if (sub) {
        dropped_by_closed_ += sub->dropped();
      }
      it = subscribers_.erase(it);
      continue;
    }
    sub->push(event, stats);
    ++it;
  }
}

void EventHub::close_all() {
  for (auto& weak : subscribers_) {
    if (auto sub = weak.lock()) {
      sub->close();
    }
  }
}

std::uint64_t EventHub::dropped() {
  std::uint64_t total = dropped_by_closed_;
  for (const auto& weak : subscribers_) {
    if (auto sub = weak.lock()) {
      total += sub->dropped();
    }
  }
  return total;
}

}  // namespace sessions
}  // namespace skit::supervisor
