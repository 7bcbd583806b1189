// SPDX-License-Identifier: MPL-2.0
// Ring and slot pool behaviour in one process (threads), so ASan/UBSan see every access.
// Cross-process behaviour is covered by tests/integration.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"

namespace skit::ipc {
namespace {

std::string unique_name(const std::string& what) {
  static int counter = 0;
  return "skit-" + std::to_string(::getpid()) + "-t" + std::to_string(counter++) + "-" + what;
}

struct RingFixture {
  explicit RingFixture(std::uint32_t capacity, ConnectionMode mode = ConnectionMode::kReliable)
      : segment(SharedSegment::create(unique_name("ring"), Ring::bytes_for(capacity)).value()),
        ring(Ring::init(segment.data(), segment.size(), capacity, mode, "ipc://@p", "ipc://@c")) {}
  SharedSegment segment;
  Ring ring;
};

SlotDescriptor desc(std::uint64_t seq) {
  SlotDescriptor d;
  d.slot = static_cast<std::uint32_t>(seq % 7);
  d.sequence = seq;
  d.size = 100;
  return d;
}

TEST(Ring, StartsEmptyAndRefusesPushWhenFull) {
  RingFixture f(4);
  EXPECT_TRUE(f.ring.empty());
  SlotDescriptor out;
  EXPECT_FALSE(f.ring.try_pop(out));
  for (std::uint64_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(f.ring.try_push(desc(i)));
  }
  EXPECT_TRUE(f.ring.full());
  EXPECT_FALSE(f.ring.try_push(desc(4)));
  EXPECT_EQ(f.ring.size(), 4U);
}

TEST(Ring, DeliversInOrderAcrossManyWrapArounds) {
  RingFixture f(8);
  std::uint64_t next_push = 0;
  std::uint64_t next_pop = 0;
  while (next_pop < 1000) {
    // Uneven batches so head and tail cross the wrap point at different offsets.
    for (int k = 0; k < 5 && f.ring.try_push(desc(next_push)); ++k) {
      ++next_push;
    }
    SlotDescriptor out;
    for (int k = 0; k < 3 && f.ring.try_pop(out); ++k) {
      ASSERT_EQ(out.sequence, next_pop);
      ASSERT_EQ(out.slot, next_pop % 7);
      ++next_pop;
    }
  }
  EXPECT_EQ(f.ring.pushed(), next_push);
}

TEST(Ring, DropOldestRemovesTheOldestAndCountsIt) {
  RingFixture f(4, ConnectionMode::kBestEffort);
  for (std::uint64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(f.ring.try_push(desc(i)));
  }
  SlotDescriptor dropped;
  ASSERT_TRUE(f.ring.drop_oldest(dropped));
  EXPECT_EQ(dropped.sequence, 0U);
  EXPECT_EQ(f.ring.dropped(), 1U);
  EXPECT_TRUE(f.ring.try_push(desc(4)));
  SlotDescriptor out;
  ASSERT_TRUE(f.ring.try_pop(out));
  EXPECT_EQ(out.sequence, 1U);
}

TEST(Ring, WakesTheConsumerOnlyWhenItAnnouncedSleep) {
  RingFixture f(4);
  ASSERT_TRUE(f.ring.try_push(desc(0)));
  EXPECT_FALSE(f.ring.take_consumer_wakeup()) << "a busy consumer needs no doorbell";
  f.ring.set_consumer_waiting(true);
  ASSERT_TRUE(f.ring.try_push(desc(1)));
  EXPECT_TRUE(f.ring.take_consumer_wakeup());
  EXPECT_FALSE(f.ring.take_consumer_wakeup()) << "one doorbell per sleep";
}

TEST(Ring, WakesTheProducerAfterAPopFromAFullRing) {
  RingFixture f(2);
  ASSERT_TRUE(f.ring.try_push(desc(0)));
  ASSERT_TRUE(f.ring.try_push(desc(1)));
  f.ring.set_producer_waiting(true);
  SlotDescriptor out;
  ASSERT_TRUE(f.ring.try_pop(out));
  EXPECT_TRUE(f.ring.take_producer_wakeup());
  EXPECT_FALSE(f.ring.take_producer_wakeup());
}

TEST(Ring, AttachRejectsForeignMemory) {
  std::vector<std::byte> junk(4096, std::byte{0x5A});
  EXPECT_FALSE(Ring::attach(junk.data(), junk.size()).is_ok());
  EXPECT_FALSE(SlotPool::attach(junk.data(), junk.size()).is_ok());
}

TEST(SlotPool, HandsOutEverySlotOnceThenNone) {
  auto seg = SharedSegment::create(unique_name("pool"), SlotPool::bytes_for(4, 1000)).value();
  SlotPool pool = SlotPool::init(seg.data(), seg.size(), 4, 1000, "ipc://@owner");
  EXPECT_EQ(pool.slot_size() % 64, 0U) << "slots are cache-line aligned";
  EXPECT_GE(pool.slot_size(), 1000U);
  std::set<std::uint32_t> slots;
  for (int i = 0; i < 4; ++i) {
    auto s = pool.try_acquire();
    ASSERT_TRUE(s.has_value());
    slots.insert(*s);
  }
  EXPECT_EQ(slots.size(), 4U);
  EXPECT_FALSE(pool.try_acquire().has_value());
  EXPECT_EQ(pool.slots_in_use(), 4U);
  EXPECT_FALSE(pool.release(*slots.begin()));
  EXPECT_EQ(pool.try_acquire(), *slots.begin());
}

TEST(SlotPool, FanOutSlotIsFreeOnlyAfterTheLastConsumerReleases) {
  auto seg = SharedSegment::create(unique_name("pool"), SlotPool::bytes_for(2, 64)).value();
  SlotPool pool = SlotPool::init(seg.data(), seg.size(), 2, 64, "ipc://@owner");
  const auto slot = *pool.try_acquire();
  pool.set_refs(slot, 3);  // three consumers share one payload
  pool.set_owner_waiting(true);
  EXPECT_FALSE(pool.release(slot));
  EXPECT_FALSE(pool.release(slot));
  EXPECT_EQ(pool.refcount(slot), 1U);
  EXPECT_TRUE(pool.release(slot)) << "the last release wakes a waiting owner";
  EXPECT_EQ(pool.refcount(slot), 0U);
}

// A peer may rewrite the pool header after attach: the geometry in use stays what attach
// checked, and indices, double releases and refs on free slots are refused and counted.
TEST(SlotPool, GeometryIsCopiedAtAttachAndBadIndicesAreRefused) {
  auto seg = SharedSegment::create(unique_name("pool"), SlotPool::bytes_for(4, 128)).value();
  SlotPool pool = SlotPool::init(seg.data(), seg.size(), 4, 128, "ipc://@owner");
  auto* header = static_cast<PoolHeader*>(seg.data());
  header->slot_count = 0xFFFFFFF0U;  // what a compromised worker would write
  header->slot_size = 1U << 30;
  EXPECT_EQ(pool.slot_count(), 4U);
  EXPECT_EQ(pool.slot_size(), 128U);
  EXPECT_TRUE(pool.slot_data(4).empty());
  EXPECT_TRUE(pool.slot_data(0xFFFFFFF0U).empty());
  EXPECT_EQ(pool.slot_data(3).size(), 128U);
  EXPECT_FALSE(pool.release(4));
  EXPECT_FALSE(pool.release(7000000));
  EXPECT_FALSE(pool.release(0)) << "slot 0 holds no reference";
  EXPECT_EQ(pool.refcount(0), 0U) << "a release below zero must not wrap the count";
  EXPECT_FALSE(pool.add_refs(1, 2)) << "refs on a free slot would steal it from its owner";
  EXPECT_FALSE(pool.add_refs(9, 2));
  EXPECT_EQ(pool.invalid_releases(), 3U);
  const auto slot = *pool.try_acquire();
  EXPECT_TRUE(pool.add_refs(slot, 2));
  EXPECT_EQ(pool.refcount(slot), 3U);
  // A fresh attach of the rewritten header is refused: geometry that does not fit the segment.
  EXPECT_FALSE(SlotPool::attach(seg.data(), seg.size()).is_ok());
  header->slot_count = 4;
  header->slot_size = 128;
  header->data_offset += 64;  // payloads moved past the segment's end
  EXPECT_FALSE(SlotPool::attach(seg.data(), seg.size()).is_ok());
}

// A consumer may rewrite `head`, `tail` and the capacity: the producer keeps its own head and
// capacity, drop_oldest() refuses a tail no consumer could have made, and size() is bounded.
TEST(Ring, APeerRewritingTheIndicesCannotMoveTheOtherSideOutOfBounds) {
  RingFixture f(4, ConnectionMode::kBestEffort);
  auto* header = static_cast<RingHeader*>(f.segment.data());
  ASSERT_TRUE(f.ring.try_push(desc(1)));
  header->capacity = 1U << 30;
  header->head.store(1000000);
  header->tail.store(5000000);  // ahead of head
  EXPECT_EQ(f.ring.capacity(), 4U);
  EXPECT_LE(f.ring.size(), 4U);
  SlotDescriptor out;
  EXPECT_FALSE(f.ring.drop_oldest(out)) << "a tail past head is not a packet to drop";
  EXPECT_TRUE(f.ring.corrupt());
  header->tail.store(1);  // head_ stays 1 for the producer: full? no, empty
  EXPECT_TRUE(f.ring.try_push(desc(2)));
  EXPECT_EQ(header->head.load(), 2U) << "the producer's head is its own, not the rewritten one";
  // Consumer side: whatever the producer claims, entries are read inside the ring.
  RingFixture g(2);
  auto* gh = static_cast<RingHeader*>(g.segment.data());
  gh->head.store(UINT64_MAX - 1);
  Ring consumer = Ring::attach(g.segment.data(), g.segment.size()).value();
  EXPECT_FALSE(consumer.try_pop(out)) << "a head 2^64 ahead is not a stream to read";
  EXPECT_TRUE(consumer.corrupt());
  EXPECT_LE(consumer.size(), 2U);
  // Within a ring's length the indices are plausible: garbage descriptors come out, each from
  // inside the ring (ASan would say otherwise), for readers to check against their pool.
  RingFixture h(4);
  auto* hh = static_cast<RingHeader*>(h.segment.data());
  hh->head.store(3);
  Ring reader = Ring::attach(h.segment.data(), h.segment.size()).value();
  int popped = 0;
  while (popped < 10 && reader.try_pop(out)) {
    ++popped;
  }
  EXPECT_EQ(popped, 3);
  EXPECT_FALSE(reader.corrupt());
}

TEST(SharedSegment, CreatorUnlinksOnDestructionAndOpenersSeeTheSameBytes) {
  const std::string name = unique_name("seg");
  {
    auto created = SharedSegment::create(name, 4096);
    ASSERT_TRUE(created.is_ok());
    static_cast<char*>(created->data())[10] = 'x';
    auto opened = SharedSegment::open(name);
    ASSERT_TRUE(opened.is_ok());
    EXPECT_EQ(static_cast<char*>(opened->data())[10], 'x');
    EXPECT_EQ(list_segments(name).size(), 1U);
    EXPECT_FALSE(SharedSegment::create(name, 4096).is_ok()) << "names are exclusive";
  }
  EXPECT_TRUE(list_segments(name).empty());
  EXPECT_FALSE(SharedSegment::open(name).is_ok());
}

TEST(SharedSegment, StaleSegmentsOfDeadProcessesAreRemoved) {
  // A pid above pid_max stands for a supervisor that was SIGKILLed before its cleanup; on
  // Linux, POSIX shared memory is a file in /dev/shm.
  const std::string stale = "skit-999999999-0-p0";
  const int fd = ::open(("/dev/shm/" + stale).c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const std::string mine = unique_name("live");
  auto live = SharedSegment::create(mine, 64);
  ASSERT_TRUE(live.is_ok());

  EXPECT_GE(remove_stale_segments(), 1U);

  EXPECT_TRUE(list_segments(stale).empty());
  EXPECT_EQ(list_segments(mine).size(), 1U) << "segments of live processes stay";
}

TEST(RingThreads, SpscStressWithDoorbellsKeepsOrderAndLosesNothing) {
  RingFixture f(16);
  const std::string run = std::to_string(::getpid()) + "-stress";
  const std::string producer_ep = doorbell_endpoint(run, "p");
  const std::string consumer_ep = doorbell_endpoint(run, "c");
  f.ring.set_producer_doorbell(producer_ep);
  f.ring.set_consumer_doorbell(consumer_ep);
  constexpr std::uint64_t kCount = 200000;
  std::atomic<bool> consumer_bound{false};
  std::uint64_t received = 0;
  bool in_order = true;

  std::thread consumer([&] {
    Doorbell bell(consumer_ep);
    bell.bind();
    consumer_bound = true;
    SlotDescriptor out;
    while (received < kCount) {
      if (f.ring.try_pop(out)) {
        in_order = in_order && out.sequence == received;
        ++received;
        if (f.ring.take_producer_wakeup()) {
          bell.ring(f.ring.producer_doorbell());
        }
        continue;
      }
      f.ring.set_consumer_waiting(true);
      if (f.ring.empty()) {
        bell.wait(std::chrono::milliseconds(200));
      }
      f.ring.set_consumer_waiting(false);
    }
  });
  Doorbell bell(producer_ep);
  bell.bind();
  while (!consumer_bound) {
    std::this_thread::yield();
  }
  for (std::uint64_t i = 0; i < kCount; ++i) {
    while (!f.ring.try_push(desc(i))) {
      f.ring.set_producer_waiting(true);
      if (f.ring.full()) {
        bell.wait(std::chrono::milliseconds(200));
      }
      f.ring.set_producer_waiting(false);
    }
    if (f.ring.take_consumer_wakeup()) {
      bell.ring(f.ring.consumer_doorbell());
    }
  }
  consumer.join();
  EXPECT_EQ(received, kCount);
  EXPECT_TRUE(in_order);
}

TEST(Ring, ABestEffortConsumerReceivesTheNewestPacketsOfAFullRingInOrder) {
  RingFixture f(8, ConnectionMode::kBestEffort);
  constexpr std::uint64_t kProduced = 20;
  for (std::uint64_t i = 0; i < kProduced; ++i) {
    while (!f.ring.try_push(desc(i))) {
      SlotDescriptor oldest;
      ASSERT_TRUE(f.ring.drop_oldest(oldest));
    }
  }

  std::vector<std::uint64_t> received;
  SlotDescriptor out;
  while (f.ring.try_pop(out)) {
    received.push_back(out.sequence);
  }

  EXPECT_EQ(received, (std::vector<std::uint64_t>{12, 13, 14, 15, 16, 17, 18, 19}));
  EXPECT_EQ(f.ring.dropped(), kProduced - received.size());
}

TEST(RingThreads, ABestEffortConsumerSeesEveryPacketOnceInOrderAndTheDropCountIsWhatItMissed) {
  // The producer never waits: on a full ring it drops the oldest packet, racing the consumer
  // for it. What the consumer receives must be increasing (nothing twice, nothing reordered),
  // intact, and end with the last packet (the newest is never dropped); each gap in the
  // sequence numbers it sees is a drop, and their sum is what the ring's shared counter says.
  RingFixture f(8, ConnectionMode::kBestEffort);
  constexpr std::uint64_t kProduced = 100000;
  std::vector<SlotDescriptor> received;
  received.reserve(kProduced);
  std::thread consumer([&] {
    SlotDescriptor out;
    while (true) {
      if (!f.ring.try_pop(out)) {
        continue;
      }
      if ((out.control & kControlEndOfStream) != 0) {
        return;
      }
      received.push_back(out);
    }
  });
  auto push = [&](const SlotDescriptor& d) {
    while (!f.ring.try_push(d)) {
      SlotDescriptor oldest;
      (void)f.ring.drop_oldest(oldest);  // may find the ring already drained by the consumer
    }
  };
  for (std::uint64_t i = 0; i < kProduced; ++i) {
    push(desc(i));
  }
  SlotDescriptor end;
  end.control = kControlEndOfStream;
  end.sequence = kProduced;
  push(end);  // the last push: nothing comes after it that could drop it
  consumer.join();

  ASSERT_FALSE(received.empty());
  std::uint64_t missed = received.front().sequence;  // dropped before the first delivery
  for (std::size_t i = 0; i < received.size(); ++i) {
    const SlotDescriptor& d = received[i];
    ASSERT_EQ(d.slot, d.sequence % 7) << "descriptor " << d.sequence << " arrived torn";
    ASSERT_EQ(d.size, 100U);
    if (i > 0) {
      ASSERT_GT(d.sequence, received[i - 1].sequence) << "seen twice or out of order";
      missed += d.sequence - received[i - 1].sequence - 1;
    }
  }
  EXPECT_EQ(received.back().sequence, kProduced - 1) << "the newest packet was dropped";
  EXPECT_EQ(received.size() + missed, kProduced);
  EXPECT_EQ(f.ring.dropped(), missed)
      << "the drop counter must match the packets the consumer never saw";
}

}  // namespace
}  // namespace skit::ipc
