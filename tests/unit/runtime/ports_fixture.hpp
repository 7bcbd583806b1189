// SPDX-License-Identifier: MPL-2.0
// Shared by the tests of the runtime's parts (input side, output side, rewiring): real shared
// memory rings and pools in this process, a PortContext on the test thread, and a hand-driven
// producer or consumer on the other end of each ring. Header-only.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "port_context.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"
#include "skit/runtime/pool_table.hpp"

namespace skit::runtime::test {

inline std::string unique_name(const std::string& what) {
  static std::atomic<int> n{0};
  return "skit-" + std::to_string(::getpid()) + "-pt" + std::to_string(n++) + "-" + what;
}

/// Doorbell names are never reused: ZeroMQ releases a bound name asynchronously.
inline std::string bell(const std::string& name) {
  static std::atomic<int> n{0};
  return ipc::doorbell_endpoint(std::to_string(::getpid()) + "-pt" + std::to_string(n++), name);
}

inline std::unique_ptr<ipc::SharedSegment> open_segment(const std::string& name) {
  return std::make_unique<ipc::SharedSegment>(ipc::SharedSegment::open(name).value());
}

inline std::shared_ptr<spdlog::logger> test_logger() {
  auto logger = spdlog::get("node.ports-test");
  return logger ? logger : spdlog::default_logger()->clone("node.ports-test");
}

/// Pools and rings, created (and unlinked at the end) by the test, as the supervisor does.
class Shm {
 public:
  std::uint32_t add_pool(const std::string& owner_doorbell, std::uint32_t slots = 16,
                         std::uint32_t slot_size = 256) {
    const auto index = static_cast<std::uint32_t>(pool_views_.size());
    auto seg =
        ipc::SharedSegment::create(unique_name("p"), ipc::SlotPool::bytes_for(slots, slot_size))
            .value();
    ipc::SlotPool pool =
        ipc::SlotPool::init(seg.data(), seg.size(), slots, slot_size, owner_doorbell);
    EXPECT_TRUE(pools.adopt(index, pool).is_ok());
    pool_views_.push_back(pool);
    segments_.push_back(std::move(seg));
    return index;
  }
  std::string add_ring(const std::string& producer, const std::string& consumer,
                       ConnectionMode mode = ConnectionMode::kReliable,
                       std::uint32_t capacity = 16) {
    auto seg = ipc::SharedSegment::create(unique_name("r"), ipc::Ring::bytes_for(capacity)).value();
    ipc::Ring::init(seg.data(), seg.size(), capacity, mode, producer, consumer);
    const std::string name = seg.name();
    segments_.push_back(std::move(seg));
    return name;
  }
  /// The test's own view of a ring (its producer or consumer end).
  ipc::Ring ring(const std::string& name) {
    for (auto& seg : segments_) {
      if (seg.name() == name) {
        return ipc::Ring::attach(seg.data(), seg.size()).value();
      }
    }
    ADD_FAILURE() << "no ring " << name;
    return {};
  }
  /// The test's own view of a pool, with its own allocation cursor (a producer's).
  ipc::SlotPool& pool(std::uint32_t index) { return pool_views_.at(index); }

  PoolTable pools;

 private:
  std::vector<ipc::SharedSegment> segments_;
  std::vector<ipc::SlotPool> pool_views_;
};

/// A producer driven by the test: numbered 8-byte packets, markers, formats.
class HandProducer {
 public:
  HandProducer(Shm& shm, std::uint32_t pool_index) : shm_(shm), pool_index_(pool_index) {}

  /// Pushes packet `value` (one slot reference for the one consumer).
  void packet(ipc::Ring& ring, std::uint64_t value) {
    ipc::SlotPool& pool = shm_.pool(pool_index_);
    const auto slot = pool.try_acquire();
    ASSERT_TRUE(slot.has_value()) << "the test's pool is exhausted";
    std::memcpy(pool.slot_data(*slot).data(), &value, sizeof value);
    ipc::SlotDescriptor d;
    d.pool = pool_index_;
    d.slot = *slot;
    d.size = sizeof value;
    d.sequence = sequence_++;
    d.pts_us = static_cast<std::int64_t>(value) * 1000;
    d.duration_us = 1000;
    ASSERT_TRUE(ring.try_push(d)) << "the test's ring is full";
  }
  void format(ipc::Ring& ring, const StreamInfo& info) {
    ipc::SlotPool& pool = shm_.pool(pool_index_);
    const auto bytes = info.serialize();
    const auto slot = pool.try_acquire();
    ASSERT_TRUE(slot.has_value());
    ASSERT_LE(bytes.size(), pool.slot_size());
    std::memcpy(pool.slot_data(*slot).data(), bytes.data(), bytes.size());
    ipc::SlotDescriptor d;
    d.pool = pool_index_;
    d.slot = *slot;
    d.size = static_cast<std::uint32_t>(bytes.size());
    d.sequence = sequence_++;
    d.flags = kFlagStreamInfo;
    ASSERT_TRUE(ring.try_push(d));
  }
  void marker(ipc::Ring& ring, std::uint8_t control) {
    ipc::SlotDescriptor d;
    d.control = control;
    d.sequence = sequence_++;
    ASSERT_TRUE(ring.try_push(d));
  }

 private:
  Shm& shm_;
  std::uint32_t pool_index_;
  std::uint64_t sequence_ = 0;
};

/// The 8-byte number a packet carries.
inline std::uint64_t value_of(Shm& shm, const ipc::SlotDescriptor& d) {
  std::uint64_t v = 0;
  ipc::SlotPool* pool = shm.pools.find(d.pool);
  std::memcpy(&v, pool->slot_data(d.slot).data() + d.offset, sizeof v);
  return v;
}

inline RunnerOptions live_options() {
  RunnerOptions o;
  o.dynamic = true;
  o.idle_wait = std::chrono::milliseconds(5);
  return o;
}

inline RunnerOptions static_options() {
  RunnerOptions o;
  o.idle_wait = std::chrono::milliseconds(5);
  return o;
}

}  // namespace skit::runtime::test
