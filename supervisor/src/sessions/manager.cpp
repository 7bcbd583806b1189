// SPDX-License-Identifier: MPL-2.0
// The session manager: one control thread owns every live session, its worker processes and
// its shared memory. API threads post commands to it (call()) and never touch session state.
//
// Its parts, each in a file of its own:
//   model.hpp      the sessions' state and what the parts share (Core)
//   batch_check    live edits judged on the graph model, with the YAML compiler's rules
//   edits          batches and tunes carried out (batch_check, then planner and fleet)
//   planner        graph changes -> shared-memory rings and pools, and workers' Rewires
//   fleet          workers: spawn, assign, messages, heartbeats, crashes, restarts, memory
//   events         subscribers and their bounded queues
//   manager.cpp    the control loop, the session table and the API
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <future>
#include <random>
#include <thread>

#include "batch_check.hpp"
#include "edits.hpp"
#include "fleet.hpp"
#include "model.hpp"
#include "planner.hpp"
#include "skit/core/ids.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/supervisor/entry_rules.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::supervisor {

using sessions::Clock;
using sessions::LiveNode;
using sessions::LiveState;
using sessions::LiveWorker;
using sessions::Rewires;
using sessions::Session;
using std::chrono::milliseconds;

namespace {

std::string generated_name() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr std::array<const char*, 16> kAdjectives = {
      "amber", "brisk", "calm", "daring", "eager", "fuzzy", "gentle", "hollow",
      "icy", "jolly", "keen", "lucid", "mellow", "nimble", "quiet", "rapid"};
  static constexpr std::array<const char*, 16> kNouns = {
      "badger", "cedar", "delta", "ember", "falcon", "glacier", "harbor", "island",
      "jaguar", "kestrel", "lagoon", "meadow", "nebula", "otter", "pine", "quartz"};
  std::uniform_int_distribution<std::size_t> pick(0, 15);
  std::uniform_int_distribution<unsigned> hex(0, 0xFFFF);
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", hex(rng));
  return std::string(kAdjectives[pick(rng)]) + "-" + kNouns[pick(rng)] + "-" + suffix;
}

/// Names travel in URL paths and WebSocket fields: letters, digits, '-', '_' and '.', 1 to 64
/// of them, not starting with '.' (so that a name never needs encoding).
Status check_session_name(const std::string& name) {
  const bool ok = name.size() <= 64 && name.front() != '.' &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' ||
                           c == '_' || c == '.';
                  });
  if (!ok) {
    return Status(ErrorCode::kInvalidArgument,
                  "session name '" + name + "' is not allowed: use 1 to 64 letters, digits, "
                  "'-', '_' or '.' (not starting with '.')");
  }
  return Status::ok();
}

Json params_of(const v1::NodeSpec& spec) {
  Json params = Json::parse(spec.params_json().empty() ? "{}" : spec.params_json(), nullptr,
                            /*allow_exceptions=*/false);
  return params.is_object() ? params : Json::object();
}

SessionInfo info_of(const Session& s) {
  return SessionInfo{s.id, s.name, s.created_at, s.nodes.size(), s.owner};
}

Status not_found(std::string_view id_or_name) {
  return Status(ErrorCode::kNotFound, "session '" + std::string(id_or_name) + "' not found");
}

/// Problems one per line, each with its place.
Status joined(const std::vector<Status>& problems) {
  std::string all;
  for (const auto& s : problems) {
    all += (all.empty() ? "" : "\n") + s.to_string();
  }
  return Status(problems.front().code(), all);
}

}  // namespace

class SessionManager::Impl {
 public:
  explicit Impl(SessionConfig config)
      : core_(std::move(config)), planner_(core_), fleet_(core_, planner_),
        edits_(core_, planner_, fleet_) {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ipc::remove_stale_segments();
    thread_ = std::thread([this] { loop(); });
  }

  ~Impl() {
    stopping_.store(true);
    wake();
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(wake_fd_);
  }

  const SessionConfig& config() const { return core_.config; }

  /// Runs `f` on the control thread and returns its result.
  template <typename F>
  auto call(F&& f, const char* what = "command") -> decltype(f()) {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
    auto future = task->get_future();
    {
      std::lock_guard lock(tasks_mutex_);
      tasks_.emplace_back([task, what] {
        const auto t0 = Clock::now();
        (*task)();
        const auto took = Clock::now() - t0;
        if (took > milliseconds(100)) {
          spdlog::warn("session manager: {} took {} ms", what,
                       std::chrono::duration_cast<milliseconds>(took).count());
        }
      });
    }
    wake();
    return future.get();
  }

  // ---- API (control thread) ----

  Result<SessionInfo> create(const std::optional<std::string>& name, const std::string& yaml,
                             const std::string& owner) {
    const SessionConfig& config = core_.config;
    if (live_sessions() >= config.max_sessions) {
      return Status(ErrorCode::kResourceExhausted,
                    "too many sessions (limit " + std::to_string(config.max_sessions) + ")");
    }
    std::string session_name = name.value_or("");
    if (session_name.empty()) {
      do {
        session_name = generated_name();
      } while (core_.find(session_name) != nullptr);
    } else if (Status bad = check_session_name(session_name); !bad.is_ok()) {
      return bad;
    } else if (core_.find(session_name) != nullptr) {
      return Status(ErrorCode::kAlreadyExists,
                    "a session named '" + session_name + "' already exists");
    }
    v1::Pipeline pipeline;
    std::map<std::string, Json> worker_params;  // per node id
    if (!yaml.empty()) {
      CompiledPipeline compiled = compile_pipeline_yaml(yaml);
      if (!compiled.ok()) {
        // One problem per line, each with its place, as POST /api/v1/process reports them.
        return joined(compiled.errors);
      }
      pipeline = compiled.pipeline;
      if (pipeline.mode() == v1::PIPELINE_MODE_ONESHOT) {
        return Status(ErrorCode::kInvalidArgument,
                      "a session runs dynamic pipelines; this one says mode: oneshot");
      }
      if (static_cast<std::size_t>(pipeline.nodes_size()) > config.max_nodes_per_session) {
        return Status(ErrorCode::kResourceExhausted,
                      "the pipeline has " + std::to_string(pipeline.nodes_size()) +
                          " nodes; a session may have " +
                          std::to_string(config.max_nodes_per_session));
      }
      std::vector<Status> problems;
      for (const auto& n : pipeline.nodes()) {
        for (Status& s : edits_.policy_of(n, worker_params[n.id()])) {
          problems.push_back(std::move(s));
        }
      }
      if (!problems.empty()) {
        return joined(problems);
      }
    }
    auto session = std::make_unique<Session>();
    Session& s = *session;
    s.id = uuid_v4();
    s.name = session_name;
    s.created_at = rfc3339_now();
    s.owner = owner;
    s.description = pipeline.description();
    s.number = core_.next_session_number++;
    const auto& registry = NodeRegistry::builtin();
    int shared_worker = -1;
    for (const auto& spec : pipeline.nodes()) {
      LiveNode& n = planner_.add_node(s, spec.id(), spec.kind(), params_of(spec),
                                      worker_params[spec.id()], registry.find(spec.kind()));
      const NodeDescriptor* descriptor = registry.find(spec.kind());
      const bool own = config.placement == PlacementPolicy::kPerNode ||
                       spec.isolation() == v1::ISOLATION_DEDICATED ||
                       (descriptor != nullptr &&
                        (descriptor->native_plugin != nullptr || descriptor->needs_network));
      if (own || shared_worker < 0) {
        const std::uint32_t slot = planner_.add_worker_slot(s);
        if (!own) {
          shared_worker = static_cast<int>(slot);
        }
        n.worker = slot;
      } else {
        n.worker = static_cast<std::uint32_t>(shared_worker);
      }
      s.workers.at(n.worker).nodes.push_back(n.id);
    }
    for (const auto& c : pipeline.connections()) {
      Status st = planner_.add_connection(s, c.from_node(), c.from_pin(), c.to_node(),
                                          c.to_pin(),
                                          c.mode() == v1::CONNECTION_MODE_BEST_EFFORT
                                              ? ConnectionMode::kBestEffort
                                              : ConnectionMode::kReliable);
      if (!st.is_ok()) {
        fleet_.destroy_now(s);
        return st;
      }
    }
    for (auto& [slot, w] : s.workers) {
      Status st = fleet_.spawn(s, w);
      if (!st.is_ok()) {
        fleet_.destroy_now(s);
        return st;
      }
    }
    ++core_.stats.sessions_created;
    core_.sessions.push_back(std::move(session));
    Session& stored = *core_.sessions.back();
    SessionEvent created;
    created.kind = SessionEvent::Kind::kSessionCreated;
    created.name = stored.name;
    created.created_at = stored.created_at;
    core_.emit(stored, std::move(created));
    for (const auto& nid : stored.order) {
      edits_.emit_node_added(stored, stored.nodes.at(nid));
    }
    for (const auto& c : stored.connections) {
      edits_.emit_connection_added(stored, c);
    }
    return info_of(stored);
  }

  /// For create(): kOk once every worker of the session has started; an error (and the
  /// session gone) when one failed to; nothing while still starting.
  std::optional<Status> start_status(const std::string& id, Clock::time_point deadline) {
    Session* s = core_.find(id);
    if (s == nullptr) {
      return Status(ErrorCode::kInternal, "the session vanished while starting");
    }
    std::string errors;
    bool pending = false;
    for (auto& [slot, w] : s->workers) {
      if (!w.setup_error.empty()) {
        errors += (errors.empty() ? "" : "; ") + w.setup_error;
      } else if (!w.started && !w.failed) {
        pending = true;
      }
    }
    if (!errors.empty()) {
      Status err(ErrorCode::kInvalidArgument, "the session could not start: " + errors);
      fleet_.begin_destroy(*s);
      return err;
    }
    if (!pending) {
      return Status::ok();
    }
    if (Clock::now() > deadline) {
      fleet_.begin_destroy(*s);
      return Status(ErrorCode::kDeadlineExceeded, "the session's workers did not start in time");
    }
    return std::nullopt;
  }

  Result<SessionInfo> destroy(std::string_view id_or_name) {
    Session* s = core_.find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    SessionInfo info = info_of(*s);
    fleet_.begin_destroy(*s);
    return info;
  }

  bool is_gone(const std::string& id) const {
    return std::none_of(core_.sessions.begin(), core_.sessions.end(),
                        [&](const auto& s) { return s->id == id; });
  }

  std::vector<SessionInfo> list() const {
    std::vector<SessionInfo> out;
    for (const auto& s : core_.sessions) {
      if (!s->destroying) {
        out.push_back(info_of(*s));
      }
    }
    return out;
  }

  Result<SessionInfo> find_info(std::string_view id_or_name) {
    Session* s = core_.find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    return info_of(*s);
  }

  Result<PipelineView> pipeline(std::string_view id_or_name) {
    Session* s = core_.find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    s->last_activity = Clock::now();
    PipelineView view;
    view.name = s->name;
    view.description = s->description;
    for (const auto& id : s->order) {
      view.nodes.push_back(core_.view_of(*s, s->nodes.at(id)));
    }
    for (const auto& c : s->connections) {
      view.connections.push_back(sessions::view_of(c));
    }
    return view;
  }

  Result<std::vector<BatchIssue>> validate(std::string_view id_or_name,
                                           const std::vector<BatchOperation>& ops) {
    Session* s = core_.find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    s->last_activity = Clock::now();
    return edits_.check(*s, ops, nullptr);
  }

  Status apply(std::string_view id_or_name, const std::vector<BatchOperation>& ops,
               std::vector<BatchIssue>* issues_out) {
    Session* s = core_.find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    s->last_activity = Clock::now();
    return edits_.apply(*s, ops, issues_out);
  }

  /// Sends a tune; returns its op id (0 when nothing to wait for).
  Result<std::uint64_t> tune(std::string_view id_or_name, const std::string& node_id,
                             const Json& patch) {
    Session* s = core_.find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    s->last_activity = Clock::now();
    return edits_.tune(*s, node_id, patch);
  }

  std::optional<Status> tune_result(std::uint64_t op, bool give_up) {
    return edits_.tune_result(op, give_up);
  }

  Result<std::uint64_t> request(std::string_view id_or_name, const std::string& node_id,
                                NodeRequest request) {
    Session* s = core_.find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    s->last_activity = Clock::now();
    return edits_.request(*s, node_id, std::move(request));
  }

  std::optional<Result<NodeReply>> request_result(std::uint64_t id, bool give_up) {
    return edits_.request_result(id, give_up);
  }

  std::shared_ptr<EventSubscription> subscribe(std::size_t capacity) {
    return core_.events.subscribe(capacity);
  }

  SessionManagerStats stats() {
    SessionManagerStats out = core_.stats;
    for (const auto& s : core_.sessions) {
      if (s->destroying) {
        continue;
      }
      ++out.sessions;
      out.nodes += s->nodes.size();
      for (const auto& [slot, w] : s->workers) {
        out.workers += w.process.running() ? 1 : 0;
      }
    }
    out.events_dropped = core_.events.dropped();
    return out;
  }

 private:
  std::size_t live_sessions() const {
    return static_cast<std::size_t>(std::count_if(core_.sessions.begin(), core_.sessions.end(),
                                                  [](const auto& s) { return !s->destroying; }));
  }

  void emit_destroyed(const std::string& id, const std::string& owner) {
    SessionEvent e;
    e.kind = SessionEvent::Kind::kSessionDestroyed;
    e.session_id = id;
    e.owner = owner;
    e.timestamp = rfc3339_now();
    core_.events.emit(e, false);
  }

  void housekeeping() {
    const auto now = Clock::now();
    const bool second = now >= next_second_;
    if (second) {
      next_second_ = now + std::chrono::seconds(1);
    }
    // Memory is watched four times a second: a runaway allocation grows by GB/s.
    const bool memory_check = now >= next_memory_check_;
    if (memory_check) {
      next_memory_check_ = now + milliseconds(250);
    }
    auto& all = core_.sessions;
    for (auto it = all.begin(); it != all.end();) {
      Session& s = **it;
      fleet_.check_workers(s);
      if (s.destroying) {
        const bool all_gone = std::all_of(s.workers.begin(), s.workers.end(), [](const auto& w) {
          return !w.second.process.running();
        });
        if (all_gone || now >= s.destroy_deadline) {
          const std::string id = s.id;
          const std::string owner = s.owner;
          fleet_.destroy_now(s);
          ++core_.stats.sessions_destroyed;
          emit_destroyed(id, owner);
          it = all.erase(it);
          continue;
        }
        ++it;
        continue;
      }
      fleet_.collect_retired(s);
      if (memory_check) {
        fleet_.check_memory(s);
      }
      if (second) {
        every_second(s, now);
      }
      ++it;
    }
  }

  void every_second(Session& s, Clock::time_point now) {
    for (auto& [id, n] : s.nodes) {
      fleet_.maybe_emit_stats(s, n);
    }
    // Rings into failed nodes: nobody reads them; keep them empty so that a producer that was
    // blocked on one reaches a packet boundary and applies its detach.
    for (const auto& c : s.connections) {
      if (!c.severed) {
        continue;
      }
      auto n = s.nodes.find(c.to_node);
      if (n != s.nodes.end() && n->second.state == LiveState::kFailed) {
        const LiveWorker& w = s.workers.at(n->second.worker);
        if (n->second.cut_out || (w.failed && !w.process.running())) {
          sessions::drain_ring(s, c.ring);
        }
      }
    }
    const auto idle_timeout = core_.config.idle_timeout;
    if (idle_timeout.count() > 0 && now - s.last_activity > idle_timeout) {
      const bool idle = std::none_of(s.nodes.begin(), s.nodes.end(), [](const auto& n) {
        return n.second.state == LiveState::kRunning || n.second.state == LiveState::kRecovering ||
               n.second.state == LiveState::kInitializing || n.second.state == LiveState::kReady;
      });
      if (idle) {
        spdlog::info("session {}: idle for {} s, destroyed", s.name, idle_timeout.count());
        fleet_.begin_destroy(s);
      }
    }
  }

  void wake() {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }

  void run_tasks() {
    std::deque<std::function<void()>> tasks;
    {
      std::lock_guard lock(tasks_mutex_);
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) {
      t();
    }
  }

  void drain_control() {
    for (int i = 0; i < 4096; ++i) {
      zmq::message_t identity;
      zmq::message_t payload;
      if (!core_.control->recv(identity, zmq::recv_flags::dontwait)) {
        break;
      }
      if (!core_.control->recv(payload, zmq::recv_flags::dontwait)) {
        break;
      }
      try {
        fleet_.handle_message(identity.to_string(), payload.to_string());
      } catch (const std::exception& e) {
        spdlog::error("session manager: {}", e.what());
      }
    }
  }

  void loop() {
    auto last_turn = Clock::now();
    while (!stopping_.load()) {
      // Heartbeats are judged on time we spent listening: after a long turn of our own (a
      // machine stalled, a slow fork), every worker gets the lost time back.
      const auto turn_start = Clock::now();
      if (turn_start - last_turn > milliseconds(500)) {
        const auto lost = turn_start - last_turn;
        for (auto& s : core_.sessions) {
          for (auto& [slot, w] : s->workers) {
            w.last_seen += lost;
          }
        }
      }
      last_turn = turn_start;
      std::vector<zmq::pollitem_t> items;
      items.push_back({core_.control->handle(), 0, ZMQ_POLLIN, 0});
      items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
      for (const auto& s : core_.sessions) {
        for (const auto& [slot, w] : s->workers) {
          if (w.process.running()) {
            items.push_back({nullptr, w.process.pidfd(), ZMQ_POLLIN, 0});
          }
        }
      }
      try {
        zmq::poll(items.data(), items.size(), milliseconds(50));
      } catch (const zmq::error_t&) {
      }
      std::uint64_t count = 0;
      (void)!::read(wake_fd_, &count, sizeof count);
      drain_control();
      const auto t_tasks = Clock::now();
      last_turn = t_tasks;  // time in poll is listening time
      run_tasks();
      const auto t_house = Clock::now();
      if (t_house - t_tasks > milliseconds(100)) {
        drain_control();  // heartbeats that arrived meanwhile, before judging silence
      }
      housekeeping();
      const auto t_end = Clock::now();
      if (t_end - t_tasks > milliseconds(250)) {
        spdlog::warn("session manager: a slow turn ({} ms in commands, {} ms in housekeeping)",
                     std::chrono::duration_cast<milliseconds>(t_house - t_tasks).count(),
                     std::chrono::duration_cast<milliseconds>(t_end - t_house).count());
      }
    }
    shut_down();
  }

  /// Stops every session, gives workers a moment, then kills what is left.
  void shut_down() {
    for (auto& s : core_.sessions) {
      fleet_.begin_destroy(*s);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    while (Clock::now() < deadline) {
      bool any = false;
      for (auto& s : core_.sessions) {
        for (auto& [slot, w] : s->workers) {
          if (w.process.running() && !w.process.try_reap()) {
            any = true;
          }
        }
      }
      if (!any) {
        break;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    for (auto& s : core_.sessions) {
      fleet_.destroy_now(*s);
      emit_destroyed(s->id, s->owner);
    }
    core_.sessions.clear();
    run_tasks();  // answer anything queued meanwhile (callers see the sessions gone)
    core_.events.close_all();
  }

  sessions::Core core_;
  sessions::Planner planner_;
  sessions::WorkerFleet fleet_;
  sessions::LiveEdits edits_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex tasks_mutex_;
  std::deque<std::function<void()>> tasks_;
  Clock::time_point next_second_ = Clock::now();
  Clock::time_point next_memory_check_ = Clock::now();
};

// ---------------------------------------------------------------------------------------------
// SessionManager: the public API, each call a command run on the control thread

SessionManager::SessionManager(SessionConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}

SessionManager::~SessionManager() = default;

const SessionConfig& SessionManager::config() const { return impl_->config(); }

Result<SessionInfo> SessionManager::create_session(const std::optional<std::string>& name,
                                                   std::string_view yaml, std::string owner) {
  const std::string text(yaml);
  auto created = impl_->call([&] { return impl_->create(name, text, owner); }, "create");
  if (!created) {
    return created;
  }
  const auto deadline = Clock::now() + impl_->config().start_timeout;
  const std::string id = created->id;
  while (true) {
    auto status = impl_->call([&] { return impl_->start_status(id, deadline); }, "start check");
    if (status) {
      if (!status->is_ok()) {
        // Wait for the teardown so that a failed create leaves nothing behind.
        while (!impl_->call([&] { return impl_->is_gone(id); })) {
          std::this_thread::sleep_for(milliseconds(5));
        }
        return *status;
      }
      return created;
    }
    std::this_thread::sleep_for(milliseconds(3));
  }
}

Result<SessionInfo> SessionManager::destroy_session(std::string_view id_or_name) {
  const std::string key(id_or_name);
  auto info = impl_->call([&] { return impl_->destroy(key); }, "destroy");
  if (!info) {
    return info;
  }
  const std::string id = info->id;
  while (!impl_->call([&] { return impl_->is_gone(id); })) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  return info;
}

std::vector<SessionInfo> SessionManager::list_sessions() {
  return impl_->call([&] { return impl_->list(); });
}

Result<SessionInfo> SessionManager::find_session(std::string_view id_or_name) {
  const std::string key(id_or_name);
  return impl_->call([&] { return impl_->find_info(key); });
}

Result<PipelineView> SessionManager::pipeline(std::string_view id_or_name) {
  const std::string key(id_or_name);
  return impl_->call([&] { return impl_->pipeline(key); }, "pipeline");
}

Result<std::vector<BatchIssue>> SessionManager::validate_batch(
    std::string_view id_or_name, const std::vector<BatchOperation>& operations) {
  const std::string key(id_or_name);
  return impl_->call([&] { return impl_->validate(key, operations); });
}

Status SessionManager::apply_batch(std::string_view id_or_name,
                                   const std::vector<BatchOperation>& operations,
                                   std::vector<BatchIssue>* issues) {
  const std::string key(id_or_name);
  return impl_->call([&] { return impl_->apply(key, operations, issues); }, "applybatch");
}

Status SessionManager::tune_node(std::string_view id_or_name, std::string_view node_id,
                                 const Json& patch, bool wait) {
  const std::string key(id_or_name);
  const std::string node(node_id);
  auto op = impl_->call([&] { return impl_->tune(key, node, patch); });
  if (!op) {
    return op.status();
  }
  if (*op == 0) {
    return Status::ok();
  }
  const std::uint64_t id = *op;
  if (!wait) {
    impl_->call([&] { return impl_->tune_result(id, /*give_up=*/true); });
    return Status::ok();
  }
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (true) {
    const bool give_up = Clock::now() >= deadline;
    auto result = impl_->call([&] { return impl_->tune_result(id, give_up); });
    if (result) {
      return *result;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

Result<NodeReply> SessionManager::node_request(std::string_view id_or_name,
                                               std::string_view node_id, NodeRequest request,
                                               std::chrono::milliseconds timeout) {
  const std::string key(id_or_name);
  const std::string node(node_id);
  auto id = impl_->call([&] { return impl_->request(key, node, std::move(request)); });
  if (!id) {
    return id.status();
  }
  const auto deadline = Clock::now() + timeout;
  // Signalling is not on a packet path: a short poll of the control thread is cheap enough.
  while (true) {
    const bool give_up = Clock::now() >= deadline;
    auto result = impl_->call([&] { return impl_->request_result(*id, give_up); });
    if (result) {
      return std::move(*result);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::shared_ptr<EventSubscription> SessionManager::subscribe(std::size_t capacity) {
  return impl_->call([&] { return impl_->subscribe(capacity); });
}

SessionManagerStats SessionManager::stats() {
  return impl_->call([&] { return impl_->stats(); });
}

}  // namespace skit::supervisor
