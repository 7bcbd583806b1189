// SPDX-License-Identifier: MPL-2.0
// Rewiring on its own: batches of RewireCommands applied to real input and output ports.
#include "rewiring.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "ports_fixture.hpp"

namespace skit::runtime {
namespace {

using namespace std::chrono_literals;

class RewiringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    context_.doorbell().bind();
    auto out = std::make_unique<OutputPort>(context_, "out", false);
    first_output_ring_ = ring();
    ASSERT_TRUE(out->attach(pool_, {first_output_ring_}).is_ok());
    outputs_.push_back(std::move(out));
  }
  std::string ring() { return shm_.add_ring(context_.doorbell().endpoint(), test::bell("c")); }
  RewireCommand command(RewireCommand::Type type, const std::string& pin,
                        const std::string& segment) {
    RewireCommand c;
    c.type = type;
    c.pin = pin;
    c.segment_name = segment;
    if (type == RewireCommand::Type::kAttachInput || type == RewireCommand::Type::kAttachOutput) {
      c.segment = test::open_segment(segment);
    }
    return c;
  }

  test::Shm shm_;
  PortContext context_{test::bell("rw"), shm_.pools, test::live_options(), test::test_logger()};
  std::uint32_t pool_ = shm_.add_pool(context_.doorbell().endpoint());
  InputPorts inputs_{context_,
                     [](std::size_t, const StreamInfo&, PacketKind) { return Status::ok(); }};
  std::vector<std::unique_ptr<OutputPort>> outputs_;
  Rewiring rewiring_{inputs_, outputs_, context_.log()};
  std::string first_output_ring_;
};

TEST_F(RewiringTest, OutputChangesWaitUntilTheLoanedPacketIsPublished) {
  const std::string added = ring();
  ASSERT_TRUE(outputs_[0]->loan(8).is_ok());
  std::vector<RewireCommand> batch;
  batch.push_back(command(RewireCommand::Type::kDetachOutput, "out", first_output_ring_));
  batch.push_back(command(RewireCommand::Type::kAttachOutput, "out", added));

  EXPECT_FALSE(rewiring_.apply(batch)) << "mid-packet: the whole batch waits";
  EXPECT_TRUE(outputs_[0]->has_ring(first_output_ring_));
  EXPECT_FALSE(outputs_[0]->has_ring(added));

  ASSERT_TRUE(outputs_[0]->publish(8, PacketHeader{}).is_ok());
  EXPECT_TRUE(rewiring_.apply(batch));
  EXPECT_FALSE(outputs_[0]->has_ring(first_output_ring_));
  EXPECT_TRUE(outputs_[0]->has_ring(added));
}

TEST_F(RewiringTest, InputChangesDoNotWaitForALoanedPacket) {
  const std::string input = ring();
  ASSERT_TRUE(outputs_[0]->loan(8).is_ok());
  std::vector<RewireCommand> batch;
  batch.push_back(command(RewireCommand::Type::kAttachInput, "in", input));

  EXPECT_TRUE(rewiring_.apply(batch));
  EXPECT_TRUE(inputs_.any_connection());
}

TEST_F(RewiringTest, ARingThatCannotBeMappedIsSkippedAndTheRestOfTheBatchApplied) {
  auto not_a_ring = ipc::SharedSegment::create(test::unique_name("junk"), 4096).value();
  const std::string added = ring();
  std::vector<RewireCommand> batch;
  batch.push_back(command(RewireCommand::Type::kAttachInput, "in", not_a_ring.name()));
  batch.push_back(command(RewireCommand::Type::kAttachOutput, "out", added));

  EXPECT_TRUE(rewiring_.apply(batch));
  EXPECT_FALSE(inputs_.any_connection());
  EXPECT_TRUE(outputs_[0]->has_ring(added));
}

TEST_F(RewiringTest, ADetachedInputIsLeftAtItsMarker) {
  const std::string input = ring();
  std::vector<RewireCommand> attach;
  attach.push_back(command(RewireCommand::Type::kAttachInput, "in", input));
  ASSERT_TRUE(rewiring_.apply(attach));
  ipc::Ring view = shm_.ring(input);
  test::HandProducer producer(shm_, pool_);
  producer.marker(view, ipc::kControlDetach);

  std::vector<RewireCommand> detach;
  detach.push_back(command(RewireCommand::Type::kDetachInput, "in", input));
  ASSERT_TRUE(rewiring_.apply(detach));
  auto a = inputs_.next();

  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->type, InputPorts::Arrival::Type::kHandled);
  EXPECT_FALSE(inputs_.any_connection());
}

TEST_F(RewiringTest, RetirementIsRemembered) {
  EXPECT_FALSE(rewiring_.retiring());
  std::vector<RewireCommand> batch;
  batch.push_back(command(RewireCommand::Type::kRetire, "", ""));

  EXPECT_TRUE(rewiring_.apply(batch));
  EXPECT_TRUE(rewiring_.retiring());
}

}  // namespace
}  // namespace skit::runtime
