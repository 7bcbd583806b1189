// SPDX-License-Identifier: MPL-2.0
#include "skit/ipc/slot_pool.hpp"

#include "skit/ipc/doorbell.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace skit::ipc {

namespace {
constexpr std::size_t align_up(std::size_t v, std::size_t a) { return (v + a - 1) / a * a; }

void copy_endpoint(char (&dst)[kEndpointBytes], std::string_view src) {
  std::memset(dst, 0, kEndpointBytes);
  std::memcpy(dst, src.data(), std::min(src.size(), kEndpointBytes - 1));
}
}  // namespace

std::size_t SlotPool::bytes_for(std::uint32_t slot_count, std::uint32_t slot_size) {
  const std::size_t states = align_up(sizeof(PoolHeader) + slot_count * sizeof(SlotState),
                                      kCacheLine);
  return states + static_cast<std::size_t>(slot_count) * align_up(slot_size, kCacheLine);
}

SlotPool SlotPool::init(void* memory, std::size_t bytes, std::uint32_t slot_count,
                        std::uint32_t slot_size, std::string_view owner_doorbell) {
  auto* header = new (memory) PoolHeader{};
  header->magic = kPoolMagic;
  header->version = kLayoutVersion;
  header->slot_count = slot_count;
  header->slot_size = static_cast<std::uint32_t>(align_up(slot_size, kCacheLine));
  header->states_offset = sizeof(PoolHeader);
  header->data_offset = align_up(sizeof(PoolHeader) + slot_count * sizeof(SlotState), kCacheLine);
  header->total_bytes = bytes;
  copy_endpoint(header->owner_doorbell, owner_doorbell);
  header->owner_waiting.store(0);
  header->exhausted_waits.store(0);
  auto* states = reinterpret_cast<SlotState*>(static_cast<std::byte*>(memory) +
                                              header->states_offset);
  for (std::uint32_t i = 0; i < slot_count; ++i) {
    new (&states[i]) SlotState{};
    states[i].refcount.store(0, std::memory_order_relaxed);
  }
  std::atomic_thread_fence(std::memory_order_release);
  return *attach(memory, bytes);
}

Result<SlotPool> SlotPool::attach(void* memory, std::size_t bytes) {
  auto* header = static_cast<PoolHeader*>(memory);
  if (bytes < sizeof(PoolHeader) || header->magic != kPoolMagic) {
    return Status(ErrorCode::kInternal, "not a skit slot pool");
  }
  if (header->version != kLayoutVersion) {
    return Status(ErrorCode::kInternal, "slot pool layout version mismatch");
  }
  // One read of each field: what we check is what we use.
  const std::uint32_t count = header->slot_count;
  const std::uint32_t size = header->slot_size;
  const std::uint64_t states_offset = header->states_offset;
  const std::uint64_t data_offset = header->data_offset;
  const std::uint64_t want_data = align_up(sizeof(PoolHeader) + std::size_t{count} * sizeof(SlotState),
                                           kCacheLine);
  if (states_offset != sizeof(PoolHeader) || data_offset != want_data || size % kCacheLine != 0) {
    return Status(ErrorCode::kInternal, "slot pool geometry is malformed");
  }
  const std::uint64_t need = data_offset + std::uint64_t{count} * size;  // < 2^64: both < 2^32
  if (need > bytes) {
    return Status(ErrorCode::kInternal, "slot pool segment is truncated");
  }
  SlotPool pool;
  pool.owner_doorbell_ = std::string(header->owner_doorbell, ::strnlen(header->owner_doorbell, kEndpointBytes));
  if (!valid_doorbell_endpoint(pool.owner_doorbell_)) {
    return Status(ErrorCode::kInternal, "slot pool has a malformed doorbell endpoint");
  }
  pool.header_ = header;
  pool.states_ = reinterpret_cast<SlotState*>(static_cast<std::byte*>(memory) + states_offset);
  pool.data_ = static_cast<std::byte*>(memory) + data_offset;
  pool.slot_count_ = count;
  pool.slot_size_ = size;
  return pool;
}

std::string_view SlotPool::owner_doorbell() const { return owner_doorbell_; }

void SlotPool::set_owner_doorbell(std::string_view endpoint) {
  copy_endpoint(header_->owner_doorbell, endpoint);
  owner_doorbell_ = std::string(header_->owner_doorbell, ::strnlen(header_->owner_doorbell, kEndpointBytes));
}

std::optional<std::uint32_t> SlotPool::try_acquire() {
  const std::uint32_t n = slot_count_;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t slot = cursor_;
    cursor_ = cursor_ + 1 == n ? 0 : cursor_ + 1;
    // Only the owner turns 0 into non-zero, so a plain load+store is race free here.
    if (states_[slot].refcount.load(std::memory_order_acquire) == 0) {
      states_[slot].refcount.store(1, std::memory_order_relaxed);
      return slot;
    }
  }
  return std::nullopt;
}

std::span<std::byte> SlotPool::slot_data(std::uint32_t slot) const {
  if (slot >= slot_count_) {
    return {};
  }
  return {data_ + static_cast<std::size_t>(slot) * slot_size_, slot_size_};
}

bool SlotPool::add_refs(std::uint32_t slot, std::uint32_t count) {
  if (slot >= slot_count_) {
    return false;
  }
  // Never from zero: a slot nobody holds may be the owner's to reuse at any moment.
  std::uint32_t v = states_[slot].refcount.load(std::memory_order_relaxed);
  do {
    if (v == 0 || v > UINT32_MAX - count) {
      return false;
    }
  } while (!states_[slot].refcount.compare_exchange_weak(v, v + count, std::memory_order_relaxed));
  return true;
}

void SlotPool::set_refs(std::uint32_t slot, std::uint32_t count) {
  if (slot < slot_count_) {
    states_[slot].refcount.store(count, std::memory_order_release);
  }
}

bool SlotPool::release(std::uint32_t slot) {
  if (slot >= slot_count_) {
    ++invalid_releases_;
    return false;
  }
  // Never below zero (a double release, or a count rewritten by a peer): refused, counted.
  // seq_cst pairs with set_owner_waiting(true) + re-scan on the owner side (Dekker).
  std::uint32_t v = states_[slot].refcount.load(std::memory_order_seq_cst);
  do {
    if (v == 0) {
      ++invalid_releases_;
      return false;
    }
  } while (!states_[slot].refcount.compare_exchange_weak(v, v - 1, std::memory_order_seq_cst));
  if (v != 1) {
    return false;
  }
  if (header_->owner_waiting.load(std::memory_order_seq_cst) == 0) {
    return false;
  }
  return header_->owner_waiting.exchange(0, std::memory_order_seq_cst) != 0;
}

void SlotPool::set_owner_waiting(bool waiting) {
  if (waiting) {
    header_->exhausted_waits.fetch_add(1, std::memory_order_relaxed);
  }
  header_->owner_waiting.store(waiting ? 1 : 0, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // the re-scan must not move above
}

std::uint32_t SlotPool::refcount(std::uint32_t slot) const {
  return slot < slot_count_ ? states_[slot].refcount.load(std::memory_order_acquire) : 0;
}

std::uint32_t SlotPool::slots_in_use() const {
  std::uint32_t n = 0;
  for (std::uint32_t i = 0; i < slot_count_; ++i) {
    n += states_[i].refcount.load(std::memory_order_acquire) != 0 ? 1 : 0;
  }
  return n;
}

}  // namespace skit::ipc
