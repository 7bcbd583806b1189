// SPDX-License-Identifier: MPL-2.0
// The session manager: one control thread owns every live session, its worker processes and
// its shared memory. API threads post commands to it (call()) and never touch session state.
#include "skit/supervisor/sessions.hpp"

#include "skit/supervisor/entry_rules.hpp"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <ctime>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <zmq.hpp>

#include "skit/core/ids.hpp"
#include "skit/core/registry.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"
#include "skit/v1/worker.pb.h"
#include "worker_process.hpp"

namespace skit::supervisor {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// EventSubscription

std::optional<SessionEvent> EventSubscription::next(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [this] { return closed_ || !queue_.empty(); });
  if (queue_.empty()) {
    return std::nullopt;
  }
  SessionEvent e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

std::uint64_t EventSubscription::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

std::uint64_t EventSubscription::coalesced() const {
  std::lock_guard lock(mutex_);
  return coalesced_;
}

void EventSubscription::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  ready_.notify_all();
  notify();
}

void EventSubscription::set_listener(std::function<void()> listener) {
  std::lock_guard lock(listener_mutex_);
  listener_ = std::move(listener);
}

void EventSubscription::notify() {
  std::lock_guard lock(listener_mutex_);
  if (listener_) {
    listener_();
  }
}

bool EventSubscription::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

void EventSubscription::push(SessionEvent event, bool coalesce_stats) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      return;
    }
    if (coalesce_stats) {
      // A newer snapshot of the same node's counters replaces the queued one.
      const auto& node = event.payload["node_id"];
      for (auto& queued : queue_) {
        if (queued.session_id == event.session_id && queued.payload["event"] == "nodestatsupdated" &&
            queued.payload["node_id"] == node) {
          queued = std::move(event);
          ++coalesced_;
          return;
        }
      }
    }
    if (queue_.size() >= capacity_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(std::move(event));
  }
  ready_.notify_one();
  notify();
}

// ---------------------------------------------------------------------------------------------
// Batch operations

Result<BatchOperation> batch_operation_from_json(const Json& json) {
  if (!json.is_object()) {
    return Status(ErrorCode::kInvalidArgument, "a batch operation must be an object");
  }
  auto text = [&](const char* key, bool required, std::string& out) -> Status {
    auto it = json.find(key);
    if (it == json.end() || it->is_null()) {
      return required ? Status(ErrorCode::kInvalidArgument,
                               std::string("operation is missing '") + key + "'")
                      : Status::ok();
    }
    if (!it->is_string()) {
      return Status(ErrorCode::kInvalidArgument, std::string("'") + key + "' must be a string");
    }
    out = it->get<std::string>();
    return Status::ok();
  };
  std::string action;
  SKIT_RETURN_IF_ERROR(text("action", true, action));
  BatchOperation op;
  if (action == "addnode") {
    op.action = BatchOperation::Action::kAddNode;
    SKIT_RETURN_IF_ERROR(text("node_id", true, op.node_id));
    SKIT_RETURN_IF_ERROR(text("kind", true, op.kind));
    if (auto it = json.find("params"); it != json.end()) {
      if (!it->is_null() && !it->is_object()) {
        return Status(ErrorCode::kInvalidParam, "'params' must be an object",
                      {.node_id = op.node_id});
      }
      op.params = *it;
    }
  } else if (action == "removenode") {
    op.action = BatchOperation::Action::kRemoveNode;
    SKIT_RETURN_IF_ERROR(text("node_id", true, op.node_id));
  } else if (action == "connect" || action == "disconnect") {
    op.action = action == "connect" ? BatchOperation::Action::kConnect
                                    : BatchOperation::Action::kDisconnect;
    SKIT_RETURN_IF_ERROR(text("from_node", true, op.from_node));
    SKIT_RETURN_IF_ERROR(text("from_pin", true, op.from_pin));
    SKIT_RETURN_IF_ERROR(text("to_node", true, op.to_node));
    SKIT_RETURN_IF_ERROR(text("to_pin", true, op.to_pin));
    std::string mode;
    SKIT_RETURN_IF_ERROR(text("mode", false, mode));
    if (mode.empty() || mode == "reliable") {
      op.mode = ConnectionMode::kReliable;
    } else if (mode == "best_effort") {
      op.mode = ConnectionMode::kBestEffort;
    } else {
      return Status(ErrorCode::kInvalidArgument,
                    "unknown connection mode '" + mode + "' (reliable or best_effort)");
    }
  } else {
    return Status(ErrorCode::kInvalidArgument,
                  "unknown batch action '" + action +
                      "' (addnode, removenode, connect or disconnect)");
  }
  return op;
}

namespace {

std::mt19937_64& rng() {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen;
}

std::string generated_name() {
  static constexpr std::array<const char*, 16> kAdjectives = {
      "amber", "brisk", "calm", "daring", "eager", "fuzzy", "gentle", "hollow",
      "icy", "jolly", "keen", "lucid", "mellow", "nimble", "quiet", "rapid"};
  static constexpr std::array<const char*, 16> kNouns = {
      "badger", "cedar", "delta", "ember", "falcon", "glacier", "harbor", "island",
      "jaguar", "kestrel", "lagoon", "meadow", "nebula", "otter", "pine", "quartz"};
  std::uniform_int_distribution<std::size_t> pick(0, 15);
  std::uniform_int_distribution<unsigned> hex(0, 0xFFFF);
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", hex(rng()));
  return std::string(kAdjectives[pick(rng())]) + "-" + kNouns[pick(rng())] + "-" + suffix;
}

const InputPinSpec* find_input_pin(const NodeDescriptor& d, std::string_view pin) {
  for (const auto& in : d.inputs) {
    if (in.name == pin) {
      return &in;
    }
    if (in.cardinality == Cardinality::kDynamic && pin.size() > in.name.size() + 1 &&
        pin.substr(0, in.name.size()) == in.name && pin[in.name.size()] == '_' &&
        std::all_of(pin.begin() + static_cast<std::ptrdiff_t>(in.name.size() + 1), pin.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      return &in;
    }
  }
  return nullptr;
}

const OutputPinSpec* find_output_pin(const NodeDescriptor& d, std::string_view pin) {
  for (const auto& out : d.outputs) {
    if (out.name == pin) {
      return &out;
    }
  }
  return nullptr;
}

std::uint32_t round_up_pow2(std::uint32_t v) {
  std::uint32_t p = 1;
  while (p < v) {
    p <<= 1U;
  }
  return p;
}

std::uint64_t resident_bytes(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  if (!(statm >> size >> resident)) {
    return 0;
  }
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// ---- The live model ---------------------------------------------------------------------------

enum class LiveState : std::uint8_t {
  kInitializing, kReady, kRunning, kRecovering, kStopped, kFailed
};

struct LiveNode {
  std::string id;
  std::string kind;
  Json params = Json::object();         // as the user gave them (pipeline JSON, events)
  Json worker_params = Json::object();  // as the worker gets them: file paths confined
  const NodeDescriptor* descriptor = nullptr;
  LiveState state = LiveState::kInitializing;
  std::string reason;   // Stopped/Failed/Recovering
  Json details;         // Recovering
  NodeStats stats;
  NodeStats emitted_stats;
  Clock::time_point stats_emitted_at{};
  Clock::time_point started_at = Clock::now();
  std::uint32_t worker = 0;  // session-local worker slot
  std::string doorbell;
  std::vector<std::uint32_t> pools;  // one per declared output pin
  std::uint32_t restarts = 0;
  bool cut_out = false;  // failed in a live worker: its runner is gone, its rings unread
};

struct LiveConnection {
  std::string from_node, from_pin, to_node, to_pin;
  ConnectionMode mode = ConnectionMode::kReliable;
  std::string ring;
  bool severed = false;  // an end failed for good: both sides were told to let go
};

struct LiveWorker {
  std::uint32_t slot = 0;
  std::uint32_t gid = 0;  // global id of the current incarnation (control identity)
  std::vector<std::string> nodes;
  WorkerProcess process;
  bool hello = false;
  bool started = false;
  bool exited = false;
  bool failed = false;    // gave up restarting
  bool retiring = false;  // every node removed: it exits on its own, or is killed at deadline
  Clock::time_point retire_deadline{};
  Clock::time_point last_seen{};
  Clock::time_point spawned_at{};
  std::string kill_reason;
  std::deque<Clock::time_point> crashes;
  milliseconds backoff{0};
  std::optional<Clock::time_point> restart_at;
  std::uint64_t sent_seq = 0;
  std::uint64_t acked_seq = 0;
  std::string setup_error;  // WorkerError before Ready
};

struct RetiredSegment {
  std::unique_ptr<ipc::SharedSegment> segment;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> waits;  // (gid, seq) to be acked
  Clock::time_point not_before{};
};

struct TuneWait {
  std::optional<Status> result;
  Clock::time_point sent_at{};
};

struct Session {
  std::string id;
  std::string name;
  std::string created_at;
  std::string description;
  std::uint32_t number = 0;
  std::vector<std::string> order;  // node ids in insertion order
  std::map<std::string, LiveNode> nodes;
  std::vector<LiveConnection> connections;
  std::map<std::uint32_t, LiveWorker> workers;
  std::uint32_t next_worker = 0;
  std::map<std::uint32_t, ipc::SharedSegment> pools;
  std::uint32_t next_pool = 0;
  std::map<std::string, ipc::SharedSegment> rings;
  std::uint32_t next_ring = 0;
  std::uint32_t next_doorbell = 0;
  std::vector<RetiredSegment> retired;
  Clock::time_point last_activity = Clock::now();
  bool destroying = false;
  Clock::time_point destroy_deadline{};
  bool destroyed = false;
};

Json state_json(const LiveNode& n) {
  switch (n.state) {
    case LiveState::kInitializing: return "Initializing";
    case LiveState::kReady: return "Ready";
    case LiveState::kRunning: return "Running";
    case LiveState::kRecovering: {
      Json r{{"reason", n.reason}};
      if (!n.details.is_null()) {
        r["details"] = n.details;
      }
      return Json{{"Recovering", r}};
    }
    case LiveState::kStopped: return Json{{"Stopped", {{"reason", n.reason}}}};
    case LiveState::kFailed: return Json{{"Failed", {{"reason", n.reason}}}};
  }
  return "Initializing";
}

Json stats_json(const LiveNode& n) {
  return Json{{"received", n.stats.packets_in},
              {"sent", n.stats.packets_out},
              {"discarded", n.stats.dropped},
              {"errored", n.state == LiveState::kFailed ? 1 : 0},
              {"duration_secs",
               std::chrono::duration<double>(Clock::now() - n.started_at).count()},
              {"bytes_in", n.stats.bytes_in},
              {"bytes_out", n.stats.bytes_out}};
}

SessionInfo info_of(const Session& s) {
  return SessionInfo{s.id, s.name, s.created_at, s.nodes.size()};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Impl

class SessionManager::Impl {
 public:
  explicit Impl(SessionConfig config) : config_(std::move(config)) {
    static std::atomic<std::uint32_t> counter{0};
    run_id_ = std::to_string(::getpid()) + "-m" + std::to_string(counter.fetch_add(1));
    if (config_.event_queue_capacity == 0) {
      config_.event_queue_capacity = 1024;
    }
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ipc::remove_stale_segments();
    control_ = std::make_unique<zmq::socket_t>(ipc::zmq_context(), zmq::socket_type::router);
    control_->set(zmq::sockopt::linger, 0);
    control_->set(zmq::sockopt::router_handover, 1);
    control_endpoint_ = "ipc://@skit-" + run_id_ + "-control";
    control_->bind(control_endpoint_);
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

  const SessionConfig& config() const { return config_; }

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

  /// Names travel in URL paths and WebSocket fields: letters, digits, '-', '_' and '.', 1 to
  /// 64 of them, not starting with '.' (so that a name never needs encoding).
  static Status check_session_name(const std::string& name) {
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

  Result<SessionInfo> create(const std::optional<std::string>& name, const std::string& yaml) {
    if (live_sessions() >= config_.max_sessions) {
      return Status(ErrorCode::kResourceExhausted,
                    "too many sessions (limit " + std::to_string(config_.max_sessions) + ")");
    }
    std::string session_name = name.value_or("");
    if (session_name.empty()) {
      do {
        session_name = generated_name();
      } while (find(session_name) != nullptr);
    } else if (Status bad = check_session_name(session_name); !bad.is_ok()) {
      return bad;
    } else if (find(session_name) != nullptr) {
      return Status(ErrorCode::kAlreadyExists,
                    "a session named '" + session_name + "' already exists");
    }
    v1::Pipeline pipeline;
    std::map<std::string, Json> worker_params;  // per node id
    if (!yaml.empty()) {
      CompiledPipeline compiled = compile_pipeline_yaml(yaml);
      if (!compiled.ok()) {
        // One problem per line, each with its place, as POST /api/v1/process reports them.
        std::string all;
        for (const auto& e : compiled.errors) {
          all += (all.empty() ? "" : "\n") + e.to_string();
        }
        return Status(compiled.errors.front().code(), all);
      }
      pipeline = compiled.pipeline;
      if (pipeline.mode() == v1::PIPELINE_MODE_ONESHOT) {
        return Status(ErrorCode::kInvalidArgument,
                      "a session runs dynamic pipelines; this one says mode: oneshot");
      }
      if (static_cast<std::size_t>(pipeline.nodes_size()) > config_.max_nodes_per_session) {
        return Status(ErrorCode::kResourceExhausted,
                      "the pipeline has " + std::to_string(pipeline.nodes_size()) +
                          " nodes; a session may have " +
                          std::to_string(config_.max_nodes_per_session));
      }
      std::vector<Status> problems;
      for (const auto& n : pipeline.nodes()) {
        for (Status& s : policy_of(n, worker_params[n.id()])) {
          problems.push_back(std::move(s));
        }
      }
      if (!problems.empty()) {
        std::string all;
        for (const auto& s : problems) {
          all += (all.empty() ? "" : "\n") + s.to_string();
        }
        return Status(problems.front().code(), all);  // each line names its place
      }
    }
    auto session = std::make_unique<Session>();
    Session& s = *session;
    s.id = uuid_v4();
    s.name = session_name;
    s.created_at = rfc3339_now();
    s.description = pipeline.description();
    s.number = next_session_number_++;
    const auto& registry = NodeRegistry::builtin();
    int shared_worker = -1;
    for (const auto& spec : pipeline.nodes()) {
      LiveNode& n = add_node_model(s, spec.id(), spec.kind(), params_of(spec),
                                   worker_params[spec.id()], registry.find(spec.kind()));
      const bool own = config_.placement == PlacementPolicy::kPerNode ||
                       spec.isolation() == v1::ISOLATION_DEDICATED;
      if (own || shared_worker < 0) {
        const std::uint32_t slot = new_worker_slot(s);
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
      Status st = add_connection_model(s, c.from_node(), c.from_pin(), c.to_node(), c.to_pin(),
                                       c.mode() == v1::CONNECTION_MODE_BEST_EFFORT
                                           ? ConnectionMode::kBestEffort
                                           : ConnectionMode::kReliable);
      if (!st.is_ok()) {
        destroy_now(s);
        return st;
      }
    }
    for (auto& [slot, w] : s.workers) {
      Status st = spawn(s, w);
      if (!st.is_ok()) {
        destroy_now(s);
        return st;
      }
    }
    ++stats_.sessions_created;
    const std::string id = s.id;
    sessions_.push_back(std::move(session));
    Session& stored = *sessions_.back();
    emit(stored, Json{{"event", "sessioncreated"},
                      {"session_id", stored.id},
                      {"name", stored.name},
                      {"created_at", stored.created_at}});
    for (const auto& nid : stored.order) {
      const LiveNode& n = stored.nodes.at(nid);
      emit(stored, Json{{"event", "nodeadded"},
                        {"session_id", stored.id},
                        {"node_id", n.id},
                        {"kind", n.kind},
                        {"params", n.params}});
    }
    for (const auto& c : stored.connections) {
      emit(stored, connection_event("connectionadded", stored, c));
    }
    return info_of(stored);
  }

  /// For create(): kOk once every worker of the session has started; an error (and the
  /// session gone) when one failed to; nothing while still starting.
  std::optional<Status> start_status(const std::string& id, Clock::time_point deadline) {
    Session* s = find(id);
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
      begin_destroy(*s);
      return err;
    }
    if (!pending) {
      return Status::ok();
    }
    if (Clock::now() > deadline) {
      begin_destroy(*s);
      return Status(ErrorCode::kDeadlineExceeded, "the session's workers did not start in time");
    }
    return std::nullopt;
  }

  Result<SessionInfo> destroy(std::string_view id_or_name) {
    Session* s = find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    SessionInfo info = info_of(*s);
    begin_destroy(*s);
    return info;
  }

  bool is_gone(const std::string& id) const {
    return std::none_of(sessions_.begin(), sessions_.end(),
                        [&](const auto& s) { return s->id == id; });
  }

  std::vector<SessionInfo> list() const {
    std::vector<SessionInfo> out;
    for (const auto& s : sessions_) {
      if (!s->destroying) {
        out.push_back(info_of(*s));
      }
    }
    return out;
  }

  Result<SessionInfo> find_info(std::string_view id_or_name) {
    Session* s = find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    return info_of(*s);
  }

  Result<Json> pipeline(std::string_view id_or_name) {
    Session* s = find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    s->last_activity = Clock::now();
    Json nodes = Json::object();
    for (const auto& id : s->order) {
      const LiveNode& n = s->nodes.at(id);
      const LiveWorker& w = s->workers.at(n.worker);
      nodes[id] = Json{{"kind", n.kind},
                       {"params", n.params},
                       {"state", state_json(n)},
                       {"stats", stats_json(n)},
                       {"worker_pid", w.process.running() ? w.process.pid() : 0},
                       {"restarts", n.restarts}};
    }
    Json connections = Json::array();
    for (const auto& c : s->connections) {
      Json j{{"from_node", c.from_node},
             {"from_pin", c.from_pin},
             {"to_node", c.to_node},
             {"to_pin", c.to_pin}};
      if (c.mode == ConnectionMode::kBestEffort) {
        j["mode"] = "best_effort";
      }
      connections.push_back(std::move(j));
    }
    return Json{{"name", s->name},
                {"description", s->description},
                {"mode", "dynamic"},
                {"nodes", nodes},
                {"connections", connections}};
  }

  Result<std::vector<BatchIssue>> validate(std::string_view id_or_name,
                                           const std::vector<BatchOperation>& ops) {
    Session* s = find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    s->last_activity = Clock::now();
    return check_batch(*s, ops);
  }

  Status apply(std::string_view id_or_name, const std::vector<BatchOperation>& ops) {
    Session* s = find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    s->last_activity = Clock::now();
    std::map<std::size_t, Json> worker_params;
    const auto issues = check_batch(*s, ops, &worker_params);
    if (!issues.empty()) {
      std::string all;
      for (const auto& i : issues) {
        all += (all.empty() ? "" : "\n") + std::string("operation ") +
               std::to_string(i.operation) + ": " + i.message;
      }
      // The first problem's kind decides the code (a path escape is not a syntax error).
      return Status(issues.front().code, all, {.node_id = issues.front().node_id});
    }
    std::map<std::uint32_t, v1::Rewire> rewires;  // per worker slot
    std::vector<std::pair<std::string, std::uint32_t>> to_spawn;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const BatchOperation& op = ops[i];
      switch (op.action) {
        case BatchOperation::Action::kAddNode: {
          Json params = op.params.is_null() ? Json::object() : op.params;
          LiveNode& n = add_node_model(*s, op.node_id, op.kind, params, worker_params[i],
                                       NodeRegistry::builtin().find(op.kind));
          n.worker = new_worker_slot(*s);
          s->workers.at(n.worker).nodes.push_back(n.id);
          to_spawn.emplace_back(n.id, n.worker);
          emit(*s, Json{{"event", "nodeadded"},
                        {"session_id", s->id},
                        {"node_id", n.id},
                        {"kind", n.kind},
                        {"params", n.params}});
          break;
        }
        case BatchOperation::Action::kConnect: {
          Status st = add_connection_model(*s, op.from_node, op.from_pin, op.to_node, op.to_pin,
                                           op.mode);
          if (!st.is_ok()) {
            return st;  // checked above; a failure here is a shared-memory error
          }
          const LiveConnection& c = s->connections.back();
          add_change(*s, rewires, c.from_node, v1::RingChange::ATTACH_OUTPUT, c.from_pin, c.ring);
          add_change(*s, rewires, c.to_node, v1::RingChange::ATTACH_INPUT, c.to_pin, c.ring);
          emit(*s, connection_event("connectionadded", *s, c));
          break;
        }
        case BatchOperation::Action::kDisconnect: {
          auto it = find_connection(*s, op.from_node, op.from_pin, op.to_node, op.to_pin);
          disconnect(*s, rewires, it, /*consumer_removed=*/false);
          break;
        }
        case BatchOperation::Action::kRemoveNode:
          remove_node(*s, rewires, op.node_id);
          break;
      }
    }
    send_rewires(*s, rewires);
    for (const auto& [node_id, slot] : to_spawn) {
      LiveWorker& w = s->workers.at(slot);
      Status st = spawn(*s, w);
      if (!st.is_ok()) {
        fail_worker(*s, w, "could not start its worker: " + st.message());
      }
    }
    return Status::ok();
  }

  /// Sends a tune; returns its op id (0 when nothing to wait for).
  Result<std::uint64_t> tune(std::string_view id_or_name, const std::string& node_id,
                             const Json& patch) {
    Session* s = find(id_or_name);
    if (s == nullptr) {
      return not_found(id_or_name);
    }
    s->last_activity = Clock::now();
    auto it = s->nodes.find(node_id);
    if (it == s->nodes.end()) {
      return Status(ErrorCode::kNotFound, "no node '" + node_id + "' in session " + s->name,
                    {.node_id = node_id});
    }
    LiveNode& n = it->second;
    if (!patch.is_object() || patch.empty()) {
      return Status(ErrorCode::kInvalidParam, "a tune carries an object of params to change",
                    {.node_id = node_id});
    }
    for (const auto& [key, value] : patch.items()) {
      const ParamField* field = n.descriptor->params != nullptr ? n.descriptor->params->find(key)
                                                                : nullptr;
      if (field == nullptr) {
        return Status(ErrorCode::kInvalidParam,
                      n.kind + " has no param '" + key + "'", {.node_id = node_id, .param = key});
      }
      if (!field->tunable) {
        return Status(ErrorCode::kInvalidParam,
                      "param '" + key + "' of " + n.kind + " cannot change while running",
                      {.node_id = node_id, .param = key});
      }
    }
    Json merged = n.params;
    merged.merge_patch(patch);
    const auto errors = n.descriptor->validate_params(merged);
    if (!errors.empty()) {
      Status e = errors.front();
      e.where().node_id = node_id;
      return e;
    }
    Json worker_merged = n.worker_params;
    worker_merged.merge_patch(patch);
    if (config_.paths) {
      const auto refused = config_.paths->confine(*n.descriptor, worker_merged);
      if (!refused.empty()) {
        Status e = refused.front();
        e.where().node_id = node_id;
        return e;
      }
    }
    Json sent = patch;
    for (auto& [key, value] : sent.items()) {
      value = worker_merged[key];  // a tuned path goes to the node as the path that was checked
    }
    if (n.state == LiveState::kStopped || n.state == LiveState::kFailed) {
      return Status(ErrorCode::kFailedPrecondition,
                    "node '" + node_id + "' is " +
                        (n.state == LiveState::kStopped ? "stopped" : "failed"),
                    {.node_id = node_id});
    }
    n.params = merged;
    n.worker_params = worker_merged;
    emit(*s, Json{{"event", "nodeparamschanged"},
                  {"session_id", s->id},
                  {"node_id", node_id},
                  {"params", n.params}});
    LiveWorker& w = s->workers.at(n.worker);
    if (!w.hello || w.exited || !w.process.running()) {
      return std::uint64_t{0};  // applied when the worker (re)starts, from the model
    }
    const std::uint64_t op = next_op_++;
    v1::SupervisorMessage msg;
    msg.mutable_tune()->set_node_id(node_id);
    msg.mutable_tune()->set_params_json(sent.dump());
    msg.mutable_tune()->set_op_id(op);
    send(w, msg);
    tune_waits_[op] = TuneWait{std::nullopt, Clock::now()};
    return op;
  }

  std::optional<Status> tune_result(std::uint64_t op, bool give_up) {
    auto it = tune_waits_.find(op);
    if (it == tune_waits_.end()) {
      return Status::ok();
    }
    if (it->second.result) {
      Status r = *it->second.result;
      tune_waits_.erase(it);
      return r;
    }
    if (give_up) {
      tune_waits_.erase(it);
      return Status(ErrorCode::kDeadlineExceeded,
                    "the node has not applied the change yet (busy or blocked); it stays queued");
    }
    return std::nullopt;
  }

  std::shared_ptr<EventSubscription> subscribe(std::size_t capacity) {
    auto sub = std::make_shared<EventSubscription>(capacity == 0 ? config_.event_queue_capacity
                                                                 : capacity);
    subscribers_.push_back(sub);
    return sub;
  }

  SessionManagerStats stats() {
    SessionManagerStats out = stats_;
    for (const auto& s : sessions_) {
      if (s->destroying) {
        continue;
      }
      ++out.sessions;
      out.nodes += s->nodes.size();
      for (const auto& [slot, w] : s->workers) {
        out.workers += w.process.running() ? 1 : 0;
      }
    }
    out.events_dropped = events_dropped_;
    for (const auto& weak : subscribers_) {
      if (auto sub = weak.lock()) {
        out.events_dropped += sub->dropped();
      }
    }
    return out;
  }

 private:
  // ---- model helpers ----

  Session* find(std::string_view id_or_name) {
    for (auto& s : sessions_) {
      if (!s->destroying && (s->id == id_or_name || s->name == id_or_name)) {
        return s.get();
      }
    }
    return nullptr;
  }

  std::size_t live_sessions() const {
    return static_cast<std::size_t>(std::count_if(
        sessions_.begin(), sessions_.end(), [](const auto& s) { return !s->destroying; }));
  }

  static Status not_found(std::string_view id_or_name) {
    return Status(ErrorCode::kNotFound, "no session '" + std::string(id_or_name) + "'");
  }

  /// The session rules, then the path allow-lists. `worker_params` receives the node's
  /// params with their file paths as checked (canonical): what its worker is given.
  std::vector<Status> policy_of(const v1::NodeSpec& spec, Json& worker_params) const {
    v1::Pipeline alone;
    v1::NodeSpec& confined = *alone.add_nodes();
    confined = spec;
    std::vector<Status> out = check_entry(alone, EntryPoint::kSession, {});
    if (config_.paths) {
      for (Status& s : config_.paths->confine_node(confined)) {
        out.push_back(std::move(s));
      }
    }
    worker_params = params_of(confined);
    return out;
  }

  static Json params_of(const v1::NodeSpec& spec) {
    Json params = Json::parse(spec.params_json().empty() ? "{}" : spec.params_json(), nullptr,
                              /*allow_exceptions=*/false);
    return params.is_object() ? params : Json::object();
  }

  std::string segment_name(const Session& s, const std::string& what) const {
    return "skit-" + run_id_ + "-s" + std::to_string(s.number) + "-" + what;
  }

  LiveNode& add_node_model(Session& s, const std::string& id, const std::string& kind,
                           const Json& params, const Json& worker_params,
                           const NodeDescriptor* descriptor) {
    LiveNode n;
    n.id = id;
    n.kind = kind;
    n.params = params;
    n.worker_params = worker_params;
    n.descriptor = descriptor;
    n.doorbell = ipc::doorbell_endpoint(run_id_ + "-s" + std::to_string(s.number),
                                        "n" + std::to_string(s.next_doorbell++));
    // One pool per declared output, from the start: connections come and go.
    const std::uint32_t ring_cap = round_up_pow2(std::max<std::uint32_t>(2, config_.ring_capacity));
    for (std::size_t k = 0; k < descriptor->outputs.size(); ++k) {
      const std::size_t max_bytes =
          std::max<std::size_t>(64, descriptor->max_packet_bytes(params));
      const std::uint32_t slot_count = ring_cap * 2 + 8;  // fan-out, packets in hand, restarts
      const std::uint32_t index = s.next_pool++;
      auto segment = ipc::SharedSegment::create(
          segment_name(s, "p" + std::to_string(index)),
          ipc::SlotPool::bytes_for(slot_count, static_cast<std::uint32_t>(max_bytes)));
      if (!segment) {
        spdlog::error("session {}: pool for {}: {}", s.name, id, segment.status().to_string());
        continue;
      }
      ipc::SlotPool::init(segment->data(), segment->size(), slot_count,
                          static_cast<std::uint32_t>(max_bytes), n.doorbell);
      s.pools.emplace(index, std::move(segment).value());
      n.pools.push_back(index);
    }
    s.order.push_back(id);
    return s.nodes.emplace(id, std::move(n)).first->second;
  }

  std::uint32_t new_worker_slot(Session& s) {
    LiveWorker w;
    w.slot = s.next_worker++;
    return s.workers.emplace(w.slot, std::move(w)).first->first;
  }

  Status add_connection_model(Session& s, const std::string& from_node, const std::string& from_pin,
                              const std::string& to_node, const std::string& to_pin,
                              ConnectionMode mode) {
    const std::uint32_t ring_cap = round_up_pow2(std::max<std::uint32_t>(2, config_.ring_capacity));
    const std::string name = segment_name(s, "r" + std::to_string(s.next_ring++));
    auto segment = ipc::SharedSegment::create(name, ipc::Ring::bytes_for(ring_cap));
    if (!segment) {
      return segment.status();
    }
    ipc::Ring::init(segment->data(), segment->size(), ring_cap, mode,
                    s.nodes.at(from_node).doorbell, s.nodes.at(to_node).doorbell);
    s.rings.emplace(name, std::move(segment).value());
    s.connections.push_back(LiveConnection{from_node, from_pin, to_node, to_pin, mode, name});
    return Status::ok();
  }

  static std::vector<LiveConnection>::iterator find_connection(Session& s, const std::string& fn,
                                                               const std::string& fp,
                                                               const std::string& tn,
                                                               const std::string& tp) {
    return std::find_if(s.connections.begin(), s.connections.end(), [&](const LiveConnection& c) {
      return c.from_node == fn && c.from_pin == fp && c.to_node == tn && c.to_pin == tp;
    });
  }

  static Json connection_event(const char* name, const Session& s, const LiveConnection& c) {
    return Json{{"event", name},         {"session_id", s.id},   {"from_node", c.from_node},
                {"from_pin", c.from_pin}, {"to_node", c.to_node}, {"to_pin", c.to_pin}};
  }

  // ---- batch validation on a scratch model ----

  struct ScratchNode {
    std::string kind;
    const NodeDescriptor* descriptor = nullptr;
    bool added = false;  // by this batch (not the live node of that id, if any)
  };
  struct ScratchEdge {
    std::string from_node, from_pin, to_node, to_pin;
  };

  /// "stopped (completed)" or "failed (...)" for a live node that has ended; "" otherwise (also
  /// for a node that this batch adds).
  static std::string ended_state(const Session& s, const std::string& id) {
    const auto it = s.nodes.find(id);
    if (it == s.nodes.end()) {
      return {};
    }
    const LiveNode& n = it->second;
    if (n.state != LiveState::kStopped && n.state != LiveState::kFailed) {
      return {};
    }
    return std::string(n.state == LiveState::kStopped ? "stopped" : "failed") +
           (n.reason.empty() ? "" : " (" + n.reason + ")");
  }

  /// Checks `ops` against a scratch copy of the session's graph. `worker_params` (optional)
  /// receives, per addnode operation index, the params its worker gets (paths confined).
  std::vector<BatchIssue> check_batch(const Session& s, const std::vector<BatchOperation>& ops,
                                      std::map<std::size_t, Json>* worker_params = nullptr) {
    std::map<std::string, ScratchNode> nodes;
    for (const auto& [id, n] : s.nodes) {
      nodes[id] = ScratchNode{n.kind, n.descriptor};
    }
    std::vector<ScratchEdge> edges;
    for (const auto& c : s.connections) {
      edges.push_back({c.from_node, c.from_pin, c.to_node, c.to_pin});
    }
    std::vector<BatchIssue> issues;
    const auto& registry = NodeRegistry::builtin();
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const BatchOperation& op = ops[i];
      auto issue = [&](const std::string& node, const std::string& message,
                       ErrorCode code = ErrorCode::kInvalidArgument) {
        issues.push_back(BatchIssue{i, node, message, code});
      };
      switch (op.action) {
        case BatchOperation::Action::kAddNode: {
          if (op.node_id.empty()) {
            issue("", "addnode needs a node_id");
            break;
          }
          if (nodes.count(op.node_id) != 0) {
            issue(op.node_id, "node '" + op.node_id + "' already exists");
            break;
          }
          const NodeDescriptor* d = registry.find(op.kind);
          if (d == nullptr) {
            issue(op.node_id, "unknown node kind '" + op.kind + "' (see `skit nodes`)");
            break;
          }
          v1::NodeSpec spec;
          spec.set_id(op.node_id);
          spec.set_kind(op.kind);
          spec.set_params_json(op.params.is_null() ? "{}" : op.params.dump());
          bool ok = true;
          for (const Status& e : d->validate_params(op.params.is_null() ? Json::object() : op.params)) {
            issue(op.node_id, "node '" + op.node_id + "': " + e.message());
            ok = false;
          }
          Json confined;
          for (const Status& e : policy_of(spec, confined)) {
            issue(op.node_id, e.message(), e.code());
            ok = false;
          }
          if (worker_params != nullptr) {
            (*worker_params)[i] = std::move(confined);
          }
          if (nodes.size() + 1 > config_.max_nodes_per_session) {
            issue(op.node_id,
                  "a session may have at most " +
                      std::to_string(config_.max_nodes_per_session) + " nodes",
                  ErrorCode::kResourceExhausted);
            ok = false;
          }
          if (ok) {
            nodes[op.node_id] = ScratchNode{op.kind, d, /*added=*/true};
          }
          break;
        }
        case BatchOperation::Action::kRemoveNode: {
          if (nodes.erase(op.node_id) == 0) {
            issue(op.node_id, "no node '" + op.node_id + "' to remove");
            break;
          }
          std::erase_if(edges, [&](const ScratchEdge& e) {
            return e.from_node == op.node_id || e.to_node == op.node_id;
          });
          break;
        }
        case BatchOperation::Action::kConnect: {
          auto from = nodes.find(op.from_node);
          auto to = nodes.find(op.to_node);
          if (from == nodes.end()) {
            issue(op.from_node, "no node '" + op.from_node + "' to connect from");
            break;
          }
          if (to == nodes.end()) {
            issue(op.to_node, "no node '" + op.to_node + "' to connect to");
            break;
          }
          // A node that has ended neither writes nor reads again: a connection to it would
          // leave its other end waiting forever while reporting Running.
          if (const std::string ended = from->second.added ? "" : ended_state(s, op.from_node);
              !ended.empty()) {
            issue(op.from_node, "node '" + op.from_node + "' has " + ended +
                                    ": its output carries nothing more (connect from a running node)");
            break;
          }
          if (const std::string ended = to->second.added ? "" : ended_state(s, op.to_node);
              !ended.empty()) {
            issue(op.to_node, "node '" + op.to_node + "' has " + ended + ": it reads nothing more");
            break;
          }
          const OutputPinSpec* out = find_output_pin(*from->second.descriptor, op.from_pin);
          const InputPinSpec* in = find_input_pin(*to->second.descriptor, op.to_pin);
          if (out == nullptr) {
            issue(op.from_node, from->second.kind + " has no output pin '" + op.from_pin + "'");
            break;
          }
          if (in == nullptr) {
            issue(op.to_node, to->second.kind + " has no input pin '" + op.to_pin + "'");
            break;
          }
          const PacketType produced = resolve_type(nodes, edges, op.from_node, *out);
          if (produced.kind != PacketKind::kPassthrough && !can_connect_any(produced, in->accepts)) {
            issue(op.to_node, "pin type mismatch: " + op.from_node + "." + op.from_pin +
                                  " produces " + to_string(produced) + " but " + op.to_node +
                                  "." + op.to_pin + " accepts " + accepts_text(in->accepts));
            break;
          }
          const bool taken = std::any_of(edges.begin(), edges.end(), [&](const ScratchEdge& e) {
            return e.to_node == op.to_node && e.to_pin == op.to_pin;
          });
          if (taken) {
            issue(op.to_node, "input " + op.to_node + "." + op.to_pin +
                                  " is already connected (disconnect it first, in the same "
                                  "batch for a seamless switch)");
            break;
          }
          if (op.from_node == op.to_node || reaches(edges, op.to_node, op.from_node)) {
            issue(op.to_node, "connecting " + op.from_node + " -> " + op.to_node +
                                  " would make a cycle");
            break;
          }
          edges.push_back({op.from_node, op.from_pin, op.to_node, op.to_pin});
          break;
        }
        case BatchOperation::Action::kDisconnect: {
          auto it = std::find_if(edges.begin(), edges.end(), [&](const ScratchEdge& e) {
            return e.from_node == op.from_node && e.from_pin == op.from_pin &&
                   e.to_node == op.to_node && e.to_pin == op.to_pin;
          });
          if (it == edges.end()) {
            issue(op.to_node, "no connection " + op.from_node + "." + op.from_pin + " -> " +
                                  op.to_node + "." + op.to_pin);
            break;
          }
          edges.erase(it);
          break;
        }
      }
    }
    return issues;
  }

  static std::string accepts_text(const std::vector<PacketType>& accepts) {
    std::string out;
    for (const auto& t : accepts) {
      out += (out.empty() ? "" : " or ") + to_string(t);
    }
    return out;
  }

  /// What a Passthrough output carries: what flows into the node (first input), recursively.
  static PacketType resolve_type(const std::map<std::string, ScratchNode>& nodes,
                                 const std::vector<ScratchEdge>& edges, const std::string& node,
                                 const OutputPinSpec& out, int depth = 0) {
    if (out.produces.kind != PacketKind::kPassthrough || depth > 64) {
      return out.produces;
    }
    for (const auto& e : edges) {
      if (e.to_node == node) {
        auto it = nodes.find(e.from_node);
        if (it == nodes.end()) {
          break;
        }
        const OutputPinSpec* up = find_output_pin(*it->second.descriptor, e.from_pin);
        if (up == nullptr) {
          break;
        }
        return resolve_type(nodes, edges, e.from_node, *up, depth + 1);
      }
    }
    return out.produces;
  }

  static bool reaches(const std::vector<ScratchEdge>& edges, const std::string& from,
                      const std::string& to) {
    std::set<std::string> seen;
    std::vector<std::string> stack{from};
    while (!stack.empty()) {
      std::string n = stack.back();
      stack.pop_back();
      if (n == to) {
        return true;
      }
      if (!seen.insert(n).second) {
        continue;
      }
      for (const auto& e : edges) {
        if (e.from_node == n) {
          stack.push_back(e.to_node);
        }
      }
    }
    return false;
  }

  // ---- live changes ----

  bool worker_live(const LiveWorker& w) const {
    return w.hello && !w.exited && w.process.running() && !w.failed;
  }

  void add_change(Session& s, std::map<std::uint32_t, v1::Rewire>& rewires,
                  const std::string& node_id, v1::RingChange::Type type, const std::string& pin,
                  const std::string& ring, bool drop = false, std::uint32_t grace_ms = 2000) {
    const LiveNode& n = s.nodes.at(node_id);
    const LiveWorker& w = s.workers.at(n.worker);
    if (!worker_live(w)) {
      return;  // its Assign (at the next hello) is built from the model
    }
    auto* c = rewires[n.worker].add_changes();
    c->set_type(type);
    c->set_node_id(node_id);
    c->set_pin(pin);
    c->set_ring_segment(ring);
    c->set_drop(drop);
    c->set_grace_ms(grace_ms);
  }

  /// Removes a connection: the producer closes it with a detach marker; the consumer drains
  /// (reliable) or drops (best effort) up to that marker, then goes on with its next one.
  void disconnect(Session& s, std::map<std::uint32_t, v1::Rewire>& rewires,
                  std::vector<LiveConnection>::iterator it, bool consumer_removed) {
    LiveConnection c = *it;
    s.connections.erase(it);
    const LiveWorker& consumer = s.workers.at(s.nodes.at(c.to_node).worker);
    if (!worker_live(consumer) && !consumer.process.running()) {
      // Nobody reads this ring any more (its consumer is down or restarting without it): a
      // producer blocked on it must reach a packet boundary to apply its detach.
      drain_ring(s, c.ring);
    }
    if (!c.severed) {
      const bool producer_live = worker_live(s.workers.at(s.nodes.at(c.from_node).worker));
      add_change(s, rewires, c.from_node, v1::RingChange::DETACH_OUTPUT, c.from_pin, c.ring);
      if (!consumer_removed || !producer_live) {
        add_change(s, rewires, c.to_node, v1::RingChange::DETACH_INPUT, c.to_pin, c.ring,
                   c.mode == ConnectionMode::kBestEffort, producer_live ? 2000 : 0);
      }
    }
    retire_ring(s, c.ring, rewires, {c.from_node, c.to_node});
    emit(s, connection_event("connectionremoved", s, c));
  }

  void retire_ring(Session& s, const std::string& ring, std::map<std::uint32_t, v1::Rewire>& rewires,
                   const std::vector<std::string>& ends) {
    auto node = s.rings.extract(ring);
    if (node.empty()) {
      return;
    }
    RetiredSegment r;
    r.segment = std::make_unique<ipc::SharedSegment>(std::move(node.mapped()));
    r.not_before = Clock::now() + milliseconds(100);
    for (const auto& id : ends) {
      auto n = s.nodes.find(id);
      if (n == s.nodes.end()) {
        continue;
      }
      LiveWorker& w = s.workers.at(n->second.worker);
      if (worker_live(w)) {
        // The ack of the Rewire about to be sent (sent_seq + 1) means the ring was mapped.
        const std::uint64_t seq = rewires.count(w.slot) != 0 ? w.sent_seq + 1 : w.sent_seq;
        r.waits.emplace_back(w.gid, seq);
      }
    }
    s.retired.push_back(std::move(r));
  }

  void remove_node(Session& s, std::map<std::uint32_t, v1::Rewire>& rewires,
                   const std::string& node_id) {
    for (auto it = s.connections.begin(); it != s.connections.end();) {
      if (it->from_node == node_id || it->to_node == node_id) {
        const bool consumer_removed = it->to_node == node_id;
        disconnect(s, rewires, it, consumer_removed);
        it = s.connections.begin();
      } else {
        ++it;
      }
    }
    LiveNode& n = s.nodes.at(node_id);
    LiveWorker& w = s.workers.at(n.worker);
    if (worker_live(w)) {
      auto* c = rewires[n.worker].add_changes();
      c->set_type(v1::RingChange::RETIRE);
      c->set_node_id(node_id);
    }
    std::erase(w.nodes, node_id);
    if (w.nodes.empty()) {
      w.retiring = true;
      w.retire_deadline = Clock::now() + std::chrono::seconds(3);
      w.restart_at.reset();
      if (!w.hello && w.process.running()) {
        w.process.kill(SIGKILL);  // never assigned: nothing to drain
      }
    }
    // Its pools may still back packets downstream (forwarded payloads): unlink them later.
    for (auto index : n.pools) {
      auto pool = s.pools.extract(index);
      if (!pool.empty()) {
        RetiredSegment r;
        r.segment = std::make_unique<ipc::SharedSegment>(std::move(pool.mapped()));
        r.not_before = Clock::now() + std::chrono::seconds(2);
        s.retired.push_back(std::move(r));
      }
    }
    std::erase(s.order, node_id);
    s.nodes.erase(node_id);
    emit(s, Json{{"event", "noderemoved"}, {"session_id", s.id}, {"node_id", node_id}});
  }

  void send_rewires(Session& s, std::map<std::uint32_t, v1::Rewire>& rewires) {
    for (auto& [slot, rewire] : rewires) {
      LiveWorker& w = s.workers.at(slot);
      if (!worker_live(w) || rewire.changes_size() == 0) {
        continue;
      }
      rewire.set_seq(++w.sent_seq);
      v1::SupervisorMessage msg;
      *msg.mutable_rewire() = std::move(rewire);
      send(w, msg);
    }
  }

  // ---- workers ----

  Status spawn(Session& s, LiveWorker& w) {
    w.gid = next_gid_++;
    w.hello = false;
    w.started = false;
    w.exited = false;
    w.kill_reason.clear();
    w.sent_seq = 0;
    w.acked_seq = 0;
    std::vector<std::string> args = {"worker", "--control", control_endpoint_, "--worker-id",
                                     std::to_string(w.gid)};
    const auto t0 = Clock::now();
    auto proc = WorkerProcess::spawn(config_.worker_executable, args);
    const auto took = Clock::now() - t0;
    if (took > milliseconds(100)) {
      spdlog::warn("session {}: spawning a worker took {} ms", s.name,
                   std::chrono::duration_cast<milliseconds>(took).count());
    }
    if (!proc) {
      return proc.status();
    }
    w.process = std::move(proc).value();
    w.spawned_at = Clock::now();
    w.last_seen = w.spawned_at;
    by_gid_[w.gid] = {s.id, w.slot};
    return Status::ok();
  }

  void send(const LiveWorker& w, const v1::SupervisorMessage& msg) {
    const std::string identity = "w" + std::to_string(w.gid);
    const std::string payload = msg.SerializeAsString();
    control_->send(zmq::buffer(identity), zmq::send_flags::sndmore);
    control_->send(zmq::buffer(payload), zmq::send_flags::dontwait);
  }

  v1::Assign make_assign(const Session& s, const LiveWorker& w) const {
    v1::Assign a;
    a.set_worker_id(w.gid);
    a.set_heartbeat_ms(static_cast<std::uint32_t>(config_.heartbeat_interval.count()));
    a.set_dynamic(true);
    a.set_pool_prefix(segment_name(s, "p"));
    auto* sb = a.mutable_sandbox();
    sb->set_enabled(config_.sandbox.enabled);
    sb->set_address_space_bytes(config_.sandbox.address_space_bytes);
    sb->set_max_open_files(config_.sandbox.max_open_files);
    sb->set_allow_network(false);
    sb->set_confined_files(config_.paths.has_value());  // policy_of() confined the file params
    for (const auto& id : w.nodes) {
      const LiveNode& n = s.nodes.at(id);
      auto* na = a.add_nodes();
      na->set_node_id(n.id);
      na->set_kind(n.kind);
      na->set_params_json(n.worker_params.dump());
      na->set_doorbell(n.doorbell);
      std::vector<std::pair<std::string, std::string>> inputs;
      for (const auto& c : s.connections) {
        if (c.to_node == id && !c.severed) {
          inputs.emplace_back(c.to_pin, c.ring);
        }
      }
      std::sort(inputs.begin(), inputs.end(), [](const auto& x, const auto& y) {
        if (x.first.size() != y.first.size()) return x.first.size() < y.first.size();
        return x.first < y.first;
      });
      for (const auto& [pin, ring] : inputs) {
        auto* b = na->add_inputs();
        b->set_pin(pin);
        b->set_ring_segment(ring);
      }
      for (std::size_t k = 0; k < n.descriptor->outputs.size() && k < n.pools.size(); ++k) {
        const auto& out = n.descriptor->outputs[k];
        auto* b = na->add_outputs();
        b->set_pin(out.name);
        b->set_pool_index(n.pools[k]);
        for (const auto& c : s.connections) {
          if (c.from_node == id && c.from_pin == out.name && !c.severed) {
            b->add_ring_segments(c.ring);
          }
        }
      }
    }
    return a;
  }

  void set_state(Session& s, LiveNode& n, LiveState state, const std::string& reason,
                 Json details = nullptr) {
    if (n.state == state && n.reason == reason) {
      return;
    }
    n.state = state;
    n.reason = reason;
    n.details = std::move(details);
    // Beyond StreamKit: the node's worker and its restarts, so that a client sees a restarted
    // worker as it happens without reading the pipeline again.
    const auto w = s.workers.find(n.worker);
    const bool live = w != s.workers.end() && w->second.process.running();
    emit(s, Json{{"event", "nodestatechanged"},
                 {"session_id", s.id},
                 {"node_id", n.id},
                 {"state", state_json(n)},
                 {"worker_pid", live ? w->second.process.pid() : 0},
                 {"restarts", n.restarts},
                 {"timestamp", rfc3339_now()}});
  }

  void handle_message(const std::string& identity, const std::string& payload) {
    v1::WorkerMessage msg;
    if (identity.size() < 2 || identity[0] != 'w' || !msg.ParseFromString(payload)) {
      return;
    }
    const auto gid = static_cast<std::uint32_t>(std::strtoul(identity.c_str() + 1, nullptr, 10));
    auto ref = by_gid_.find(gid);
    if (ref == by_gid_.end()) {
      return;
    }
    Session* s = find_by_id(ref->second.first);
    if (s == nullptr) {
      return;
    }
    auto wit = s->workers.find(ref->second.second);
    if (wit == s->workers.end() || wit->second.gid != gid) {
      return;  // an old incarnation
    }
    LiveWorker& w = wit->second;
    w.last_seen = Clock::now();
    switch (msg.body_case()) {
      case v1::WorkerMessage::kHello: {
        w.hello = true;
        v1::SupervisorMessage reply;
        *reply.mutable_assign() = make_assign(*s, w);
        send(w, reply);
        break;
      }
      case v1::WorkerMessage::kReady: {
        v1::SupervisorMessage start;
        start.mutable_start();
        send(w, start);
        w.started = true;
        for (const auto& id : w.nodes) {
          LiveNode& n = s->nodes.at(id);
          if (n.state != LiveState::kFailed) {
            set_state(*s, n, LiveState::kReady, "");
          }
        }
        break;
      }
      case v1::WorkerMessage::kState: {
        const auto& st = msg.state();
        auto it = s->nodes.find(st.node_id());
        if (it == s->nodes.end() || s->nodes.at(st.node_id()).worker != w.slot) {
          break;
        }
        LiveNode& n = it->second;
        n.stats = NodeStats{st.stats().packets_in(), st.stats().packets_out(),
                            st.stats().bytes_in(), st.stats().bytes_out(), st.stats().dropped()};
        switch (st.state()) {
          case v1::NODE_STATE_RUNNING:
            if (n.state == LiveState::kRecovering) {
              ++stats_.worker_restarts;
            }
            set_state(*s, n, LiveState::kRunning, "");
            break;
          case v1::NODE_STATE_STOPPED:
            set_state(*s, n, LiveState::kStopped, st.message().empty() ? "completed" : st.message());
            break;
          case v1::NODE_STATE_FAILED: {
            ++stats_.nodes_failed;
            set_state(*s, n, LiveState::kFailed, st.message());
            // The node's runner has ended but its worker goes on (with other nodes): the
            // session goes on without it, its producers no longer blocked on it.
            n.cut_out = true;
            std::map<std::uint32_t, v1::Rewire> rewires;
            sever_node(*s, n.id, /*consumer_gone=*/true, rewires);
            send_rewires(*s, rewires);
            break;
          }
          default:
            break;
        }
        break;
      }
      case v1::WorkerMessage::kHeartbeat:
        for (const auto& hs : msg.heartbeat().stats()) {
          auto it = s->nodes.find(hs.node_id());
          if (it == s->nodes.end() || it->second.worker != w.slot) {
            continue;
          }
          LiveNode& n = it->second;
          n.stats = NodeStats{hs.packets_in(), hs.packets_out(), hs.bytes_in(), hs.bytes_out(),
                              hs.dropped()};
          if (milliseconds(hs.busy_ms()) > config_.node_timeout && w.kill_reason.empty()) {
            w.kill_reason = n.kind + " '" + n.id + "' was stuck in one call for " +
                            std::to_string(hs.busy_ms()) + " ms (hung); its worker was killed";
            w.process.kill(SIGKILL);
          }
          maybe_emit_stats(*s, n);
        }
        break;
      case v1::WorkerMessage::kError:
        if (!w.started) {
          std::string ids;
          for (const auto& id : w.nodes) {
            ids += (ids.empty() ? "" : ", ") + id;
          }
          w.setup_error = "node " + ids + ": " + msg.error().message();
          fail_worker(*s, w, msg.error().message());
        }
        break;
      case v1::WorkerMessage::kAck:
        w.acked_seq = std::max(w.acked_seq, msg.ack().seq());
        if (!msg.ack().error().empty()) {
          spdlog::warn("session {}: worker {}: {}", s->name, w.gid, msg.ack().error());
        }
        break;
      case v1::WorkerMessage::kTuned: {
        auto it = tune_waits_.find(msg.tuned().op_id());
        if (it != tune_waits_.end()) {
          it->second.result = msg.tuned().ok()
                                  ? Status::ok()
                                  : Status(ErrorCode::kInvalidParam, msg.tuned().message(),
                                           {.node_id = msg.tuned().node_id()});
          const double ms = std::chrono::duration<double, std::milli>(Clock::now() -
                                                                       it->second.sent_at)
                                .count();
          spdlog::debug("session {}: tune of {} applied in {:.2f} ms", s->name,
                        msg.tuned().node_id(), ms);
        }
        break;
      }
      default:
        break;
    }
  }

  void maybe_emit_stats(Session& s, LiveNode& n, bool force = false) {
    const auto now = Clock::now();
    const bool changed = n.stats.packets_in != n.emitted_stats.packets_in ||
                         n.stats.packets_out != n.emitted_stats.packets_out ||
                         n.stats.dropped != n.emitted_stats.dropped;
    if (!changed || (!force && now - n.stats_emitted_at < std::chrono::seconds(1))) {
      return;
    }
    n.stats_emitted_at = now;
    n.emitted_stats = n.stats;
    emit(s, Json{{"event", "nodestatsupdated"},
                 {"session_id", s.id},
                 {"node_id", n.id},
                 {"stats", stats_json(n)},
                 {"timestamp", rfc3339_now()}},
         /*stats=*/true);
  }

  Session* find_by_id(const std::string& id) {
    for (auto& s : sessions_) {
      if (s->id == id) {
        return s.get();
      }
    }
    return nullptr;
  }

  /// A worker ended without being asked to: restart it after a backoff, or, past the restart
  /// budget, fail its nodes for good and cut them out of the graph.
  void on_crash(Session& s, LiveWorker& w, const std::string& reason) {
    ++stats_.worker_crashes;
    const auto now = Clock::now();
    w.crashes.push_back(now);
    while (!w.crashes.empty() && now - w.crashes.front() > config_.restart_window) {
      w.crashes.pop_front();
    }
    spdlog::warn("session {}: worker {} ({}) {}", s.name, w.gid,
                 w.nodes.empty() ? "" : w.nodes.front(), reason);
    if (w.crashes.size() > config_.max_restarts) {
      fail_worker(s, w,
                  reason + "; crashed " + std::to_string(w.crashes.size()) + " times in " +
                      std::to_string(config_.restart_window.count()) + " s, not restarted");
      return;
    }
    w.backoff = w.backoff.count() == 0 ? config_.backoff_initial
                                       : std::min(w.backoff * 2, config_.backoff_max);
    if (w.crashes.size() == 1) {
      w.backoff = config_.backoff_initial;  // a first crash in the window starts over
    }
    w.restart_at = now + w.backoff;
    for (const auto& id : w.nodes) {
      LiveNode& n = s.nodes.at(id);
      ++n.restarts;
      set_state(s, n, LiveState::kRecovering, reason,
                Json{{"attempt", w.crashes.size()},
                     {"backoff_ms", w.backoff.count()},
                     {"max_restarts", config_.max_restarts}});
    }
  }

  void fail_worker(Session& s, LiveWorker& w, const std::string& reason) {
    w.failed = true;
    w.restart_at.reset();
    if (w.process.running()) {
      w.process.kill(SIGKILL);
    }
    std::map<std::uint32_t, v1::Rewire> rewires;
    for (const auto& id : w.nodes) {
      LiveNode& n = s.nodes.at(id);
      ++stats_.nodes_failed;
      set_state(s, n, LiveState::kFailed, reason);
      sever_node(s, id, !w.process.running() || w.process.try_reap(), rewires);
    }
    send_rewires(s, rewires);
  }

  /// Cuts a failed node out so that its neighbours neither wait for it nor block on it:
  /// its producers detach their outputs to it, its consumers see the end of its stream.
  /// `consumer_gone`: nothing reads its input rings any more, the supervisor may empty them.
  void sever_node(Session& s, const std::string& id, bool consumer_gone,
                  std::map<std::uint32_t, v1::Rewire>& rewires) {
    for (auto& c : s.connections) {
      if (c.severed || (c.from_node != id && c.to_node != id)) {
        continue;
      }
      c.severed = true;
      if (c.to_node == id) {
        // Its producer may be blocked on the full ring: empty it so that the producer gets
        // back to a packet boundary, where it applies the detach.
        if (consumer_gone) {
          drain_ring(s, c.ring);
        }
        add_change(s, rewires, c.from_node, v1::RingChange::DETACH_OUTPUT, c.from_pin, c.ring);
      } else {
        add_change(s, rewires, c.to_node, v1::RingChange::DETACH_INPUT, c.to_pin, c.ring, true,
                   0);
      }
    }
  }

  void begin_destroy(Session& s) {
    if (s.destroying) {
      return;
    }
    s.destroying = true;
    s.destroy_deadline = Clock::now() + std::chrono::seconds(2);
    for (auto& [slot, w] : s.workers) {
      w.restart_at.reset();
      if (w.process.running() && w.hello) {
        v1::SupervisorMessage msg;
        msg.mutable_stop()->set_reason("session destroyed");
        send(w, msg);
      } else if (w.process.running()) {
        w.process.kill(SIGKILL);
      }
    }
  }

  /// Final teardown: no process, mapping or name of the session is left.
  void destroy_now(Session& s) {
    const auto t0 = Clock::now();
    for (auto& [slot, w] : s.workers) {
      w.process.terminate(0);
      by_gid_.erase(w.gid);
    }
    const auto t1 = Clock::now();
    s.workers.clear();
    s.retired.clear();
    s.rings.clear();
    s.pools.clear();
    if (Clock::now() - t0 > milliseconds(100)) {
      spdlog::warn("session {}: teardown took {} ms ({} ms for the workers)", s.name,
                   std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count(),
                   std::chrono::duration_cast<milliseconds>(t1 - t0).count());
    }
    s.destroyed = true;
  }

  void check_workers(Session& s) {
    const auto now = Clock::now();
    for (auto& [slot, w] : s.workers) {
      if (w.process.running() && w.process.try_reap()) {
        w.exited = true;
        by_gid_.erase(w.gid);
        if (s.destroying || w.retiring || w.failed) {
          continue;
        }
        if (w.process.exited_cleanly() && w.kill_reason.empty()) {
          continue;  // every node finished (end of stream)
        }
        if (!w.setup_error.empty()) {
          continue;  // fail_worker() already ran
        }
        on_crash(s, w, w.kill_reason.empty() ? "worker " + w.process.exit_description()
                                             : w.kill_reason);
        continue;
      }
      if (!w.process.running()) {
        if (w.restart_at && now >= *w.restart_at && !s.destroying) {
          w.restart_at.reset();
          reset_internal_rings(s, w);
          Status st = spawn(s, w);
          if (!st.is_ok()) {
            fail_worker(s, w, "could not restart its worker: " + st.message());
          }
        }
        continue;
      }
      // Running.
      if (w.retiring && now >= w.retire_deadline) {
        w.process.kill(SIGKILL);
        continue;
      }
      const auto silent = now - w.last_seen;
      if (silent > config_.heartbeat_timeout && w.kill_reason.empty() &&
          (w.hello || silent > config_.start_timeout)) {
        w.kill_reason = "stopped answering (no heartbeat for " +
                        std::to_string(config_.heartbeat_timeout.count()) +
                        " ms, hung); its worker was killed";
        w.process.kill(SIGKILL);
      }
    }
  }

  /// Before a restart: rings whose both ends are this worker's nodes hold packets of the
  /// previous incarnation (a demuxer restarting from the top must not read the old reader's
  /// bytes). Both ends are dead, so the supervisor empties them, giving the slots back.
  void reset_internal_rings(Session& s, const LiveWorker& w) {
    const std::set<std::string> mine(w.nodes.begin(), w.nodes.end());
    for (const auto& c : s.connections) {
      if (mine.count(c.from_node) != 0 && mine.count(c.to_node) != 0) {
        drain_ring(s, c.ring);
      }
    }
  }

  /// Empties a ring whose consumer is dead, giving its slots back to their pools, so that a
  /// producer blocked on it (backpressure) moves on.
  void drain_ring(Session& s, const std::string& name) {
    auto seg = s.rings.find(name);
    if (seg != s.rings.end()) {
      drain_ring(s, seg->second);
    }
  }

  void drain_ring(Session& s, ipc::SharedSegment& segment) {
    auto ring = ipc::Ring::attach(segment.data(), segment.size());
    if (!ring) {
      return;
    }
    ipc::SlotDescriptor d;
    while (ring->try_pop(d)) {
      if (d.slot == ipc::kNoSlot) {
        continue;
      }
      auto pool_seg = s.pools.find(d.pool);
      if (pool_seg == s.pools.end()) {
        continue;
      }
      auto pool = ipc::SlotPool::attach(pool_seg->second.data(), pool_seg->second.size());
      if (pool && d.slot < pool->slot_count() && pool->refcount(d.slot) > 0) {
        (void)pool->release(d.slot);
      }
    }
    ring->set_consumer_waiting(false);
    // A producer sleeping on the full ring retries within its idle wait (100 ms).
  }

  void check_memory(Session& s) {
    if (config_.worker_memory_limit_bytes == 0) {
      return;
    }
    for (auto& [slot, w] : s.workers) {
      if (!w.process.running() || !w.kill_reason.empty()) {
        continue;
      }
      const std::uint64_t rss = resident_bytes(w.process.pid());
      if (rss > config_.worker_memory_limit_bytes) {
        w.kill_reason = "exceeded its memory limit (resident " + std::to_string(rss >> 20) +
                        " MiB > " + std::to_string(config_.worker_memory_limit_bytes >> 20) +
                        " MiB); its worker was killed";
        w.process.kill(SIGKILL);
      }
    }
  }

  void collect_retired(Session& s) {
    const auto now = Clock::now();
    std::erase_if(s.retired, [&](const RetiredSegment& r) {
      if (now < r.not_before) {
        return false;
      }
      for (const auto& [gid, seq] : r.waits) {
        auto ref = by_gid_.find(gid);
        if (ref == by_gid_.end()) {
          continue;  // that incarnation is gone
        }
        auto w = s.workers.find(ref->second.second);
        if (w != s.workers.end() && w->second.gid == gid && w->second.process.running() &&
            w->second.acked_seq < seq) {
          return false;
        }
      }
      return true;  // unlinks the name
    });
    // Workers whose nodes were all removed, once they are gone.
    for (auto it = s.workers.begin(); it != s.workers.end();) {
      if (it->second.nodes.empty() && !it->second.process.running()) {
        by_gid_.erase(it->second.gid);
        it = s.workers.erase(it);
      } else {
        ++it;
      }
    }
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
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      Session& s = **it;
      check_workers(s);
      if (s.destroying) {
        const bool all_gone = std::all_of(s.workers.begin(), s.workers.end(), [](const auto& w) {
          return !w.second.process.running();
        });
        if (all_gone || now >= s.destroy_deadline) {
          const std::string id = s.id;
          destroy_now(s);
          ++stats_.sessions_destroyed;
          emit_global(id, Json{{"event", "sessiondestroyed"}, {"session_id", id}});
          it = sessions_.erase(it);
          continue;
        }
        ++it;
        continue;
      }
      collect_retired(s);
      if (memory_check) {
        check_memory(s);
      }
      if (second) {
        for (auto& [id, n] : s.nodes) {
          maybe_emit_stats(s, n);
        }
        // Rings into failed nodes: nobody reads them; keep them empty so that a producer
        // that was blocked on one reaches a packet boundary and applies its detach.
        for (const auto& c : s.connections) {
          if (!c.severed) {
            continue;
          }
          auto n = s.nodes.find(c.to_node);
          if (n != s.nodes.end() && n->second.state == LiveState::kFailed) {
            const LiveWorker& w = s.workers.at(n->second.worker);
            if (n->second.cut_out || (w.failed && !w.process.running())) {
              drain_ring(s, c.ring);
            }
          }
        }
        if (config_.idle_timeout.count() > 0 && now - s.last_activity > config_.idle_timeout) {
          const bool idle = std::none_of(s.nodes.begin(), s.nodes.end(), [](const auto& n) {
            return n.second.state == LiveState::kRunning ||
                   n.second.state == LiveState::kRecovering ||
                   n.second.state == LiveState::kInitializing ||
                   n.second.state == LiveState::kReady;
          });
          if (idle) {
            spdlog::info("session {}: idle for {} s, destroyed", s.name,
                         config_.idle_timeout.count());
            begin_destroy(s);
          }
        }
      }
      ++it;
    }
  }

  void emit(const Session& s, Json payload, bool stats = false) {
    emit_global(s.id, std::move(payload), stats);
  }

  void emit_global(const std::string& session_id, Json payload, bool stats = false) {
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      auto sub = it->lock();
      if (!sub || sub->closed()) {
        if (sub) {
          events_dropped_ += sub->dropped();
        }
        it = subscribers_.erase(it);
        continue;
      }
      sub->push(SessionEvent{session_id, payload}, stats);
      ++it;
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
      if (!control_->recv(identity, zmq::recv_flags::dontwait)) {
        break;
      }
      if (!control_->recv(payload, zmq::recv_flags::dontwait)) {
        break;
      }
      try {
        handle_message(identity.to_string(), payload.to_string());
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
        for (auto& s : sessions_) {
          for (auto& [slot, w] : s->workers) {
            w.last_seen += lost;
          }
        }
      }
      last_turn = turn_start;
      std::vector<zmq::pollitem_t> items;
      items.push_back({control_->handle(), 0, ZMQ_POLLIN, 0});
      items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
      for (const auto& s : sessions_) {
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
    // Shutdown: stop every session, give workers a moment, then kill what is left.
    for (auto& s : sessions_) {
      begin_destroy(*s);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    while (Clock::now() < deadline) {
      bool any = false;
      for (auto& s : sessions_) {
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
    for (auto& s : sessions_) {
      destroy_now(*s);
      emit_global(s->id, Json{{"event", "sessiondestroyed"}, {"session_id", s->id}});
    }
    sessions_.clear();
    run_tasks();  // answer anything queued meanwhile (callers see the sessions gone)
    for (auto& weak : subscribers_) {
      if (auto sub = weak.lock()) {
        sub->close();
      }
    }
  }

  SessionConfig config_;
  std::string run_id_;
  std::string control_endpoint_;
  std::unique_ptr<zmq::socket_t> control_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex tasks_mutex_;
  std::deque<std::function<void()>> tasks_;

  std::vector<std::unique_ptr<Session>> sessions_;
  std::uint32_t next_session_number_ = 0;
  std::uint32_t next_gid_ = 1;
  std::map<std::uint32_t, std::pair<std::string, std::uint32_t>> by_gid_;  // gid -> (session, slot)
  std::uint64_t next_op_ = 1;
  std::map<std::uint64_t, TuneWait> tune_waits_;
  std::vector<std::weak_ptr<EventSubscription>> subscribers_;
  std::uint64_t events_dropped_ = 0;
  SessionManagerStats stats_;
  Clock::time_point next_second_ = Clock::now();
  Clock::time_point next_memory_check_ = Clock::now();
};

// ---------------------------------------------------------------------------------------------
// SessionManager

SessionManager::SessionManager(SessionConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}

SessionManager::~SessionManager() = default;

const SessionConfig& SessionManager::config() const { return impl_->config(); }

Result<SessionInfo> SessionManager::create_session(const std::optional<std::string>& name,
                                                   std::string_view yaml) {
  const std::string text(yaml);
  auto created = impl_->call([&] { return impl_->create(name, text); }, "create");
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

Result<Json> SessionManager::pipeline_json(std::string_view id_or_name) {
  const std::string key(id_or_name);
  return impl_->call([&] { return impl_->pipeline(key); }, "pipeline");
}

Result<std::vector<BatchIssue>> SessionManager::validate_batch(
    std::string_view id_or_name, const std::vector<BatchOperation>& operations) {
  const std::string key(id_or_name);
  return impl_->call([&] { return impl_->validate(key, operations); });
}

Status SessionManager::apply_batch(std::string_view id_or_name,
                                   const std::vector<BatchOperation>& operations) {
  const std::string key(id_or_name);
  return impl_->call([&] { return impl_->apply(key, operations); }, "applybatch");
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

std::shared_ptr<EventSubscription> SessionManager::subscribe(std::size_t capacity) {
  return impl_->call([&] { return impl_->subscribe(capacity); });
}

SessionManagerStats SessionManager::stats() {
  return impl_->call([&] { return impl_->stats(); });
}

}  // namespace skit::supervisor
