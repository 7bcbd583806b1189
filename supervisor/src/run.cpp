// SPDX-License-Identifier: MPL-2.0
#include "skit/supervisor/run.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "skit/core/registry.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"
#include "skit/runtime/node_runner.hpp"
#include "skit/v1/worker.pb.h"
#include "orchestration.hpp"
#include "worker_process.hpp"

namespace skit::supervisor {

using Clock = std::chrono::steady_clock;

std::string_view placement_name(PlacementPolicy policy) {
  return policy == PlacementPolicy::kPerNode ? "per-node" : "grouped";
}

Result<PlacementPolicy> parse_placement(std::string_view name) {
  if (name == "per-node") {
    return PlacementPolicy::kPerNode;
  }
  if (name == "grouped") {
    return PlacementPolicy::kGrouped;
  }
  return Status(ErrorCode::kInvalidArgument,
                "unknown placement '" + std::string(name) + "' (per-node or grouped)");
}

namespace {

using orchestration::from_proto;

/// Events of the supervisor's own (host-side) runners, drained by the run loop.
class HostEvents final : public runtime::EventSink {
 public:
  explicit HostEvents(std::string endpoint) : endpoint_(std::move(endpoint)) {}
  void post(const std::string& node_id, NodeState state, const std::string& message,
            ErrorCode error, const NodeStats& stats) override {
    std::lock_guard lock(mutex_);
    queue_.push_back(Event{node_id, state, message, error, stats});
  }
  [[nodiscard]] const std::string& wake_endpoint() const override { return endpoint_; }

  struct Event {
    std::string node_id;
    NodeState state;
    std::string message;
    ErrorCode error;
    NodeStats stats;
  };
  std::deque<Event> drain() {
    std::lock_guard lock(mutex_);
    return std::exchange(queue_, {});
  }

 private:
  std::string endpoint_;
  std::mutex mutex_;
  std::deque<Event> queue_;
};

struct NodeSlot {
  const v1::NodeSpec* spec = nullptr;
  const NodeDescriptor* descriptor = nullptr;
  std::size_t index = 0;
  int worker = -1;  // -1: host-side
  std::string doorbell;
  NodeReport report;
  bool done = false;
};

struct WorkerSlot {
  std::uint32_t id = 0;
  std::vector<std::size_t> nodes;
  WorkerProcess process;
  std::string identity;
  bool hello = false;
  bool ready = false;
  bool reported_exit = false;
  Clock::time_point exited_at{};
  Clock::time_point last_seen{};
};

class PipelineRun {
 public:
  PipelineRun(const v1::Pipeline& pipeline, const RunOptions& options)
      : pipeline_(pipeline), options_(options) {
    static std::atomic<std::uint32_t> counter{0};
    run_id_ = std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
    doorbell_ = std::make_unique<ipc::Doorbell>(ipc::doorbell_endpoint(run_id_, "sup"));
    host_events_ = std::make_unique<HostEvents>(doorbell_->endpoint());
  }

  RunReport run() {
    const auto t0 = Clock::now();
    report_.placement = options_.placement;
    Status s = setup();
    if (s.is_ok()) {
      s = start_workers();
    }
    if (s.is_ok()) {
      s = loop();
    }
    if (!s.is_ok()) {
      abort(s);
    }
    teardown();
    report_.status = s;
    report_.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    for (auto& n : nodes_) {
      report_.nodes.push_back(n.report);
    }
    report_.worker_count = workers_.size();
    return std::move(report_);
  }

 private:
  Status setup() {
    ipc::remove_stale_segments();
    const auto& registry = NodeRegistry::builtin();
    nodes_.resize(static_cast<std::size_t>(pipeline_.nodes_size()));
    for (int i = 0; i < pipeline_.nodes_size(); ++i) {
      NodeSlot& n = nodes_[static_cast<std::size_t>(i)];
      n.spec = &pipeline_.nodes(i);
      n.index = static_cast<std::size_t>(i);
      n.descriptor = registry.find(n.spec->kind());
      if (n.descriptor == nullptr) {
        return Status(ErrorCode::kUnknownKind, "unknown node kind '" + n.spec->kind() + "'",
                      {.node_id = n.spec->id()});
      }
      n.doorbell = ipc::doorbell_endpoint(run_id_, "n" + std::to_string(i));
      n.report.id = n.spec->id();
      n.report.kind = n.spec->kind();
      by_id_[n.spec->id()] = &n;
    }
    place();
    return create_shared_memory();
  }

  void place() {
    int shared_worker = -1;
    for (auto& n : nodes_) {
      if (n.descriptor->execution == NodeExecution::kHost) {
        n.worker = -1;
        n.report.worker_pid = ::getpid();
        continue;
      }
      // A plugin always runs alone: whatever it does fails its node only. So does a node that
      // needs the network, so that no codec shares the worker its sandbox lets reach out.
      const bool own = options_.placement == PlacementPolicy::kPerNode ||
                       n.spec->isolation() == v1::ISOLATION_DEDICATED ||
                       n.descriptor->native_plugin != nullptr || n.descriptor->needs_network;
      if (own || shared_worker < 0) {
        WorkerSlot w;
        w.id = static_cast<std::uint32_t>(workers_.size());
        w.identity = "w" + std::to_string(w.id);
        workers_.push_back(std::move(w));
        if (!own) {
          shared_worker = static_cast<int>(workers_.size() - 1);
        }
      }
      n.worker = own ? static_cast<int>(workers_.size() - 1) : shared_worker;
      workers_[static_cast<std::size_t>(n.worker)].nodes.push_back(n.index);
    }
  }

  std::string segment_name(const std::string& what) const {
    return "skit-" + run_id_ + "-" + what;
  }

  Status create_shared_memory() {
    // One pool per connected output pin; one ring per connection.
    std::map<std::pair<std::string, std::string>, std::uint32_t> pool_of;
    std::map<std::pair<std::string, std::string>, std::size_t> consumers;
    for (const auto& c : pipeline_.connections()) {
      ++consumers[{c.from_node(), c.from_pin()}];
    }
    const std::uint32_t ring_cap = orchestration::ring_slots(options_.ring_capacity);
    for (const auto& [key, count] : consumers) {
      NodeSlot& producer = *by_id_.at(key.first);
      const Json params = Json::parse(producer.spec->params_json());
      const std::size_t max_bytes =
          std::max<std::size_t>(64, producer.descriptor->max_packet_bytes(params));
      const std::uint32_t slot_count = orchestration::pool_slots(ring_cap, count, /*live=*/false);
      const auto slot_size = static_cast<std::uint32_t>(max_bytes);
      const auto index = static_cast<std::uint32_t>(pools_.size());
      auto segment = ipc::SharedSegment::create(segment_name("p" + std::to_string(index)),
                                                ipc::SlotPool::bytes_for(slot_count, slot_size));
      if (!segment) {
        return segment.status();
      }
      ipc::SlotPool pool = ipc::SlotPool::init(segment->data(), segment->size(), slot_count,
                                               slot_size, producer.doorbell);
      SKIT_RETURN_IF_ERROR(host_pools_.adopt(index, pool));
      pool_of[key] = index;
      pools_.push_back(std::move(segment).value());
      report_.pools.push_back(
          PoolReport{key.first, key.second, slot_count, pool.slot_size(), count});
    }
    for (const auto& c : pipeline_.connections()) {
      const auto index = rings_.size();
      auto segment = ipc::SharedSegment::create(segment_name("r" + std::to_string(index)),
                                                ipc::Ring::bytes_for(ring_cap));
      if (!segment) {
        return segment.status();
      }
      ipc::Ring::init(segment->data(), segment->size(), ring_cap,
                      c.mode() == v1::CONNECTION_MODE_BEST_EFFORT ? ConnectionMode::kBestEffort
                                                                  : ConnectionMode::kReliable,
                      by_id_.at(c.from_node())->doorbell, by_id_.at(c.to_node())->doorbell);
      ring_pool_.push_back(pool_of.at({c.from_node(), c.from_pin()}));
      rings_.push_back(std::move(segment).value());
    }
    return Status::ok();
  }

  /// The runner description of node `n`: its rings and pools by segment name.
  runtime::RunnerSpec runner_spec(const NodeSlot& n) const {
    runtime::RunnerSpec spec;
    spec.node_id = n.spec->id();
    spec.kind = n.spec->kind();
    spec.doorbell = n.doorbell;
    spec.pulls_input = n.descriptor->pulls_input;
    std::vector<std::pair<std::string, std::string>> inputs;
    for (int i = 0; i < pipeline_.connections_size(); ++i) {
      const auto& c = pipeline_.connections(i);
      if (c.to_node() == spec.node_id) {
        inputs.emplace_back(c.to_pin(), rings_[static_cast<std::size_t>(i)].name());
      }
    }
    orchestration::sort_inputs(inputs);
    for (auto& [pin, ring] : inputs) {
      spec.inputs.push_back({std::move(pin), std::move(ring)});
    }
    // Outputs in declaration order, so ctx.output(k) is the k-th declared pin.
    for (const auto& out : n.descriptor->outputs) {
      runtime::RunnerOutput o;
      o.pin = out.name;
      o.passthrough = out.produces.kind == PacketKind::kPassthrough;
      for (int i = 0; i < pipeline_.connections_size(); ++i) {
        const auto& c = pipeline_.connections(i);
        if (c.from_node() == spec.node_id && c.from_pin() == out.name) {
          o.pool_index = ring_pool_[static_cast<std::size_t>(i)];
          o.ring_segments.push_back(rings_[static_cast<std::size_t>(i)].name());
        }
      }
      spec.outputs.push_back(std::move(o));
    }
    return spec;
  }

  Status start_workers() {
    doorbell_->bind();
    control_ = std::make_unique<zmq::socket_t>(ipc::zmq_context(), zmq::socket_type::router);
    control_->set(zmq::sockopt::linger, 0);
    const std::string control_endpoint = "ipc://@skit-" + run_id_ + "-control";
    control_->bind(control_endpoint);

    // Host-side runners (http_input/http_output) live in this process.
    for (auto& n : nodes_) {
      if (n.worker >= 0) {
        continue;
      }
      auto node = n.descriptor->create(Json::parse(n.spec->params_json()));
      if (!node) {
        Status s = node.status();
        s.where().node_id = n.spec->id();
        return s;
      }
      auto runner = std::make_unique<runtime::NodeRunner>(runner_spec(n), std::move(node).value(),
                                                          host_pools_, *host_events_);
      runner->set_host_source(options_.input);
      runner->set_host_sink(options_.output);
      Status s = runner->attach();
      if (s.is_ok()) {
        s = runner->prepare();
      }
      if (!s.is_ok()) {
        s.where().node_id = n.spec->id();
        return s;
      }
      host_runners_.emplace(n.index, std::move(runner));
    }

    for (auto& w : workers_) {
      std::vector<std::string> args = {"worker",     "--control", control_endpoint,
                                       "--worker-id", std::to_string(w.id)};
      auto proc = WorkerProcess::spawn(options_.worker_executable, args);
      if (!proc) {
        return proc.status();
      }
      w.process = std::move(proc).value();
      w.last_seen = Clock::now();
      for (auto idx : w.nodes) {
        nodes_[idx].report.worker_pid = w.process.pid();
      }
    }
    spdlog::debug("run {}: {} worker(s), {} pool(s), {} ring(s)", run_id_, workers_.size(),
                  pools_.size(), rings_.size());

    // Hello -> Assign -> Ready, for every worker, within the start timeout.
    const auto deadline = Clock::now() + options_.start_timeout;
    while (!std::all_of(workers_.begin(), workers_.end(), [](const auto& w) { return w.ready; })) {
      if (Clock::now() > deadline) {
        return Status(ErrorCode::kDeadlineExceeded, "workers did not become ready in time");
      }
      SKIT_RETURN_IF_ERROR(poll_once(std::chrono::milliseconds(50)));
    }
    for (auto& w : workers_) {
      v1::SupervisorMessage msg;
      msg.mutable_start();
      send(w, msg);
    }
    for (auto& [idx, runner] : host_runners_) {
      runner->start();
    }
    started_ = true;
    return Status::ok();
  }

  void send(const WorkerSlot& w, const v1::SupervisorMessage& msg) {
    const std::string payload = msg.SerializeAsString();
    control_->send(zmq::buffer(w.identity), zmq::send_flags::sndmore);
    control_->send(zmq::buffer(payload), zmq::send_flags::none);
  }

  v1::Assign make_assign(const WorkerSlot& w) const {
    v1::Assign a;
    a.set_worker_id(w.id);
    a.set_heartbeat_ms(static_cast<std::uint32_t>(options_.heartbeat_interval.count()));
    for (std::size_t i = 0; i < pools_.size(); ++i) {
      auto* p = a.add_pools();
      p->set_index(static_cast<std::uint32_t>(i));
      p->set_segment(pools_[i].name());
    }
    bool network = false;
    for (auto idx : w.nodes) {
      network = network || nodes_[idx].descriptor->needs_network;
    }
    orchestration::fill_sandbox(*a.mutable_sandbox(), options_.sandbox,
                                options_.sandbox.confined_files, network);
    for (auto idx : w.nodes) {
      const NodeSlot& n = nodes_[idx];
      const auto spec = runner_spec(n);
      std::vector<std::pair<std::string, std::string>> inputs;
      for (const auto& in : spec.inputs) {
        inputs.emplace_back(in.pin, in.ring_segment);
      }
      std::vector<orchestration::OutputBinding> outputs;
      for (const auto& out : spec.outputs) {
        outputs.push_back({out.pin, out.pool_index, out.ring_segments});
      }
      auto* node = a.add_nodes();
      orchestration::fill_node(*node, spec.node_id, spec.kind, n.spec->params_json(),
                               spec.doorbell, std::move(inputs), outputs);
      orchestration::fill_plugin(*node, *n.descriptor);
    }
    return a;
  }

  WorkerSlot* worker_by_identity(const std::string& identity) {
    for (auto& w : workers_) {
      if (w.identity == identity) {
        return &w;
      }
    }
    return nullptr;
  }

  std::string describe_worker(const WorkerSlot& w) const {
    std::string ids;
    for (auto idx : w.nodes) {
      ids += (ids.empty() ? "" : ", ") + std::string("'") + nodes_[idx].spec->id() + "' (" +
             nodes_[idx].spec->kind() + ")";
    }
    return "worker " + std::to_string(w.id) + " (pid " + std::to_string(w.process.pid()) +
           ", node" + (w.nodes.size() > 1 ? "s " : " ") + ids + ")";
  }

  void on_node_state(NodeSlot& n, NodeState state, const std::string& message, ErrorCode error,
                     const NodeStats& stats) {
    n.report.state = state;
    n.report.stats = stats;
    if (!message.empty()) {
      n.report.message = message;
    }
    if (state == NodeState::kStopped || state == NodeState::kFailed) {
      n.done = true;
    }
    if (state == NodeState::kFailed && failure_.is_ok()) {
      // The node's own code (corrupt media, a bad param...) when it sent one.
      failure_ = Status(error != ErrorCode::kOk ? error : ErrorCode::kInternal,
                        n.spec->kind() + " failed: " + message,
                        {.node_id = n.spec->id()});
    }
  }

  Status handle_message(const std::string& identity, const std::string& payload) {
    WorkerSlot* w = worker_by_identity(identity);
    v1::WorkerMessage msg;
    if (w == nullptr || !msg.ParseFromString(payload)) {
      spdlog::warn("run {}: ignoring a malformed control message", run_id_);
      return Status::ok();
    }
    w->last_seen = Clock::now();
    switch (msg.body_case()) {
      case v1::WorkerMessage::kHello: {
        w->hello = true;
        v1::SupervisorMessage reply;
        *reply.mutable_assign() = make_assign(*w);
        send(*w, reply);
        break;
      }
      case v1::WorkerMessage::kReady:
        w->ready = true;
        for (auto idx : w->nodes) {
          nodes_[idx].report.state = NodeState::kReady;
        }
        break;
      case v1::WorkerMessage::kState: {
        const auto& st = msg.state();
        if (auto it = by_id_.find(st.node_id()); it != by_id_.end()) {
          const ErrorCode error = st.error_code() <= static_cast<std::uint32_t>(ErrorCode::kInternal)
                                      ? static_cast<ErrorCode>(st.error_code())
                                      : ErrorCode::kInternal;
          on_node_state(*it->second, from_proto(st.state()), st.message(), error,
                        from_proto(st.stats()));
        }
        break;
      }
      case v1::WorkerMessage::kHeartbeat:
        for (const auto& s : msg.heartbeat().stats()) {
          auto it = by_id_.find(s.node_id());
          if (it == by_id_.end()) {
            continue;
          }
          it->second->report.stats = from_proto(s);
          if (std::chrono::milliseconds(s.busy_ms()) >
              orchestration::call_timeout(*it->second->descriptor, options_.node_timeout)) {
            w->process.kill(SIGKILL);
            return Status(ErrorCode::kDeadlineExceeded,
                          it->second->spec->kind() + " has been stuck in one call for " +
                              std::to_string(s.busy_ms()) + " ms; its worker (pid " +
                              std::to_string(w->process.pid()) + ") was killed",
                          {.node_id = s.node_id()});
          }
        }
        break;
      case v1::WorkerMessage::kError:
        return Status(ErrorCode::kInternal, describe_worker(*w) + ": " + msg.error().message());
      default:
        break;
    }
    return Status::ok();
  }

  /// One round of the event loop: control messages, host events, worker exits, heartbeats.
  Status poll_once(std::chrono::milliseconds timeout) {
    std::vector<zmq::pollitem_t> items;
    items.push_back({control_->handle(), 0, ZMQ_POLLIN, 0});
    items.push_back({doorbell_->handle(), 0, ZMQ_POLLIN, 0});
    for (auto& w : workers_) {
      if (w.process.running()) {
        items.push_back({nullptr, w.process.pidfd(), ZMQ_POLLIN, 0});
      }
    }
    try {
      zmq::poll(items.data(), items.size(), timeout);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {
        throw;
      }
    }
    while (true) {
      zmq::message_t identity;
      zmq::message_t payload;
      if (!control_->recv(identity, zmq::recv_flags::dontwait)) {
        break;
      }
      if (!control_->recv(payload, zmq::recv_flags::dontwait)) {
        break;
      }
      SKIT_RETURN_IF_ERROR(handle_message(identity.to_string(), payload.to_string()));
    }
    doorbell_->wait(std::chrono::microseconds(0));
    for (auto& e : host_events_->drain()) {
      if (auto it = by_id_.find(e.node_id); it != by_id_.end()) {
        on_node_state(*it->second, e.state, e.message, e.error, e.stats);
      }
    }
    for (auto& w : workers_) {
      if (w.process.running() && w.process.try_reap()) {
        if (!w.process.exited_cleanly()) {
          return Status(ErrorCode::kUnavailable,
                        describe_worker(w) + " " + w.process.exit_description());
        }
      }
      if (!w.process.running() && !w.reported_exit) {
        // A clean exit can be seen before the worker's last messages arrive: the pidfd
        // fires while ZeroMQ still delivers them. Allow them a moment.
        if (w.exited_at == Clock::time_point{}) {
          w.exited_at = Clock::now();
        }
        const bool all_done = std::all_of(w.nodes.begin(), w.nodes.end(),
                                          [this](auto idx) { return nodes_[idx].done; });
        if (all_done) {
          w.reported_exit = true;
        } else if (Clock::now() - w.exited_at > std::chrono::seconds(2)) {
          w.reported_exit = true;
          for (auto idx : w.nodes) {
            if (!nodes_[idx].done) {
              return Status(ErrorCode::kUnavailable,
                            describe_worker(w) + " exited before node '" +
                                nodes_[idx].spec->id() + "' finished");
            }
          }
        }
      }
      if (w.process.running() && w.hello &&
          Clock::now() - w.last_seen > options_.heartbeat_timeout) {
        w.process.kill(SIGKILL);
        return Status(ErrorCode::kDeadlineExceeded,
                      describe_worker(w) + " stopped answering (no heartbeat for " +
                          std::to_string(options_.heartbeat_timeout.count()) +
                          " ms) and was killed");
      }
    }
    if (!failure_.is_ok()) {
      return failure_;
    }
    if (options_.cancel != nullptr && options_.cancel->load()) {
      return Status(ErrorCode::kCancelled, "interrupted");
    }
    if (Clock::now() > options_.deadline) {
      return Status(ErrorCode::kDeadlineExceeded, "the pipeline ran past its time limit");
    }
    return Status::ok();
  }

  Status loop() {
    const auto t0 = Clock::now();
    auto next_progress = t0;
    while (true) {
      SKIT_RETURN_IF_ERROR(poll_once(std::chrono::milliseconds(20)));
      const bool nodes_done =
          std::all_of(nodes_.begin(), nodes_.end(), [](const auto& n) { return n.done; });
      const bool workers_gone = std::all_of(workers_.begin(), workers_.end(),
                                            [](const auto& w) { return !w.process.running(); });
      if (nodes_done && workers_gone) {
        return Status::ok();
      }
      if (options_.on_progress && Clock::now() >= next_progress) {
        next_progress += std::chrono::milliseconds(200);
        RunProgress p;
        p.elapsed_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        p.workers = workers_.size();
        for (auto& [idx, runner] : host_runners_) {
          const NodeStats s = runner->stats();
          p.bytes_in += nodes_[idx].descriptor->inputs.empty() ? s.bytes_out : 0;
          p.bytes_out += nodes_[idx].descriptor->outputs.empty() ? s.bytes_in : 0;
          p.media_seconds = std::max(p.media_seconds, s.media_time_us / 1e6);
        }
        for (const auto& n : nodes_) {
          p.media_seconds = std::max(p.media_seconds, n.report.stats.media_time_us / 1e6);
        }
        options_.on_progress(p);
      }
    }
  }

  void abort(const Status& reason) {
    spdlog::debug("run {}: aborting: {}", run_id_, reason.to_string());
    if (control_) {
      for (auto& w : workers_) {
        if (w.process.running() && w.hello) {
          v1::SupervisorMessage msg;
          msg.mutable_stop()->set_reason(reason.message());
          send(w, msg);
        } else if (w.process.running()) {
          // Still starting: it would wait for an assignment that never comes.
          w.process.kill(SIGKILL);
        }
      }
    }
    for (auto& [idx, runner] : host_runners_) {
      runner->request_stop(*doorbell_);
    }
    // streamkit::http_input may be waiting for the client's next bytes, which may never
    // come (an upload held open): the run ends now, not when the client half-closes.
    if (options_.input != nullptr) {
      options_.input->interrupt();
    }
    for (auto& n : nodes_) {
      if (!n.done) {
        n.report.state = NodeState::kFailed;
        if (n.report.message.empty()) {
          n.report.message = reason.message();
        }
      }
    }
  }

  void teardown() {
    for (auto& [idx, runner] : host_runners_) {
      if (!runner->finished()) {
        runner->request_stop(*doorbell_);
      }
      runner->join();
      NodeSlot& n = nodes_[idx];
      n.report.stats = runner->stats();
    }
    for (auto& w : workers_) {
      w.process.terminate(2000);
    }
    host_runners_.clear();
    control_.reset();
    rings_.clear();  // unlinks every segment
    pools_.clear();
  }

  const v1::Pipeline& pipeline_;
  const RunOptions& options_;
  std::string run_id_;
  std::vector<NodeSlot> nodes_;
  std::map<std::string, NodeSlot*> by_id_;
  std::vector<WorkerSlot> workers_;
  std::vector<ipc::SharedSegment> pools_;
  std::vector<ipc::SharedSegment> rings_;
  std::vector<std::uint32_t> ring_pool_;
  runtime::PoolTable host_pools_;
  std::unique_ptr<ipc::Doorbell> doorbell_;
  std::unique_ptr<HostEvents> host_events_;
  std::map<std::size_t, std::unique_ptr<runtime::NodeRunner>> host_runners_;
  std::unique_ptr<zmq::socket_t> control_;
  Status failure_;
  bool started_ = false;
  RunReport report_;
};

}  // namespace

std::string RunReport::to_json(const std::string& pipeline_name) const {
  Json nodes_json = Json::array();
  for (const auto& n : nodes) {
    nodes_json.push_back({{"id", n.id},
                          {"kind", n.kind},
                          {"worker_pid", n.worker_pid},
                          {"packets_in", n.stats.packets_in},
                          {"packets_out", n.stats.packets_out},
                          {"bytes_in", n.stats.bytes_in},
                          {"bytes_out", n.stats.bytes_out},
                          {"dropped", n.stats.dropped},
                          {"state", node_state_name(n.state)},
                          {"message", n.message}});
  }
  Json pools_json = Json::array();
  for (const auto& p : pools) {
    pools_json.push_back({{"node", p.node_id},
                          {"pin", p.pin},
                          {"slot_count", p.slot_count},
                          {"slot_size", p.slot_size},
                          {"consumers", p.consumers}});
  }
  Json out{{"pipeline", pipeline_name},
           {"status", status.is_ok() ? "ok" : "error"},
           {"placement", placement_name(placement)},
           {"workers", worker_count},
           {"wall_seconds", wall_seconds},
           {"nodes", nodes_json},
           {"pools", pools_json}};
  if (!status.is_ok()) {
    out["error"] = status.to_string();
  }
  return out.dump(2);
}

RunReport run_pipeline(const v1::Pipeline& pipeline, const RunOptions& options) {
  try {
    return PipelineRun(pipeline, options).run();
  } catch (const std::exception& e) {
    RunReport report;
    report.status = Status(ErrorCode::kInternal, std::string("supervisor error: ") + e.what());
    return report;
  }
}

}  // namespace skit::supervisor
