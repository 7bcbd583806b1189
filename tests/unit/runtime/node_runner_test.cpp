// SPDX-License-Identifier: MPL-2.0
// Live rewiring in the node runtime, in one process (so it runs under ASan/UBSan): runners on
// real shared-memory rings and pools with in-process doorbells, switched from one ring to
// another mid-stream, with drain and drop detaches, and a late consumer that learns the stream
// format from the ring's sticky record.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"
#include "skit/runtime/node_runner.hpp"

namespace skit::runtime {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string unique(const std::string& what) {
  static std::atomic<int> n{0};
  return "skit-" + std::to_string(::getpid()) + "-rt" + std::to_string(n++) + "-" + what;
}

/// Numbered 8-byte packets, one every `period`, after a StreamInfo.
class CountingSource final : public Node {
 public:
  CountingSource(std::uint64_t count, std::chrono::microseconds period)
      : count_(count), period_(period) {}
  Result<Produced> produce(NodeContext& ctx) override {
    if (next_ == 0) {
      StreamInfo info;
      info.codec = "counter";
      info.sample_rate = 1000;
      SKIT_RETURN_IF_ERROR(ctx.output(0).write_stream_info(info, PacketKind::kBinary));
    }
    if (next_ >= count_) {
      return Produced::kDone;
    }
    std::byte bytes[8];
    std::memcpy(bytes, &next_, sizeof next_);
    SKIT_RETURN_IF_ERROR(ctx.output(0).write(bytes, PacketHeader{.kind = PacketKind::kBinary}));
    ++next_;
    if (!ctx.sleep_until(Clock::now() + period_)) {
      return Status(ErrorCode::kCancelled, "stopped");
    }
    return Produced::kMore;
  }
  std::atomic<std::uint64_t> next_{0};

 private:
  std::uint64_t count_;
  std::chrono::microseconds period_;
};

/// Forwards every packet (zero copy).
class Forward final : public Node {
 public:
  Status process(NodeContext& ctx, const PacketView& packet) override {
    return ctx.output(0).forward(packet);
  }
};

/// Records what it receives.
class Recorder final : public Node {
 public:
  Status process(NodeContext& /*ctx*/, const PacketView& packet) override {
    std::uint64_t v = 0;
    std::memcpy(&v, packet.data.data(), sizeof v);
    std::lock_guard lock(mutex);
    values.push_back(v);
    return Status::ok();
  }
  Status on_stream_info(NodeContext& /*ctx*/, std::size_t /*input*/,
                        const StreamInfo& info) override {
    std::lock_guard lock(mutex);
    infos.push_back(info.codec);
    return Status::ok();
  }
  Status finish(NodeContext& /*ctx*/) override {
    finished = true;
    return Status::ok();
  }
  std::mutex mutex;
  std::vector<std::uint64_t> values;
  std::vector<std::string> infos;
  std::atomic<bool> finished{false};
};

class NullEvents final : public EventSink {
 public:
  NullEvents() : endpoint_(ipc::doorbell_endpoint(std::to_string(::getpid()) + "-rtev", "ev")) {}
  void post(const std::string& /*node_id*/, NodeState state, const std::string& message,
            ErrorCode /*error*/, const NodeStats& /*stats*/) override {
    if (state == NodeState::kFailed) {
      std::lock_guard lock(mutex_);
      failures_.push_back(message);
    }
  }
  [[nodiscard]] const std::string& wake_endpoint() const override { return endpoint_; }
  std::vector<std::string> failures() {
    std::lock_guard lock(mutex_);
    return failures_;
  }

 private:
  std::string endpoint_;
  std::mutex mutex_;
  std::vector<std::string> failures_;
};

/// Pools and rings of one test graph, owned (and unlinked) here.
class Graph {
 public:
  std::uint32_t add_pool(const std::string& owner_doorbell) {
    const auto index = static_cast<std::uint32_t>(segments_.size());
    auto seg = ipc::SharedSegment::create(unique("p"), ipc::SlotPool::bytes_for(48, 64)).value();
    ipc::SlotPool pool = ipc::SlotPool::init(seg.data(), seg.size(), 48, 64, owner_doorbell);
    EXPECT_TRUE(pools.adopt(index, pool).is_ok());
    segments_.push_back(std::move(seg));
    return index;
  }
  std::string add_ring(const std::string& producer, const std::string& consumer,
                       ConnectionMode mode = ConnectionMode::kReliable) {
    auto seg = ipc::SharedSegment::create(unique("r"), ipc::Ring::bytes_for(16)).value();
    ipc::Ring::init(seg.data(), seg.size(), 16, mode, producer, consumer);
    const std::string name = seg.name();
    segments_.push_back(std::move(seg));
    return name;
  }
  PoolTable pools;

 private:
  std::vector<ipc::SharedSegment> segments_;
};

std::unique_ptr<ipc::SharedSegment> open_segment(const std::string& name) {
  return std::make_unique<ipc::SharedSegment>(ipc::SharedSegment::open(name).value());
}

RewireCommand command(RewireCommand::Type type, const std::string& pin, const std::string& ring,
                      bool drop = false) {
  RewireCommand c;
  c.type = type;
  c.pin = pin;
  c.segment_name = ring;
  if (type == RewireCommand::Type::kAttachInput || type == RewireCommand::Type::kAttachOutput) {
    c.segment = open_segment(ring);
  }
  c.drop = drop;
  return c;
}

RunnerSpec spec(const std::string& id, const std::string& doorbell, bool accepts_input) {
  RunnerSpec s;
  s.node_id = id;
  s.kind = "test";
  s.doorbell = doorbell;
  s.accepts_input = accepts_input;
  return s;
}

class NodeRunnerRewire : public ::testing::Test {
 protected:
  void SetUp() override {
    control_.bind();
  }
  /// Doorbell names are never reused: ZeroMQ releases a bound name asynchronously.
  static std::string bell(const std::string& name) {
    static std::atomic<int> counter{0};
    return ipc::doorbell_endpoint(std::to_string(::getpid()) + "-rt" + std::to_string(counter++),
                                  name);
  }
  RunnerOptions live() {
    RunnerOptions o;
    o.dynamic = true;
    return o;
  }
  ipc::Doorbell control_{bell("ctl")};
  NullEvents events_;
  Graph graph_;
};

TEST_F(NodeRunnerRewire, SwitchingAProducerToAnotherPathLosesAndReordersNothing) {
  // src -> fwd_a -> sink, then src -> fwd_b -> sink: fwd_a drains its ring and closes its
  // output with a detach marker; only then does the sink read fwd_b's ring.
  const std::string src_bell = bell("src"), a_bell = bell("a"), b_bell = bell("b"),
                    sink_bell = bell("sink");
  const std::uint32_t src_pool = graph_.add_pool(src_bell);
  const std::uint32_t a_pool = graph_.add_pool(a_bell);
  const std::uint32_t b_pool = graph_.add_pool(b_bell);
  const std::string r_src_a = graph_.add_ring(src_bell, a_bell);
  const std::string r_a_sink = graph_.add_ring(a_bell, sink_bell);
  const std::string r_src_b = graph_.add_ring(src_bell, b_bell);
  const std::string r_b_sink = graph_.add_ring(b_bell, sink_bell);

  auto source = std::make_unique<CountingSource>(600, 500us);
  CountingSource* src_node = source.get();
  auto recorder = std::make_unique<Recorder>();
  Recorder* rec = recorder.get();

  RunnerSpec s_src = spec("src", src_bell, false);
  s_src.outputs.push_back({"out", false, src_pool, {r_src_a}});
  RunnerSpec s_a = spec("a", a_bell, true);
  s_a.inputs.push_back({"in", r_src_a});
  s_a.outputs.push_back({"out", true, a_pool, {r_a_sink}});
  RunnerSpec s_b = spec("b", b_bell, true);
  s_b.outputs.push_back({"out", true, b_pool, {}});
  RunnerSpec s_sink = spec("sink", sink_bell, true);
  s_sink.inputs.push_back({"in", r_a_sink});

  NodeRunner src(s_src, std::move(source), graph_.pools, events_, live());
  NodeRunner a(s_a, std::make_unique<Forward>(), graph_.pools, events_, live());
  NodeRunner b(s_b, std::make_unique<Forward>(), graph_.pools, events_, live());
  NodeRunner sink(s_sink, std::move(recorder), graph_.pools, events_, live());
  for (NodeRunner* r : {&src, &a, &b, &sink}) {
    r->bind_doorbell();
  }
  for (NodeRunner* r : {&src, &a, &b, &sink}) {
    ASSERT_TRUE(r->attach().is_ok());
    ASSERT_TRUE(r->prepare().is_ok());
  }
  for (NodeRunner* r : {&src, &a, &b, &sink}) {
    r->start();
  }
  while (src_node->next_ < 200) {
    std::this_thread::sleep_for(1ms);
  }
  // One batch: b joins (input and output), sink queues b's ring, src switches, a retires.
  {
    std::vector<RewireCommand> cmds;
    cmds.push_back(command(RewireCommand::Type::kAttachInput, "in", r_src_b));
    cmds.push_back(command(RewireCommand::Type::kAttachOutput, "out", r_b_sink));
    b.rewire(std::move(cmds), control_);
  }
  {
    std::vector<RewireCommand> cmds;
    cmds.push_back(command(RewireCommand::Type::kAttachInput, "in", r_b_sink));
    sink.rewire(std::move(cmds), control_);
  }
  {
    std::vector<RewireCommand> cmds;
    cmds.push_back(command(RewireCommand::Type::kDetachOutput, "out", r_src_a));
    cmds.push_back(command(RewireCommand::Type::kAttachOutput, "out", r_src_b));
    src.rewire(std::move(cmds), control_);
  }
  {
    std::vector<RewireCommand> cmds;
    cmds.push_back(command(RewireCommand::Type::kRetire, "", ""));
    a.rewire(std::move(cmds), control_);
  }
  const auto deadline = Clock::now() + 10s;
  while (!rec->finished && Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(rec->finished) << "the sink never saw the end of the stream";
  for (NodeRunner* r : {&src, &a, &b, &sink}) {
    r->join();
  }
  EXPECT_TRUE(a.finished());
  std::lock_guard lock(rec->mutex);
  ASSERT_EQ(rec->values.size(), 600U);
  for (std::uint64_t i = 0; i < 600; ++i) {
    ASSERT_EQ(rec->values[i], i) << "out of order or lost at " << i;
  }
  // The format went through once: b's replay of it is recognised as the same stream.
  EXPECT_EQ(rec->infos.size(), 1U);
  EXPECT_GT(a.stats().packets_in, 100U);
  EXPECT_GT(b.stats().packets_in, 100U);
  EXPECT_TRUE(events_.failures().empty());
}

TEST_F(NodeRunnerRewire, ADroppedConnectionIsDiscardedUpToItsMarkerAndTheNextOneIsRead) {
  const std::string src_bell = bell("src"), sink_bell = bell("sink");
  const std::uint32_t src_pool = graph_.add_pool(src_bell);
  const std::string r1 = graph_.add_ring(src_bell, sink_bell);
  const std::string r2 = graph_.add_ring(src_bell, sink_bell);
  auto source = std::make_unique<CountingSource>(400, 500us);
  CountingSource* src_node = source.get();
  auto recorder = std::make_unique<Recorder>();
  Recorder* rec = recorder.get();
  RunnerSpec s_src = spec("src", src_bell, false);
  s_src.outputs.push_back({"out", false, src_pool, {r1}});
  RunnerSpec s_sink = spec("sink", sink_bell, true);
  s_sink.inputs.push_back({"in", r1});
  NodeRunner src(s_src, std::move(source), graph_.pools, events_, live());
  NodeRunner sink(s_sink, std::move(recorder), graph_.pools, events_, live());
  src.bind_doorbell();
  sink.bind_doorbell();
  ASSERT_TRUE(src.attach().is_ok());
  ASSERT_TRUE(sink.attach().is_ok());
  src.start();
  sink.start();
  while (src_node->next_ < 100) {
    std::this_thread::sleep_for(1ms);
  }
  {
    std::vector<RewireCommand> cmds;
    cmds.push_back(command(RewireCommand::Type::kDetachInput, "in", r1, /*drop=*/true));
    cmds.push_back(command(RewireCommand::Type::kAttachInput, "in", r2));
    sink.rewire(std::move(cmds), control_);
  }
  {
    std::vector<RewireCommand> cmds;
    cmds.push_back(command(RewireCommand::Type::kDetachOutput, "out", r1));
    cmds.push_back(command(RewireCommand::Type::kAttachOutput, "out", r2));
    src.rewire(std::move(cmds), control_);
  }
  const auto deadline = Clock::now() + 10s;
  while (!rec->finished && Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(rec->finished);
  src.join();
  sink.join();
  std::lock_guard lock(rec->mutex);
  // Increasing and ending with the last packet; what was queued on r1 at the switch may be
  // dropped, nothing after it.
  ASSERT_FALSE(rec->values.empty());
  EXPECT_EQ(rec->values.back(), 399U);
  for (std::size_t i = 1; i < rec->values.size(); ++i) {
    ASSERT_LT(rec->values[i - 1], rec->values[i]);
  }
  EXPECT_GE(rec->values.size(), 400U - 20U);
  // Every slot went back to the pool.
  EXPECT_EQ(graph_.pools.find(src_pool)->slots_in_use(), 0U);
}

TEST_F(NodeRunnerRewire, AConsumerJoiningMidStreamLearnsTheFormatFromTheRing) {
  const std::string src_bell = bell("src"), sink_bell = bell("sink");
  const std::uint32_t src_pool = graph_.add_pool(src_bell);
  const std::string r1 = graph_.add_ring(src_bell, sink_bell);
  auto source = std::make_unique<CountingSource>(10, 500us);
  RunnerSpec s_src = spec("src", src_bell, false);
  s_src.outputs.push_back({"out", false, src_pool, {r1}});
  NodeRunner src(s_src, std::move(source), graph_.pools, events_, live());
  src.bind_doorbell();
  ASSERT_TRUE(src.attach().is_ok());
  src.start();
  src.join();  // everything, stream info first, is queued in r1 (or dropped: none here)
  // A consumer that starts only now (a restarted decoder) still gets the format first.
  std::vector<std::byte> sticky;
  std::uint32_t kind = 0;
  auto seg = ipc::SharedSegment::open(r1).value();
  auto ring = ipc::Ring::attach(seg.data(), seg.size()).value();
  ASSERT_TRUE(ring.sticky(sticky, kind));
  EXPECT_EQ(StreamInfo::parse(sticky)->codec, "counter");
}

}  // namespace
}  // namespace skit::runtime
