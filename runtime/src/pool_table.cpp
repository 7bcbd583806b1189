// SPDX-License-Identifier: MPL-2.0
#include "skit/runtime/pool_table.hpp"

#include <array>

namespace skit::runtime {

struct PoolTable::Chunk {
  std::array<std::atomic<ipc::SlotPool*>, kChunk> pools{};
  std::array<std::unique_ptr<ipc::SlotPool>, kChunk> owned;
};

PoolTable::PoolTable() : chunks_(new std::atomic<Chunk*>[kChunks]) {
  for (std::uint32_t i = 0; i < kChunks; ++i) {
    chunks_[i].store(nullptr, std::memory_order_relaxed);
  }
}

PoolTable::~PoolTable() = default;

ipc::SlotPool* PoolTable::lookup(std::uint32_t index) const {
  if (index / kChunk >= kChunks) {
    return nullptr;
  }
  Chunk* chunk = chunks_[index / kChunk].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : chunk->pools[index % kChunk].load(std::memory_order_acquire);
}

Status PoolTable::insert_locked(std::uint32_t index, ipc::SlotPool pool) {
  if (index / kChunk >= kChunks) {
    return Status(ErrorCode::kResourceExhausted,
                  "pool id " + std::to_string(index) + " out of range");
  }
  Chunk* chunk = chunks_[index / kChunk].load(std::memory_order_acquire);
  if (chunk == nullptr) {
    owned_.push_back(std::make_unique<Chunk>());
    chunk = owned_.back().get();
    chunks_[index / kChunk].store(chunk, std::memory_order_release);
  }
  auto& slot = chunk->owned[index % kChunk];
  if (slot) {
    *slot = pool;  // re-adopted (same segment): the pointer stays valid for readers
  } else {
    slot = std::make_unique<ipc::SlotPool>(pool);
  }
  chunk->pools[index % kChunk].store(slot.get(), std::memory_order_release);
  return Status::ok();
}

Status PoolTable::open(std::uint32_t index, const std::string& segment_name) {
  std::lock_guard lock(mutex_);
  if (lookup(index) != nullptr) {
    return Status::ok();
  }
  auto segment = ipc::SharedSegment::open(segment_name);
  if (!segment) {
    return segment.status();
  }
  auto pool = ipc::SlotPool::attach(segment->data(), segment->size());
  if (!pool) {
    return pool.status();
  }
  SKIT_RETURN_IF_ERROR(insert_locked(index, *pool));
  segments_.push_back(std::move(segment).value());
  return Status::ok();
}

Status PoolTable::adopt(std::uint32_t index, ipc::SlotPool pool) {
  std::lock_guard lock(mutex_);
  return insert_locked(index, pool);
}

void PoolTable::set_name_prefix(std::string prefix) {
  std::lock_guard lock(mutex_);
  prefix_ = std::move(prefix);
}

ipc::SlotPool* PoolTable::find(std::uint32_t index) {
  if (ipc::SlotPool* pool = lookup(index)) {
    return pool;
  }
  std::string name;
  {
    std::lock_guard lock(mutex_);
    if (prefix_.empty()) {
      return nullptr;
    }
    name = prefix_ + std::to_string(index);
  }
  if (!open(index, name).is_ok()) {
    return nullptr;
  }
  return lookup(index);
}

}  // namespace skit::runtime
