// SPDX-License-Identifier: MPL-2.0
// A bounded ring of SlotDescriptors in shared memory: one producer, one consumer.
// The payload stays in its SlotPool; only the 64-byte descriptor is copied.
// Both ends may be in different, mutually distrusting processes: capacity and mode are copied
// at attach, indices are masked, and descriptors and the sticky format are copied word by
// word with atomic accesses, so a peer that scribbles over the ring yields bad descriptors
// (which readers check against their pool) but no out-of-bounds access and no data race.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
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

  [[nodiscard]] std::uint32_t capacity() const { return capacity_; }
  [[nodiscard]] ConnectionMode mode() const { return mode_; }
  [[nodiscard]] std::string_view producer_doorbell() const;
  [[nodiscard]] std::string_view consumer_doorbell() const;
  void set_producer_doorbell(std::string_view endpoint);
  void set_consumer_doorbell(std::string_view endpoint);
  /// Descriptors in the ring, at most capacity() whatever the indices say.
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] bool full() const { return size() >= capacity_; }

  // --- producer ---
  /// Appends a descriptor; false if the ring is full, or corrupt() (the consumer's tail is
  /// impossible: behind by more than the capacity, or ahead of what was written).
  bool try_push(const SlotDescriptor& descriptor);
  /// Best effort: removes the oldest descriptor so the caller can release its slot.
  bool drop_oldest(SlotDescriptor& dropped);
  /// After a push: true if the consumer sleeps and must be woken (clears its flag).
  bool take_consumer_wakeup();
  void set_producer_waiting(bool waiting);

  // --- consumer ---
  /// False when empty, and when the indices are impossible (the producer's head more than a
  /// ring ahead of tail): then corrupt() says so and the ring yields nothing more.
  bool try_pop(SlotDescriptor& out);
  /// Either side found indices that no honest peer writes; the ring carries nothing more.
  [[nodiscard]] bool corrupt() const { return corrupt_; }
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
  static SlotDescriptor load(SlotDescriptor& entry);
  static void store(SlotDescriptor& entry, const SlotDescriptor& d);

  RingHeader* header_ = nullptr;
  SlotDescriptor* entries_ = nullptr;
  StickyHeader* sticky_ = nullptr;
  std::uint32_t capacity_ = 0;  // copied at attach: never re-read from shared memory
  std::string producer_doorbell_, consumer_doorbell_;  // likewise, checked
  ConnectionMode mode_{};
  std::uint64_t mask_ = 0;
  bool corrupt_ = false;
  std::uint64_t head_ = 0;         // producer: the next index it writes (shared `head` mirrors it)
  std::uint64_t cached_tail_ = 0;  // producer's last view of tail (only grows)
  std::uint64_t cached_head_ = 0;  // consumer's last view of head (only grows)
};

}  // namespace skit::ipc
