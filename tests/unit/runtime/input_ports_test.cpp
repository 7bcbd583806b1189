// SPDX-License-Identifier: MPL-2.0
// The input side on its own: InputPorts on real rings, fed by a producer the test drives by
// hand, read on the test thread.
#include "input_ports.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "ports_fixture.hpp"

namespace skit::runtime {
namespace {

using namespace std::chrono_literals;
using test::HandProducer;
using Type = InputPorts::Arrival::Type;

class InputPortsTest : public ::testing::Test {
 protected:
  void SetUp() override { make_inputs(test::live_options()); }

  void make_inputs(RunnerOptions options) {
    inputs_.reset();
    context_ =
        std::make_unique<PortContext>(test::bell("in"), shm_.pools, options, test::test_logger());
    context_->doorbell().bind();
    inputs_ = std::make_unique<InputPorts>(
        *context_, [this](std::size_t index, const StreamInfo& info, PacketKind /*kind*/) {
          formats_.push_back(std::to_string(index) + ":" + info.codec);
          return Status::ok();
        });
  }

  /// Reads until nothing is ready: the numbers of the data packets in order, "end" for end
  /// of stream. Every packet's slot is given back, as the runner does after process().
  std::vector<std::string> read_all() {
    std::vector<std::string> got;
    for (int guard = 0; guard < 1000; ++guard) {
      auto a = inputs_->next();
      if (!a) {
        got.push_back("error: " + a.status().message());
        return got;
      }
      if (a->type == Type::kNone) {
        return got;
      }
      if (a->type == Type::kPacket) {
        got.push_back(std::to_string(test::value_of(shm_, a->descriptor)));
        context_->release(a->descriptor);
      } else if (a->type == Type::kEnd) {
        got.push_back("end");
      }
    }
    ADD_FAILURE() << "next() never ran dry";
    return got;
  }

  using Strings = std::vector<std::string>;
  test::Shm shm_;
  std::uint32_t pool_ = shm_.add_pool("ipc://@skit-test-owner");
  std::unique_ptr<PortContext> context_;
  std::unique_ptr<InputPorts> inputs_;
  std::vector<std::string> formats_;
};

TEST_F(InputPortsTest, ALeavingRingIsReadUpToItsDetachMarkerBeforeThePinsNextRing) {
  const std::string old_name = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  const std::string new_name = shm_.add_ring("ipc://@p2", context_->doorbell().endpoint());
  ipc::Ring old_ring = shm_.ring(old_name);
  ipc::Ring new_ring = shm_.ring(new_name);
  HandProducer old_producer(shm_, pool_);
  HandProducer new_producer(shm_, pool_);
  ASSERT_TRUE(inputs_->attach("in", old_name, test::open_segment(old_name)).is_ok());
  old_producer.packet(old_ring, 1);
  old_producer.packet(old_ring, 2);

  // The switch: the new producer starts at once, the old one has not sent its marker yet.
  ASSERT_TRUE(inputs_->attach("in", new_name, test::open_segment(new_name)).is_ok());
  inputs_->detach(old_name, /*drop=*/false, 2s);
  new_producer.packet(new_ring, 10);
  EXPECT_EQ(read_all(), (Strings{"1", "2"})) << "the new ring waits for the old one's marker";

  old_producer.packet(old_ring, 3);
  old_producer.marker(old_ring, ipc::kControlDetach);
  new_producer.packet(new_ring, 11);
  new_producer.marker(new_ring, ipc::kControlEndOfStream);

  EXPECT_EQ(read_all(), (Strings{"3", "10", "11", "end"}));
  EXPECT_TRUE(inputs_->ended(0));
  EXPECT_TRUE(inputs_->all_ended());
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U);
  EXPECT_EQ(context_->counters().packets_in.load(), 5U);
}

TEST_F(InputPortsTest, ADroppedRingIsDiscardedUpToItsMarkerAndItsSlotsGivenBack) {
  const std::string old_name = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  const std::string new_name = shm_.add_ring("ipc://@p2", context_->doorbell().endpoint());
  ipc::Ring old_ring = shm_.ring(old_name);
  ipc::Ring new_ring = shm_.ring(new_name);
  HandProducer old_producer(shm_, pool_);
  HandProducer new_producer(shm_, pool_);
  ASSERT_TRUE(inputs_->attach("in", old_name, test::open_segment(old_name)).is_ok());
  for (std::uint64_t v = 1; v <= 4; ++v) {
    old_producer.packet(old_ring, v);
  }

  inputs_->detach(old_name, /*drop=*/true, 2s);
  ASSERT_TRUE(inputs_->attach("in", new_name, test::open_segment(new_name)).is_ok());
  old_producer.packet(old_ring, 5);
  old_producer.marker(old_ring, ipc::kControlDetach);
  new_producer.packet(new_ring, 10);

  EXPECT_EQ(read_all(), (Strings{"10"}));
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U) << "discarded packets are released";
  EXPECT_EQ(context_->counters().packets_in.load(), 1U) << "discarded packets are not counted";
}

TEST_F(InputPortsTest, EndOfStreamOfARingBeingReplacedDoesNotEndTheInput) {
  const std::string first = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  const std::string second = shm_.add_ring("ipc://@p2", context_->doorbell().endpoint());
  ipc::Ring first_ring = shm_.ring(first);
  ipc::Ring second_ring = shm_.ring(second);
  HandProducer a(shm_, pool_);
  HandProducer b(shm_, pool_);
  ASSERT_TRUE(inputs_->attach("in", first, test::open_segment(first)).is_ok());
  ASSERT_TRUE(inputs_->attach("in", second, test::open_segment(second)).is_ok());
  a.packet(first_ring, 1);
  a.marker(first_ring, ipc::kControlEndOfStream);
  b.packet(second_ring, 2);
  b.marker(second_ring, ipc::kControlEndOfStream);

  EXPECT_EQ(read_all(), (Strings{"1", "2", "end"}));
}

TEST_F(InputPortsTest, ADetachWithoutGraceLeavesTheRingAtOnceGivingBackWhatItHeld) {
  const std::string old_name = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  const std::string new_name = shm_.add_ring("ipc://@p2", context_->doorbell().endpoint());
  ipc::Ring old_ring = shm_.ring(old_name);
  ipc::Ring new_ring = shm_.ring(new_name);
  HandProducer old_producer(shm_, pool_);
  HandProducer new_producer(shm_, pool_);
  ASSERT_TRUE(inputs_->attach("in", old_name, test::open_segment(old_name)).is_ok());
  ASSERT_TRUE(inputs_->attach("in", new_name, test::open_segment(new_name)).is_ok());
  old_producer.packet(old_ring, 1);  // its producer crashed: no marker will come
  new_producer.packet(new_ring, 2);

  inputs_->detach(old_name, /*drop=*/false, 0ms);

  EXPECT_EQ(read_all(), (Strings{"2"}));
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U);
}

TEST_F(InputPortsTest, ARingWhoseMarkerNeverComesIsDroppedAfterItsGrace) {
  const std::string old_name = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  const std::string new_name = shm_.add_ring("ipc://@p2", context_->doorbell().endpoint());
  ipc::Ring new_ring = shm_.ring(new_name);
  HandProducer new_producer(shm_, pool_);
  ASSERT_TRUE(inputs_->attach("in", old_name, test::open_segment(old_name)).is_ok());
  ASSERT_TRUE(inputs_->attach("in", new_name, test::open_segment(new_name)).is_ok());
  new_producer.packet(new_ring, 7);
  inputs_->detach(old_name, /*drop=*/false, 20ms);
  EXPECT_EQ(read_all(), Strings{});

  const auto deadline = std::chrono::steady_clock::now() + 5s;
  Strings got;
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    got = read_all();
  }

  EXPECT_EQ(got, (Strings{"7"}));
}

TEST_F(InputPortsTest, AFormatReplayedOnTheNextRingIsPassedOnOnce) {
  const std::string first = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  const std::string second = shm_.add_ring("ipc://@p2", context_->doorbell().endpoint());
  ipc::Ring first_ring = shm_.ring(first);
  ipc::Ring second_ring = shm_.ring(second);
  HandProducer a(shm_, pool_);
  HandProducer b(shm_, pool_);
  StreamInfo opus;
  opus.codec = "opus";
  opus.sample_rate = 48000;
  ASSERT_TRUE(inputs_->attach("in", first, test::open_segment(first)).is_ok());
  ASSERT_TRUE(inputs_->attach("in", second, test::open_segment(second)).is_ok());
  a.format(first_ring, opus);
  a.packet(first_ring, 1);
  a.marker(first_ring, ipc::kControlDetach);
  b.format(second_ring, opus);  // an output replays the format to a ring that joins
  b.packet(second_ring, 2);
  StreamInfo flac = opus;
  flac.codec = "flac";
  b.format(second_ring, flac);

  EXPECT_EQ(read_all(), (Strings{"1", "2"}));
  EXPECT_EQ(formats_, (Strings{"0:opus", "0:flac"}));
  ASSERT_NE(inputs_->info(0), nullptr);
  EXPECT_EQ(inputs_->info(0)->codec, "flac");
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U) << "format packets are released too";
}

TEST_F(InputPortsTest, ALiveRingJoinedMidStreamFirstTakesTheFormatItRecorded) {
  const std::string name = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  ipc::Ring ring = shm_.ring(name);
  StreamInfo info;
  info.codec = "opus";
  ASSERT_TRUE(ring.set_sticky(info.serialize(), static_cast<std::uint32_t>(PacketKind::kBinary)));
  HandProducer producer(shm_, pool_);
  producer.packet(ring, 1);

  ASSERT_TRUE(inputs_->attach("in", name, test::open_segment(name)).is_ok());

  EXPECT_EQ(read_all(), (Strings{"1"}));
  EXPECT_EQ(formats_, (Strings{"0:opus"}));
}

TEST_F(InputPortsTest, AFailedUpstreamFailsTheReadNamingThePin) {
  const std::string name = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  ipc::Ring ring = shm_.ring(name);
  HandProducer producer(shm_, pool_);
  ASSERT_TRUE(inputs_->attach("audio", name, test::open_segment(name)).is_ok());
  producer.marker(ring, ipc::kControlEndOfStream | ipc::kControlError);

  auto a = inputs_->next();

  ASSERT_FALSE(a.is_ok());
  EXPECT_EQ(a.status().code(), ErrorCode::kCancelled);
  EXPECT_NE(a.status().message().find("'audio'"), std::string::npos) << a.status().message();
}

TEST_F(InputPortsTest, InputsAreReadInTurn) {
  const std::string left = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  const std::string right = shm_.add_ring("ipc://@p2", context_->doorbell().endpoint());
  ipc::Ring left_ring = shm_.ring(left);
  ipc::Ring right_ring = shm_.ring(right);
  HandProducer a(shm_, pool_);
  HandProducer b(shm_, pool_);
  ASSERT_TRUE(inputs_->attach("left", left, test::open_segment(left)).is_ok());
  ASSERT_TRUE(inputs_->attach("right", right, test::open_segment(right)).is_ok());
  for (std::uint64_t v = 0; v < 3; ++v) {
    a.packet(left_ring, 100 + v);
    b.packet(right_ring, 200 + v);
  }

  EXPECT_EQ(read_all(), (Strings{"100", "200", "101", "201", "102", "202"}));
}

TEST_F(InputPortsTest, AStaticPipelineDrainsEveryInputToItsEndSoNoProducerStaysBlocked) {
  make_inputs(test::static_options());
  const std::string name = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  ipc::Ring ring = shm_.ring(name);
  HandProducer producer(shm_, pool_);
  ASSERT_TRUE(inputs_->attach("in", name, test::open_segment(name)).is_ok());
  producer.packet(ring, 1);
  producer.packet(ring, 2);
  producer.marker(ring, ipc::kControlEndOfStream);

  inputs_->drain();

  EXPECT_TRUE(ring.empty());
  EXPECT_TRUE(inputs_->ended(0));
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U);
}

TEST_F(InputPortsTest, ALiveNodeLeavesItsRingsAtOnceGivingBackWhatTheyHeld) {
  const std::string name = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  ipc::Ring ring = shm_.ring(name);
  HandProducer producer(shm_, pool_);
  ASSERT_TRUE(inputs_->attach("in", name, test::open_segment(name)).is_ok());
  producer.packet(ring, 1);
  producer.packet(ring, 2);

  inputs_->drain();  // no end of stream: a live ring outlives the node

  EXPECT_FALSE(inputs_->any_connection());
  EXPECT_EQ(shm_.pools.find(pool_)->slots_in_use(), 0U);
}

TEST_F(InputPortsTest, AMalformedDescriptorIsRefused) {
  const std::string name = shm_.add_ring("ipc://@p1", context_->doorbell().endpoint());
  ASSERT_TRUE(inputs_->attach("in", name, test::open_segment(name)).is_ok());
  ipc::SlotDescriptor d;
  d.pool = pool_;
  d.slot = 0;
  d.offset = 200;
  d.size = 100;  // past the 256-byte slot

  auto bytes = inputs_->payload(d, 0);

  ASSERT_FALSE(bytes.is_ok());
  // The producer's fault, said so with the input's name.
  EXPECT_EQ(bytes.status().code(), ErrorCode::kCorruptMedia);
  EXPECT_NE(bytes.status().message().find("sent a malformed descriptor"), std::string::npos)
      << bytes.status().message();
}

}  // namespace
}  // namespace skit::runtime
