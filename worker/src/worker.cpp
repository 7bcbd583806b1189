// SPDX-License-Identifier: MPL-2.0
#include "skit/worker/worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <zmq.hpp>

#include "skit/core/registry.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/runtime/node_runner.hpp"
#include "skit/v1/worker.pb.h"
#include "skit/worker/sandbox.hpp"

namespace skit::worker {

namespace {

using Clock = std::chrono::steady_clock;

v1::NodeState to_proto(NodeState s) {
  switch (s) {
    case NodeState::kInitializing: return v1::NODE_STATE_INITIALIZING;
    case NodeState::kReady: return v1::NODE_STATE_READY;
    case NodeState::kRunning: return v1::NODE_STATE_RUNNING;
    case NodeState::kStopped: return v1::NODE_STATE_STOPPED;
    case NodeState::kFailed: return v1::NODE_STATE_FAILED;
  }
  return v1::NODE_STATE_UNSPECIFIED;
}

void fill_stats(v1::NodeStats& out, const std::string& id, const NodeStats& s) {
  out.set_node_id(id);
  out.set_packets_in(s.packets_in);
  out.set_packets_out(s.packets_out);
  out.set_bytes_in(s.bytes_in);
  out.set_bytes_out(s.bytes_out);
  out.set_dropped(s.dropped);
  out.set_media_time_us(s.media_time_us);
}

/// Collects runner events; the main thread forwards them to the supervisor.
class EventQueue final : public runtime::EventSink {
 public:
  explicit EventQueue(std::string endpoint) : endpoint_(std::move(endpoint)) {}
  void post(const std::string& node_id, NodeState state, const std::string& message,
            ErrorCode error, const NodeStats& stats) override {
    v1::WorkerMessage m;
    auto& e = *m.mutable_state();
    e.set_node_id(node_id);
    e.set_state(to_proto(state));
    e.set_message(message);
    e.set_error_code(static_cast<std::uint32_t>(error));
    fill_stats(*e.mutable_stats(), node_id, stats);
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(m));
  }
  void tuned(const std::string& node_id, std::uint64_t op_id, const Status& status) override {
    if (op_id == 0) {
      return;
    }
    v1::WorkerMessage m;
    auto& t = *m.mutable_tuned();
    t.set_node_id(node_id);
    t.set_op_id(op_id);
    t.set_ok(status.is_ok());
    t.set_message(status.is_ok() ? "" : status.to_string());
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(m));
  }
  [[nodiscard]] const std::string& wake_endpoint() const override { return endpoint_; }
  std::deque<v1::WorkerMessage> drain() {
    std::lock_guard lock(mutex_);
    return std::exchange(queue_, {});
  }

 private:
  std::string endpoint_;
  std::mutex mutex_;
  std::deque<v1::WorkerMessage> queue_;
};

class Worker {
 public:
  explicit Worker(const WorkerArgs& args)
      : args_(args),
        control_(ipc::zmq_context(), zmq::socket_type::dealer),
        doorbell_(ipc::doorbell_endpoint(std::to_string(::getppid()) + "-w" +
                                             std::to_string(args.worker_id) + "-" +
                                             std::to_string(::getpid()),
                                         "main")),
        events_(doorbell_.endpoint()) {}

  int run() {
    control_.set(zmq::sockopt::routing_id, "w" + std::to_string(args_.worker_id));
    control_.set(zmq::sockopt::linger, 1000);
    control_.connect(args_.control_endpoint);
    doorbell_.bind();

    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(args_.worker_id);
    hello.mutable_hello()->set_pid(::getpid());
    send(hello);

    v1::SupervisorMessage msg;
    if (!receive(msg, std::chrono::seconds(10)) || !msg.has_assign()) {
      spdlog::error("worker {}: no assignment from the supervisor", args_.worker_id);
      return 2;
    }
    Status s = setup(msg.assign());
    if (!s.is_ok()) {
      return fail(s);
    }
    v1::WorkerMessage ready;
    ready.mutable_ready();
    send(ready);

    // Wait for Start (or Stop) while heartbeating; live changes may already arrive.
    while (true) {
      if (!receive(msg, heartbeat_)) {
        heartbeat();
        continue;
      }
      if (msg.has_start()) {
        break;
      }
      if (msg.has_stop()) {
        return 0;
      }
      handle_live_change(msg);
      forward_events();
    }
    for (auto& r : runners_) {
      r->start();
    }
    return main_loop();
  }

 private:
  Status setup(const v1::Assign& assign) {
    heartbeat_ = std::chrono::milliseconds(std::max<std::uint32_t>(assign.heartbeat_ms(), 10));
    dynamic_ = assign.dynamic();
    if (!assign.pool_prefix().empty()) {
      pools_.set_name_prefix(assign.pool_prefix());
    }
    for (const auto& p : assign.pools()) {
      SKIT_RETURN_IF_ERROR(pools_.open(p.index(), p.segment()));
    }
    const auto& registry = NodeRegistry::builtin();
    for (const auto& n : assign.nodes()) {
      const NodeDescriptor* d = registry.find(n.kind());
      if (d == nullptr) {
        return Status(ErrorCode::kUnknownKind, "unknown kind " + n.kind(), {.node_id = n.node_id()});
      }
      Json params;
      try {
        params = Json::parse(n.params_json());
      } catch (const Json::exception& e) {
        return Status(ErrorCode::kInvalidParam, e.what(), {.node_id = n.node_id()});
      }
      auto node = d->create(params);
      if (!node) {
        Status err = node.status();
        err.where().node_id = n.node_id();
        return err;
      }
      runtime::RunnerSpec spec;
      spec.node_id = n.node_id();
      spec.kind = n.kind();
      spec.doorbell = n.doorbell();
      spec.pulls_input = d->pulls_input;
      spec.accepts_input = !d->inputs.empty();
      spec.confined_files = assign.sandbox().confined_files();
      for (const auto& in : n.inputs()) {
        spec.inputs.push_back({in.pin(), in.ring_segment()});
      }
      for (const auto& out : n.outputs()) {
        runtime::RunnerOutput o;
        o.pin = out.pin();
        o.pool_index = out.pool_index();
        for (const auto& declared : d->outputs) {
          o.passthrough = o.passthrough || (declared.name == out.pin() &&
                                            declared.produces.kind == PacketKind::kPassthrough);
        }
        for (const auto& r : out.ring_segments()) {
          o.ring_segments.push_back(r);
        }
        spec.outputs.push_back(std::move(o));
      }
      runtime::RunnerOptions options;
      options.dynamic = dynamic_;
      runners_.push_back(std::make_unique<runtime::NodeRunner>(
          std::move(spec), std::move(node).value(), pools_, events_, options));
    }
    // Bind every doorbell first, so that connections between this worker's own nodes are
    // made in-process (inproc://).
    for (auto& runner : runners_) {
      runner->bind_doorbell();
    }
    for (auto& runner : runners_) {
      Status st = runner->attach();
      if (st.is_ok()) {
        st = runner->prepare();
      }
      if (!st.is_ok()) {
        st.where().node_id = runner->spec().node_id;
        return st;
      }
      doorbell_.connect(runner->spec().doorbell);
    }
    if (assign.sandbox().enabled()) {
      SandboxPolicy policy;
      policy.address_space_bytes = assign.sandbox().address_space_bytes();
      policy.max_open_files = assign.sandbox().max_open_files();
      policy.allow_network = assign.sandbox().allow_network();
      SKIT_RETURN_IF_ERROR(apply_sandbox(policy));
    }
    return Status::ok();
  }

  int main_loop() {
    auto next_heartbeat = Clock::now() + heartbeat_;
    bool stopping = false;
    while (true) {
      zmq::pollitem_t items[] = {{control_.handle(), 0, ZMQ_POLLIN, 0},
                                 {doorbell_.handle(), 0, ZMQ_POLLIN, 0}};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat -
                                                                               Clock::now());
      try {
        zmq::poll(items, 2, std::max(left, std::chrono::milliseconds(0)));
      } catch (const zmq::error_t&) {
      }
      v1::SupervisorMessage msg;
      while (receive(msg, std::chrono::milliseconds(0))) {
        if (msg.has_stop() && !stopping) {
          stopping = true;
          for (auto& r : runners_) {
            r->request_stop(doorbell_);
          }
        } else {
          handle_live_change(msg);
        }
      }
      doorbell_.wait(std::chrono::microseconds(0));
      forward_events();
      if (Clock::now() >= next_heartbeat) {
        heartbeat();
        next_heartbeat = Clock::now() + heartbeat_;
      }
      if (std::all_of(runners_.begin(), runners_.end(), [](const auto& r) { return r->finished(); })) {
        for (auto& r : runners_) {
          r->join();
        }
        forward_events();
        return 0;
      }
    }
  }

  void forward_events() {
    for (auto& m : events_.drain()) {
      send(m);
    }
  }

  runtime::NodeRunner* runner_of(const std::string& node_id) {
    for (auto& r : runners_) {
      if (r->spec().node_id == node_id) {
        return r.get();
      }
    }
    return nullptr;
  }

  /// Tune and Rewire: new rings are mapped here, on the main thread, so that the supervisor
  /// may unlink their names once it has our Ack; the runners apply the changes themselves.
  void handle_live_change(const v1::SupervisorMessage& msg) {
    if (msg.has_tune()) {
      if (auto* r = runner_of(msg.tune().node_id())) {
        r->tune(Json::parse(msg.tune().params_json(), nullptr, false), doorbell_,
                msg.tune().op_id());
      }
      return;
    }
    if (!msg.has_rewire()) {
      return;
    }
    std::string error;
    std::map<std::string, std::vector<runtime::RewireCommand>> by_node;
    for (const auto& c : msg.rewire().changes()) {
      runtime::RewireCommand cmd;
      cmd.type = static_cast<runtime::RewireCommand::Type>(c.type());
      cmd.pin = c.pin();
      cmd.segment_name = c.ring_segment();
      cmd.drop = c.drop();
      cmd.grace = std::chrono::milliseconds(c.grace_ms());
      if (c.type() == v1::RingChange::ATTACH_INPUT || c.type() == v1::RingChange::ATTACH_OUTPUT) {
        auto segment = ipc::SharedSegment::open(c.ring_segment());
        if (!segment) {
          error += segment.status().to_string() + "; ";
          continue;
        }
        cmd.segment = std::make_unique<ipc::SharedSegment>(std::move(segment).value());
      }
      by_node[c.node_id()].push_back(std::move(cmd));
    }
    for (auto& [node_id, commands] : by_node) {
      if (auto* r = runner_of(node_id)) {
        r->rewire(std::move(commands), doorbell_);
      }
    }
    v1::WorkerMessage ack;
    ack.mutable_ack()->set_seq(msg.rewire().seq());
    ack.mutable_ack()->set_error(error);
    send(ack);
  }

  void heartbeat() {
    v1::WorkerMessage m;
    auto* hb = m.mutable_heartbeat();
    for (auto& r : runners_) {
      auto* s = hb->add_stats();
      fill_stats(*s, r->spec().node_id, r->stats());
      s->set_busy_ms(static_cast<std::uint64_t>(r->busy_for().count()));
    }
    send(m);
  }

  int fail(const Status& s) {
    v1::WorkerMessage m;
    m.mutable_error()->set_message(s.to_string());
    send(m);
    spdlog::error("worker {}: {}", args_.worker_id, s.to_string());
    return 3;
  }

  void send(v1::WorkerMessage& m) {
    m.set_worker_id(args_.worker_id);
    const std::string payload = m.SerializeAsString();
    control_.send(zmq::buffer(payload), zmq::send_flags::none);
  }

  bool receive(v1::SupervisorMessage& out, std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{control_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, timeout) <= 0) {
        return false;
      }
    } catch (const zmq::error_t&) {
      return false;
    }
    zmq::message_t payload;
    if (!control_.recv(payload, zmq::recv_flags::dontwait)) {
      return false;
    }
    return out.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
  }

  WorkerArgs args_;
  zmq::socket_t control_;
  ipc::Doorbell doorbell_;
  EventQueue events_;
  runtime::PoolTable pools_;
  std::vector<std::unique_ptr<runtime::NodeRunner>> runners_;
  std::chrono::milliseconds heartbeat_{250};
  bool dynamic_ = false;
};

}  // namespace

int run_worker(const WorkerArgs& args) {
  try {
    return Worker(args).run();
  } catch (const std::exception& e) {
    spdlog::error("worker {}: {}", args.worker_id, e.what());
    return 4;
  }
}

}  // namespace skit::worker
