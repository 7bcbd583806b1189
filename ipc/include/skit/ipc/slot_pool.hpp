// SPDX-License-Identifier: MPL-2.0
// A pool of fixed-size payload slots in shared memory, owned by one producer (an output pin).
// Slots are reference counted so that one payload feeds any number of consumers.
// The segment is shared with workers that may be compromised: its geometry is copied into
// process memory at attach and never read again, and every slot index is bounds-checked, so
// whatever a worker writes over the header or the counts cannot make a reader (the server's
// host-side nodes included) touch memory outside the pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "skit/core/status.hpp"
#include "skit/ipc/layout.hpp"

namespace skit::ipc {

class SlotPool {
 public:
  /// Bytes a segment needs for `slot_count` slots of `slot_size` bytes.
  static std::size_t bytes_for(std::uint32_t slot_count, std::uint32_t slot_size);
  /// Constructs the header and states in fresh memory (supervisor side).
  static SlotPool init(void* memory, std::size_t bytes, std::uint32_t slot_count,
                       std::uint32_t slot_size, std::string_view owner_doorbell);
  /// Checks magic, version and bounds of an existing pool.
  static Result<SlotPool> attach(void* memory, std::size_t bytes);

  SlotPool() = default;

  [[nodiscard]] std::uint32_t slot_count() const { return slot_count_; }
  [[nodiscard]] std::uint32_t slot_size() const { return slot_size_; }
  [[nodiscard]] bool valid_slot(std::uint32_t slot) const { return slot < slot_count_; }
  [[nodiscard]] std::string_view owner_doorbell() const;
  void set_owner_doorbell(std::string_view endpoint);

  /// Owner only: claims a free slot with refcount 1, or nothing if all are in use.
  std::optional<std::uint32_t> try_acquire();
  /// The slot's bytes; empty for an index outside the pool.
  [[nodiscard]] std::span<std::byte> slot_data(std::uint32_t slot) const;
  /// Adds `count` references to a slot the caller already holds a reference on; false (and
  /// nothing changed) for an index outside the pool or a slot that holds none.
  [[nodiscard]] bool add_refs(std::uint32_t slot, std::uint32_t count);
  /// Sets the refcount of a slot the owner holds alone (after try_acquire) to `count`.
  void set_refs(std::uint32_t slot, std::uint32_t count);
  /// Drops one reference. Returns true when the slot became free and the owner is waiting
  /// for one: the caller must then ring the owner's doorbell. An index outside the pool, or a
  /// slot with no reference left (a double release), changes nothing and is counted.
  [[nodiscard]] bool release(std::uint32_t slot);
  /// Releases refused because the index or the count was wrong (since attach).
  [[nodiscard]] std::uint64_t invalid_releases() const { return invalid_releases_; }
  /// Owner side of the sleep handshake: announce waiting, then re-check for a free slot.
  void set_owner_waiting(bool waiting);
  [[nodiscard]] std::uint32_t refcount(std::uint32_t slot) const;
  [[nodiscard]] std::uint32_t slots_in_use() const;

 private:
  PoolHeader* header_ = nullptr;
  SlotState* states_ = nullptr;
  std::byte* data_ = nullptr;
  std::uint32_t slot_count_ = 0;  // copied at attach: never re-read from shared memory
  std::string owner_doorbell_;    // likewise, checked
  std::uint32_t slot_size_ = 0;
  std::uint32_t cursor_ = 0;  // owner-local scan position
  std::uint64_t invalid_releases_ = 0;
};

}  // namespace skit::ipc
