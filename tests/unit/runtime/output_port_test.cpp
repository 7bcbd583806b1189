// SPDX-License-Identifier: MPL-2.0
// The output side on its own: an OutputPort publishing into real rings and a real pool, with
// the test (or an InputPorts, for what a consumer receives) reading the other end.
#include "output_port.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "input_ports.hpp"
#include "ports_fixture.hpp"

namespace skit::runtime {
namespace {

using namespace std::chrono_literals;

class OutputPortTest : public ::testing::Test {
 protected:
  void SetUp() override { context_->doorbell().bind(); }

  std::string ring(ConnectionMode mode = ConnectionMode::kReliable, std::uint32_t capacity = 16,
                   const std::string& consumer_bell = test::bell("consumer")) {
    return shm_.add_ring(context_->doorbell().endpoint(), consumer_bell, mode, capacity);
  }
  static Status write_value(OutputWriter& out, std::uint64_t value) {
    std::byte bytes[8];
    std::memcpy(bytes, &value, sizeof value);
    return out.write(bytes, PacketHeader{.kind = PacketKind::kBinary});
  }
  /// Pops everything queued in `ring`: numbers for data, "info:<codec>" for formats, "detach",
  /// "end" and "error" for markers. Data slots are released as a consumer would.
  std::vector<std::string> pop_all(ipc::Ring& r) {
    std::vector<std::string> got;
    ipc::SlotDescriptor d;
    while (r.try_pop(d)) {
      if ((d.control & ipc::kControlDetach) != 0) {
        got.emplace_back("detach");
      } else if ((d.control & ipc::kControlError) != 0) {
        got.emplace_back("error");
      } else if ((d.control & ipc::kControlEndOfStream) != 0) {
        got.emplace_back("end");
      } else if ((d.flags & kFlagStreamInfo) != 0) {
        const auto bytes = shm_.pools.find(d.pool)->slot_data(d.slot).subspan(d.offset, d.size);
        got.push_back("info:" + StreamInfo::parse(bytes)->codec);
        context_->release(d);
      } else {
        got.push_back(std::to_string(test::value_of(shm_, d)));
        context_->release(d);
      }
    }
    return got;
  }

  using Strings = std::vector<std::string>;
  test::Shm shm_;
  std::unique_ptr<PortContext> context_ = std::make_unique<PortContext>(
      test::bell("out"), shm_.pools, test::live_options(), test::test_logger());
  std::uint32_t pool_ = shm_.add_pool(context_->doorbell().endpoint());
};

TEST_F(OutputPortTest, OnePacketGoesToEveryRingAsOneSlotWithAReferencePerRing) {
  const std::string r1 = ring();
  const std::string r2 = ring();
  OutputPort out(*context_, "out", false);
  ASSERT_TRUE(out.attach(pool_, {r1, r2}).is_ok());

  ASSERT_TRUE(write_value(out, 42).is_ok());

  ipc::Ring view1 = shm_.ring(r1);
  ipc::Ring view2 = shm_.ring(r2);
  ipc::SlotDescriptor d1;
  ipc::SlotDescriptor d2;
  ASSERT_TRUE(view1.try_pop(d1));
  ASSERT_TRUE(view2.try_pop(d2));
  EXPECT_EQ(d1.slot, d2.slot) << "fan-out shares one payload";
  EXPECT_EQ(test::value_of(shm_, d1), 42U);
  ipc::SlotPool* pool = shm_.pools.find(pool_);
  EXPECT_EQ(pool->refcount(d1.slot), 2U);
  context_->release(d1);
  context_->release(d2);
  EXPECT_EQ(pool->slots_in_use(), 0U);
  EXPECT_EQ(context_->counters().packets_out.load(), 1U);
}

TEST_F(OutputPortTest, ABestEffortConsumerGetsTheNewestPacketsInOrderAndCountsMatchWhatItMissed) {
  // Nobody reads while ten packets go into a ring of four: the consumer then receives the
  // newest four, in order; the six it never sees are exactly the producer's drops.
  const std::string consumer_bell = test::bell("consumer");
  const std::string r = ring(ConnectionMode::kBestEffort, 4, consumer_bell);
  OutputPort out(*context_, "out", false);
  ASSERT_TRUE(out.attach(pool_, {r}).is_ok());
  constexpr std::uint64_t kProduced = 10;
  for (std::uint64_t v = 0; v < kProduced; ++v) {
    ASSERT_TRUE(write_value(out, v).is_ok());
  }
  out.close(/*failed=*/false, /*detach=*/false);

  PortContext consumer(consumer_bell, shm_.pools, test::live_options(), test::test_logger());
  consumer.doorbell().bind();
  InputPorts inputs(consumer,
                    [](std::size_t, const StreamInfo&, PacketKind) { return Status::ok(); });
  ASSERT_TRUE(inputs.attach("in", r, test::open_segment(r)).is_ok());
  std::vector<std::uint64_t> delivered;
  bool ended = false;
  while (!ended) {
    auto a = inputs.next();
    ASSERT_TRUE(a.is_ok()) << a.status().to_string();
    ASSERT_NE(a->type, InputPorts::Arrival::Type::kNone) << "the end of stream was lost";
    if (a->type == InputPorts::Arrival::Type::kPacket) {
      delivered.push_back(test::value_of(shm_, a->descriptor));
      consumer.release(a->descriptor);
    }
    ended = a->type == InputPorts::Arrival::Type::kEnd;
  }

  EXPECT_EQ(delivered, (std::vector<std::uint64_t>{7, 8, 9}))
      << "the end of stream takes a place too, and is never dropped";
  const std::uint64_t dropped = context_->counters().dropped.load();
  EXPECT_EQ(delivered.size() + dropped, kProduced);
  EXPECT_EQ(shm_.ring(r).dropped(), dropped);
  EXPECT_EQ(consumer.counters().packets_in.load(), delivered.size());
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U) << "dropped slots were given back";
}

TEST_F(OutputPortTest, ARingThatJoinsLaterGetsTheStreamFormatBeforeAnyData) {
  const std::string first = ring();
  const std::string later = ring();
  OutputPort out(*context_, "out", false);
  ASSERT_TRUE(out.attach(pool_, {first}).is_ok());
  StreamInfo info;
  info.codec = "opus";
  ASSERT_TRUE(out.write_stream_info(info, PacketKind::kEncodedAudio).is_ok());
  ASSERT_TRUE(write_value(out, 1).is_ok());

  ASSERT_TRUE(out.add_ring(later, test::open_segment(later), /*replay=*/true).is_ok());
  ASSERT_TRUE(write_value(out, 2).is_ok());

  ipc::Ring first_view = shm_.ring(first);
  ipc::Ring later_view = shm_.ring(later);
  EXPECT_EQ(pop_all(first_view), (Strings{"info:opus", "1", "2"}));
  EXPECT_EQ(pop_all(later_view), (Strings{"info:opus", "2"}));
  std::vector<std::byte> sticky;
  std::uint32_t kind = 0;
  ASSERT_TRUE(later_view.sticky(sticky, kind)) << "recorded for a consumer that restarts";
  EXPECT_EQ(StreamInfo::parse(sticky)->codec, "opus");
  EXPECT_EQ(kind, static_cast<std::uint32_t>(PacketKind::kEncodedAudio));
  EXPECT_EQ(context_->counters().packets_out.load(), 2U) << "formats are not counted";
}

TEST_F(OutputPortTest, LeavingARingEndsItWithADetachMarkerAndFeedsOnlyTheOthers) {
  const std::string leaving = ring();
  const std::string staying = ring();
  OutputPort out(*context_, "out", false);
  ASSERT_TRUE(out.attach(pool_, {leaving, staying}).is_ok());
  ASSERT_TRUE(write_value(out, 1).is_ok());

  out.remove_ring(leaving);
  ASSERT_TRUE(write_value(out, 2).is_ok());

  EXPECT_FALSE(out.has_ring(leaving));
  ipc::Ring leaving_view = shm_.ring(leaving);
  ipc::Ring staying_view = shm_.ring(staying);
  EXPECT_EQ(pop_all(leaving_view), (Strings{"1", "detach"}));
  EXPECT_EQ(pop_all(staying_view), (Strings{"1", "2"}));
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U);
}

TEST_F(OutputPortTest, AFailedNodeEndsEveryRingWithAnErrorAndARetiredOneDetaches) {
  const std::string r1 = ring();
  const std::string r2 = ring();
  OutputPort failing(*context_, "out", false);
  ASSERT_TRUE(failing.attach(pool_, {r1}).is_ok());
  OutputPort retiring(*context_, "out2", false);
  ASSERT_TRUE(retiring.attach(pool_, {r2}).is_ok());

  failing.close(/*failed=*/true, /*detach=*/false);
  retiring.close(/*failed=*/false, /*detach=*/true);

  ipc::Ring v1 = shm_.ring(r1);
  ipc::Ring v2 = shm_.ring(r2);
  EXPECT_EQ(pop_all(v1), (Strings{"error"}));
  EXPECT_EQ(pop_all(v2), (Strings{"detach"}));
}

TEST_F(OutputPortTest, AnUnconnectedOutputTakesPacketsAndSendsThemNowhere) {
  OutputPort out(*context_, "out", false);
  ASSERT_TRUE(out.attach(pool_, {}).is_ok());

  ASSERT_TRUE(write_value(out, 1).is_ok());

  EXPECT_FALSE(out.loan_outstanding());
  EXPECT_EQ(context_->counters().packets_out.load(), 1U);
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U);
}

TEST_F(OutputPortTest, APacketLargerThanASlotIsRefusedNamingThePin) {
  OutputPort out(*context_, "video", false);
  ASSERT_TRUE(out.attach(pool_, {ring()}).is_ok());

  auto buffer = out.loan(out.max_packet_bytes() + 1);

  ASSERT_FALSE(buffer.is_ok());
  EXPECT_EQ(buffer.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(buffer.status().message().find("'video'"), std::string::npos);
}

TEST_F(OutputPortTest, ForwardPassesTheReceivedSlotOnWithoutACopy) {
  const std::string r = ring();
  OutputPort out(*context_, "out", false);
  ASSERT_TRUE(out.attach(pool_, {r}).is_ok());
  // A packet received from upstream (another producer's pool), in the node's hands.
  const std::uint32_t upstream = shm_.add_pool("ipc://@skit-test-upstream");
  ipc::SlotPool& upstream_pool = shm_.pool(upstream);
  const std::uint32_t slot = *upstream_pool.try_acquire();
  const std::uint64_t value = 77;
  std::memcpy(upstream_pool.slot_data(slot).data(), &value, sizeof value);
  context_->in_hand.pool = upstream;
  context_->in_hand.slot = slot;
  context_->in_hand.size = sizeof value;
  context_->in_hand.sequence = 5;
  PacketView view;
  view.data = upstream_pool.slot_data(slot).subspan(0, sizeof value);
  view.forward_token = 6;

  ASSERT_TRUE(out.forward(view).is_ok());
  PacketView stale = view;
  stale.forward_token = 3;
  EXPECT_EQ(out.forward(stale).code(), ErrorCode::kInternal);

  ipc::Ring v = shm_.ring(r);
  ipc::SlotDescriptor d;
  ASSERT_TRUE(v.try_pop(d));
  EXPECT_EQ(d.pool, upstream);
  EXPECT_EQ(d.slot, slot);
  EXPECT_EQ(test::value_of(shm_, d), 77U);
  EXPECT_EQ(upstream_pool.refcount(slot), 2U) << "the runner's own reference and the ring's";
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U) << "nothing was copied";
}

TEST_F(OutputPortTest, ASleepingConsumerIsWokenOnceABatchWaitsOrWhenTheProducerSleeps) {
  const std::string consumer_endpoint = test::bell("consumer");
  ipc::Doorbell consumer(consumer_endpoint);
  consumer.bind();
  const std::string r = ring(ConnectionMode::kReliable, 16, consumer_endpoint);
  OutputPort out(*context_, "out", false);
  ASSERT_TRUE(out.attach(pool_, {r}).is_ok());
  ipc::Ring view = shm_.ring(r);
  view.set_consumer_waiting(true);

  ASSERT_TRUE(write_value(out, 1).is_ok());
  EXPECT_FALSE(consumer.wait(50ms)) << "one packet alone does not ring while the producer runs";
  context_->sleep(1ms);  // the producer goes to sleep: deferred wake-ups go first
  EXPECT_TRUE(consumer.wait(5s));

  view.set_consumer_waiting(true);
  for (std::uint64_t v = 2; v <= test::live_options().wake_batch; ++v) {
    ASSERT_TRUE(write_value(out, v).is_ok());
  }
  EXPECT_TRUE(consumer.wait(5s)) << "a full batch rings at once";
}

TEST_F(OutputPortTest, AStopAbandonsAPacketBlockedOnAFullReliableRingAndGivesItsSlotBack) {
  const std::string r = ring(ConnectionMode::kReliable, 2);
  OutputPort out(*context_, "out", false);
  ASSERT_TRUE(out.attach(pool_, {r}).is_ok());
  ASSERT_TRUE(write_value(out, 1).is_ok());
  ASSERT_TRUE(write_value(out, 2).is_ok());

  context_->request_stop();
  const Status s = write_value(out, 3);

  EXPECT_EQ(s.code(), ErrorCode::kCancelled);
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 2U) << "only the two queued packets hold slots";
}

}  // namespace
}  // namespace skit::runtime
