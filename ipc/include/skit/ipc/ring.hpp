// SPDX-License-Identifier: MPL-2.0
// A bounded ring of SlotDescriptors in shared memory: one producer, one consumer.
// The payload stays in its SlotPool; only the 64-byte descriptor is copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "skit/core/pins.hpp"
#include "skit/core/status.hpp"
#include "skit/ipc/layout.hpp"

namespace skit::ipc {

class Ring {
 public:
  static std::size_t bytes_for(std::uint32_t capacity);
  /// Constructs a ring in fresh memory. `capacity` must be a power of two.
  static Ring init(void* memory, std::size_t bytes, std::uint32_t capacity, ConnectionMode mode,
                   std::string_view producer_doorbell, std::string_view consumer_doorbell);
  static Result<Ring> attach(void* memory, std::size_t bytes);

  Ring() = default;

  [[nodiscard]] std::uint32_t capacity() const { return header_->capacity; }
  [[nodiscard]] ConnectionMode mode() const { return static_cast<ConnectionMode>(header_->mode); }
  [[nodiscard]] std::string_view producer_doorbell() const;
  [[nodiscard]] std::string_view consumer_doorbell() const;
  void set_producer_doorbell(std::string_view endpoint);
  void set_consumer_doorbell(std::string_view endpoint);
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] bool full() const { return size() >= header_->capacity; }

  // --- producer ---
  /// Appends a descriptor; false if the ring is full.
  bool try_push(const SlotDescriptor& descriptor);
  /// Best effort: removes the oldest descriptor so the caller can release its slot.
  bool drop_oldest(SlotDescriptor& dropped);
  /// After a push: true if the consumer sleeps and must be woken (clears its flag).
  bool take_consumer_wakeup();
  void set_producer_waiting(bool waiting);

  // --- consumer ---
  bool try_pop(SlotDescriptor& out);
  /// After a pop: true if the producer sleeps on a full ring and must be woken.
  bool take_producer_wakeup();
  void set_consumer_waiting(bool waiting);

  /// Producer: records the stream's current format (see StickyHeader); false if too large.
  bool set_sticky(std::span<const std::byte> bytes, std::uint32_t kind);
  /// Consumer: the last recorded format, if any.
  bool sticky(std::vector<std::byte>& bytes, std::uint32_t& kind) const;

  [[nodiscard]] std::uint64_t dropped() const;
  [[nodiscard]] std::uint64_t pushed() const;

 private:
  RingHeader* header_ = nullptr;
  SlotDescriptor* entries_ = nullptr;
  StickyHeader* sticky_ = nullptr;
  std::uint64_t mask_ = 0;
  std::uint64_t cached_tail_ = 0;  // producer's last view of tail (only grows)
  std::uint64_t cached_head_ = 0;  // consumer's last view of head (only grows)
};

}  // namespace skit::ipc
