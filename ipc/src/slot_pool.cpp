// SPDX-License-Identifier: MPL-2.0
#include "skit/ipc/slot_pool.hpp"

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
  const std::size_t need = header->data_offset +
                           static_cast<std::size_t>(header->slot_count) * header->slot_size;
  if (need > bytes) {
    return Status(ErrorCode::kInternal, "slot pool segment is truncated");
  }
  SlotPool pool;
  pool.header_ = header;
  pool.states_ = reinterpret_cast<SlotState*>(static_cast<std::byte*>(memory) +
                                              header->states_offset);
  pool.data_ = static_cast<std::byte*>(memory) + header->data_offset;
  return pool;
}

std::string_view SlotPool::owner_doorbell() const {
  return {header_->owner_doorbell, ::strnlen(header_->owner_doorbell, kEndpointBytes)};
}

void SlotPool::set_owner_doorbell(std::string_view endpoint) {
  copy_endpoint(header_->owner_doorbell, endpoint);
}

std::optional<std::uint32_t> SlotPool::try_acquire() {
  const std::uint32_t n = header_->slot_count;
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
  return {data_ + static_cast<std::size_t>(slot) * header_->slot_size, header_->slot_size};
}

void SlotPool::add_refs(std::uint32_t slot, std::uint32_t count) {
  states_[slot].refcount.fetch_add(count, std::memory_order_relaxed);
}

void SlotPool::set_refs(std::uint32_t slot, std::uint32_t count) {
  states_[slot].refcount.store(count, std::memory_order_release);
}

bool SlotPool::release(std::uint32_t slot) {
  // seq_cst pairs with set_owner_waiting(true) + re-scan on the owner side (Dekker).
  if (states_[slot].refcount.fetch_sub(1, std::memory_order_seq_cst) != 1) {
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
  return states_[slot].refcount.load(std::memory_order_acquire);
}

std::uint32_t SlotPool::slots_in_use() const {
  std::uint32_t n = 0;
  for (std::uint32_t i = 0; i < header_->slot_count; ++i) {
    n += states_[i].refcount.load(std::memory_order_acquire) != 0 ? 1 : 0;
  }
  return n;
}

}  // namespace skit::ipc
