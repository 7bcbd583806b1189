// SPDX-License-Identifier: MPL-2.0
// The slot pools of a pipeline as one process sees them, by pool id.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "skit/core/status.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"

namespace skit::runtime {

/// Every slot pool of a pipeline, mapped in this process, indexed by the pool id that
/// descriptors carry. Consumers release (and forwarders re-reference) slots through it.
/// Thread-safe: live sessions add pools while runners read, so with a name prefix set, a
/// pool not yet mapped here is opened on first use ("<prefix><index>").
class PoolTable {
 public:
  PoolTable();
  ~PoolTable();
  PoolTable(const PoolTable&) = delete;
  PoolTable& operator=(const PoolTable&) = delete;

  Status open(std::uint32_t index, const std::string& segment_name);
  /// Adopts a segment this process created (the supervisor's own view).
  Status adopt(std::uint32_t index, ipc::SlotPool pool);
  /// Lets find() map unknown pools by name.
  void set_name_prefix(std::string prefix);
  [[nodiscard]] ipc::SlotPool* find(std::uint32_t index);

 private:
  static constexpr std::uint32_t kChunk = 256;
  static constexpr std::uint32_t kChunks = 1024;  // 262144 pool ids
  struct Chunk;
  ipc::SlotPool* lookup(std::uint32_t index) const;
  Status insert_locked(std::uint32_t index, ipc::SlotPool pool);
  std::unique_ptr<std::atomic<Chunk*>[]> chunks_;
  std::mutex mutex_;  // writers
  std::string prefix_;
  std::vector<std::unique_ptr<Chunk>> owned_;
  std::vector<ipc::SharedSegment> segments_;
};

}  // namespace skit::runtime
