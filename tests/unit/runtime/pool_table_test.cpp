// SPDX-License-Identifier: MPL-2.0
#include "skit/runtime/pool_table.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"

namespace skit::runtime {
namespace {

TEST(PoolTable, APoolNotYetMappedIsOpenedByItsNameOnFirstUse) {
  // A live session adds pools while the worker runs: a consumer meets the new id first.
  const std::string prefix = "skit-" + std::to_string(::getpid()) + "-pooltable-p";
  auto seg = ipc::SharedSegment::create(prefix + "7", ipc::SlotPool::bytes_for(4, 64)).value();
  ipc::SlotPool::init(seg.data(), seg.size(), 4, 64, "ipc://@owner");
  PoolTable table;
  EXPECT_EQ(table.find(7), nullptr) << "without a prefix, unknown ids stay unknown";

  table.set_name_prefix(prefix);

  ipc::SlotPool* pool = table.find(7);
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->slot_count(), 4U);
  EXPECT_EQ(table.find(7), pool);
  EXPECT_EQ(table.find(8), nullptr) << "no such segment";
}

TEST(PoolTable, AdoptingAPoolAgainKeepsThePointerReadersHold) {
  auto seg = ipc::SharedSegment::create("skit-" + std::to_string(::getpid()) + "-pooltable-a",
                                        ipc::SlotPool::bytes_for(4, 64))
                 .value();
  ipc::SlotPool pool = ipc::SlotPool::init(seg.data(), seg.size(), 4, 64, "ipc://@owner");
  PoolTable table;
  ASSERT_TRUE(table.adopt(3, pool).is_ok());
  ipc::SlotPool* held = table.find(3);

  ASSERT_TRUE(table.adopt(3, pool).is_ok());  // a restarted worker's pool, same segment

  EXPECT_EQ(table.find(3), held);
}

TEST(PoolTable, IdsBeyondTheTableAreRefused) {
  auto seg = ipc::SharedSegment::create("skit-" + std::to_string(::getpid()) + "-pooltable-x",
                                        ipc::SlotPool::bytes_for(4, 64))
                 .value();
  ipc::SlotPool pool = ipc::SlotPool::init(seg.data(), seg.size(), 4, 64, "ipc://@owner");
  PoolTable table;

  const Status s = table.adopt(1U << 20, pool);

  EXPECT_EQ(s.code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(table.find(1U << 20), nullptr);
}

}  // namespace
}  // namespace skit::runtime
