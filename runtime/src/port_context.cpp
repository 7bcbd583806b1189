// SPDX-License-Identifier: MPL-2.0
#include "port_context.hpp"

#include <spdlog/spdlog.h>

#include "output_port.hpp"

namespace skit::runtime {

std::int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Mailbox::post(Item item) {
  {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
  }
  pending_.store(true, std::memory_order_release);
}

std::deque<Mailbox::Item> Mailbox::take() {
  std::deque<Item> items;
  std::lock_guard lock(mutex_);
  items.swap(items_);
  pending_.store(false, std::memory_order_release);
  return items;
}

void Mailbox::put_back(std::deque<Item> items) {
  if (items.empty()) {
    return;
  }
  std::lock_guard lock(mutex_);
  while (!items.empty()) {
    items_.push_front(std::move(items.back()));
    items.pop_back();
  }
  pending_.store(true, std::memory_order_release);
}

NodeStats RunnerCounters::snapshot() const {
  return NodeStats{
      packets_in.load(std::memory_order_relaxed), packets_out.load(std::memory_order_relaxed),
      bytes_in.load(std::memory_order_relaxed),   bytes_out.load(std::memory_order_relaxed),
      dropped.load(std::memory_order_relaxed),    media_time_us.load(std::memory_order_relaxed),
      telemetry_dropped.load(std::memory_order_relaxed)};
}

PortContext::PortContext(std::string doorbell, PoolTable& pools, RunnerOptions options,
                         std::shared_ptr<spdlog::logger> logger)
    : doorbell_(std::move(doorbell)),
      pools_(pools),
      options_(options),
      logger_(std::move(logger)) {}

void PortContext::release(const ipc::SlotDescriptor& d) {
  if (d.slot == ipc::kNoSlot) {
    return;
  }
  ipc::SlotPool* pool = pools_.find(d.pool);
  if (pool != nullptr && pool->release(d.slot)) {
    doorbell_.ring(pool->owner_doorbell());
  }
}

void PortContext::defer_wakeup(OutputPort& port) {
  deferred_wakeups_.push_back(&port);
}

void PortContext::flush_wakeups() {
  for (OutputPort* port : deferred_wakeups_) {
    port->flush_wakeups();
  }
  deferred_wakeups_.clear();
}

void PortContext::sleep(std::chrono::microseconds timeout) {
  flush_wakeups();
  doorbell_.wait(timeout);
}

}  // namespace skit::runtime
