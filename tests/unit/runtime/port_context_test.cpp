// SPDX-License-Identifier: MPL-2.0
// What a runner's ports share: the mailbox of live changes, slot release and the hang watch.
#include "port_context.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "ports_fixture.hpp"

namespace skit::runtime {
namespace {

using namespace std::chrono_literals;

Mailbox::Item tune(std::uint64_t op_id) {
  Mailbox::Item item;
  item.is_tune = true;
  item.op_id = op_id;
  return item;
}

std::vector<std::uint64_t> op_ids(const std::deque<Mailbox::Item>& items) {
  std::vector<std::uint64_t> ids;
  for (const auto& item : items) {
    ids.push_back(item.op_id);
  }
  return ids;
}

TEST(Mailbox, ItemsPutBackStayAheadOfThosePostedSince) {
  Mailbox mailbox;
  EXPECT_FALSE(mailbox.pending());
  mailbox.post(tune(1));
  mailbox.post(tune(2));
  EXPECT_TRUE(mailbox.pending());

  std::deque<Mailbox::Item> taken = mailbox.take();
  EXPECT_FALSE(mailbox.pending());
  mailbox.post(tune(3));
  taken.pop_front();  // 1 was applied, 2 could not be yet
  mailbox.put_back(std::move(taken));

  EXPECT_TRUE(mailbox.pending());
  EXPECT_EQ(op_ids(mailbox.take()), (std::vector<std::uint64_t>{2, 3}));
}

TEST(Mailbox, ItemsPostedFromManyThreadsAllArriveInEachThreadsOrder) {
  Mailbox mailbox;
  std::vector<std::thread> posters;
  for (std::uint64_t t = 0; t < 4; ++t) {
    posters.emplace_back([&mailbox, t] {
      for (std::uint64_t i = 0; i < 500; ++i) {
        mailbox.post(tune(t * 1000 + i));
      }
    });
  }
  std::vector<std::uint64_t> got;
  while (got.size() < 2000) {
    for (auto& item : mailbox.take()) {
      got.push_back(item.op_id);
    }
  }
  for (auto& p : posters) {
    p.join();
  }

  std::vector<std::uint64_t> next(4, 0);
  for (std::uint64_t id : got) {
    ASSERT_EQ(id % 1000, next[id / 1000]++) << "out of order from thread " << id / 1000;
  }
}

TEST(PortContext, ReleasingTheLastReferenceWakesAPoolOwnerWaitingForASlot) {
  test::Shm shm;
  const std::string owner_endpoint = test::bell("owner");
  ipc::Doorbell owner(owner_endpoint);
  owner.bind();
  const std::uint32_t index = shm.add_pool(owner_endpoint);
  ipc::SlotPool& pool = shm.pool(index);
  PortContext context(test::bell("consumer"), shm.pools, test::live_options(), test::test_logger());
  ipc::SlotDescriptor d;
  d.pool = index;
  d.slot = *pool.try_acquire();
  pool.set_refs(d.slot, 2);
  pool.set_owner_waiting(true);

  context.release(d);
  EXPECT_FALSE(owner.wait(20ms)) << "a reference is still out";
  context.release(d);
  ipc::SlotDescriptor marker;  // markers carry no slot: nothing to give back
  marker.control = ipc::kControlEndOfStream;
  context.release(marker);

  EXPECT_TRUE(owner.wait(5s));
  EXPECT_EQ(pool.slots_in_use(), 0U);
}

TEST(PortContext, TimeSpentInsideTheRuntimeDoesNotCountAsNodeTime) {
  test::Shm shm;
  PortContext context(test::bell("hang"), shm.pools, test::live_options(), test::test_logger());
  EXPECT_EQ(context.busy_since_ns.load(), 0);
  {
    NodeCall node(context);
    EXPECT_NE(context.busy_since_ns.load(), 0);
    {
      KernelCall kernel(context);  // e.g. a loan blocked by backpressure
      EXPECT_EQ(context.busy_since_ns.load(), 0);
    }
    EXPECT_NE(context.busy_since_ns.load(), 0) << "back in node code";
  }
  EXPECT_EQ(context.busy_since_ns.load(), 0);
  {
    KernelCall kernel(context);  // outside node code, e.g. sleep_until() from the loop
  }
  EXPECT_EQ(context.busy_since_ns.load(), 0);
}

}  // namespace
}  // namespace skit::runtime
