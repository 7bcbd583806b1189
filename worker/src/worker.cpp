// SPDX-License-Identifier: MPL-2.0
// The worker process: the control protocol with the supervisor (hello, assign, ready, start,
// live changes, heartbeats, stop), set-up before the sandbox, and forwarding of node events.
#include "skit/worker/worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>
#include <zmq.hpp>

#include "node_assignment.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/runtime/node_runner.hpp"
#include "skit/v1/worker.pb.h"
#include "skit/worker/sandbox.hpp"
#include "worker_events.hpp"

namespace skit::worker {

namespace {

using Clock = std::chrono::steady_clock;

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
    if (!assign.pool_prefix().empty()) {
      pools_.set_name_prefix(assign.pool_prefix());
    }
    for (const auto& p : assign.pools()) {
      SKIT_RETURN_IF_ERROR(pools_.open(p.index(), p.segment()));
    }
    for (const auto& n : assign.nodes()) {
      auto runner = make_runner(n, assign, pools_, events_);
      if (!runner) {
        return runner.status();
      }
      runners_.push_back(std::move(runner).value());
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
                                 {doorbell_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, events_.wake_fd(), ZMQ_POLLIN, 0}};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat -
                                                                               Clock::now());
      try {
        zmq::poll(items, 3, std::max(left, std::chrono::milliseconds(0)));
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
      events_.clear_wake();
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
    if (msg.has_request()) {
      const auto& q = msg.request();
      auto* r = runner_of(q.node_id());
      if (r == nullptr || r->finished()) {
        NodeReply gone = NodeReply::text(503, "node '" + q.node_id() + "' is not running");
        events_.replied(q.node_id(), q.request_id(), gone);
        return;
      }
      r->request(NodeRequest{q.method(), q.resource(), q.content_type(), q.body()},
                 q.request_id(), doorbell_);
      return;
    }
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
    RewireBatches batches = rewire_batches(msg.rewire());
    for (auto& [node_id, commands] : batches.by_node) {
      if (auto* r = runner_of(node_id)) {
        r->rewire(std::move(commands), doorbell_);
      }
    }
    v1::WorkerMessage ack;
    ack.mutable_ack()->set_seq(msg.rewire().seq());
    ack.mutable_ack()->set_error(batches.error);
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
