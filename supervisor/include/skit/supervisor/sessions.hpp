// SPDX-License-Identifier: MPL-2.0
// Dynamic sessions: long-running pipelines that are edited while they run (add/remove nodes,
// connect/disconnect, tune params, all-or-nothing batches), observed through events, and kept
// alive through worker crashes (restart with backoff, failure after a restart budget).
//
// The SessionManager owns one control thread. Every public method is thread-safe: it posts a
// command to that thread and waits for its answer, so no lock is held across worker I/O and a
// slow session never blocks another's API calls for longer than one command.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skit/core/params.hpp"
#include "skit/core/pins.hpp"
#include "skit/core/status.hpp"
#include "skit/supervisor/path_policy.hpp"
#include "skit/supervisor/run.hpp"
#include "skit/v1/pipeline.pb.h"

namespace skit::supervisor {

struct SessionConfig {
  /// Initial nodes of a session: one worker for the session (grouped, the default: in-process
  /// doorbells, about a third of per-node's CPU, see bench/run sessions) or one worker each
  /// (per-node: a crash or a restart touches one node). Nodes added later, and
  /// `isolation: dedicated` nodes, always get a worker of their own.
  PlacementPolicy placement = PlacementPolicy::kGrouped;
  SandboxOptions sandbox;
  std::string worker_executable;     // the skit binary, re-executed as `skit worker`
  std::uint32_t ring_capacity = 16;  // packets per connection (16 x 20 ms = 320 ms of audio)
  std::chrono::milliseconds heartbeat_interval{250};
  std::chrono::milliseconds heartbeat_timeout{3000};  // missed heartbeats: killed as hung
  std::chrono::milliseconds node_timeout{10000};      // stuck in one call: killed as hung
  std::chrono::milliseconds start_timeout{10000};     // spawn -> ready
  // Limits.
  std::size_t max_sessions = 64;
  std::size_t max_nodes_per_session = 64;
  /// A session whose nodes have all stopped (or that has none) and that saw no API call for
  /// this long is destroyed. 0 = never.
  std::chrono::seconds idle_timeout{0};
  // Crash handling: a worker is restarted after backoff_initial, doubling up to backoff_max;
  // more than max_restarts crashes within restart_window mark its nodes failed for good.
  std::uint32_t max_restarts = 5;
  std::chrono::seconds restart_window{60};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  /// A worker whose resident memory exceeds this is killed and reported. 0 = no watch.
  std::uint64_t worker_memory_limit_bytes = 1ULL << 30;
  /// Events queued per subscriber before the oldest are dropped (stats are coalesced first).
  std::size_t event_queue_capacity = 1024;
  /// The file path allow-lists for the nodes of a session (its YAML, added nodes, tuned
  /// params): checked paths are confined (canonical, opened following no symbolic link).
  /// Unset: file params are not policed and are opened as given (tests, tools).
  std::optional<PathPolicy> paths;
};

struct SessionInfo {
  std::string id;          // UUIDv4
  std::string name;        // unique; generated ("adjective-noun-xxxx") when not given
  std::string created_at;  // RFC 3339, UTC
  std::size_t node_count = 0;
  /// Who created it: the name of the caller's token ("" without auth). The gateway lets a
  /// role without access_all_sessions see and edit only its own sessions.
  std::string owner;
};

/// One operation of a batch, as StreamKit's BatchOperation (`action`-tagged JSON).
struct BatchOperation {
  enum class Action : std::uint8_t { kAddNode, kRemoveNode, kConnect, kDisconnect };
  Action action = Action::kAddNode;
  std::string node_id;  // addnode, removenode
  std::string kind;     // addnode
  Json params;          // addnode: null or an object
  std::string from_node, from_pin, to_node, to_pin;  // connect, disconnect
  ConnectionMode mode = ConnectionMode::kReliable;   // connect
};

/// A problem found in a batch; `operation` is its index in the batch (from 0).
struct BatchIssue {
  std::size_t operation = 0;
  std::string node_id;
  std::string message;
  ErrorCode code = ErrorCode::kInvalidArgument;  // kPermissionDenied, kResourceExhausted, ...
  std::string param;  // when the problem is one param's
};

/// A live node's state (StreamKit's NodeState).
struct NodeStatus {
  enum class Kind : std::uint8_t { kInitializing, kReady, kRunning, kRecovering, kStopped, kFailed };
  Kind kind = Kind::kInitializing;
  std::string reason;  // Recovering, Stopped ("completed"), Failed
  Json details;        // Recovering: {attempt, backoff_ms, max_restarts}; null otherwise
};

struct NodeView {
  std::string id;
  std::string kind;
  Json params = Json::object();  // as given (not the confined paths the worker gets)
  NodeStatus status;
  NodeStats stats;
  double running_seconds = 0;  // since the node joined the session
  int worker_pid = 0;          // 0 while its worker is not running
  std::uint32_t restarts = 0;
};

struct ConnectionView {
  std::string from_node;
  std::string from_pin;
  std::string to_node;
  std::string to_pin;
  ConnectionMode mode = ConnectionMode::kReliable;
};

/// A session's pipeline with live state; nodes in the order they joined.
struct PipelineView {
  std::string name;
  std::string description;
  std::vector<NodeView> nodes;
  std::vector<ConnectionView> connections;
};

/// Something that happened in a session. The fields a kind does not use stay empty; front ends
/// render StreamKit's event payloads (or protobuf) from it.
struct SessionEvent {
  enum class Kind : std::uint8_t {
    kSessionCreated,     // name, created_at
    kSessionDestroyed,
    kNodeAdded,          // node_id, node_kind, params
    kNodeRemoved,        // node_id
    kConnectionAdded,    // connection
    kConnectionRemoved,  // connection
    kNodeStateChanged,   // node_id, status, worker_pid, restarts
    kNodeStatsUpdated,   // node_id, stats, running_seconds, status (for "errored")
    kNodeParamsChanged,  // node_id, params
    kNodeTelemetry,      // node_id, telemetry (a JSON object with event_type), timestamp_us
  };
  Kind kind = Kind::kSessionCreated;
  std::string session_id;
  std::string timestamp;  // RFC 3339, when it happened
  std::string owner;      // the session's (SessionInfo::owner): who may receive the event
  std::string name;
  std::string created_at;
  std::string node_id;
  std::string node_kind;
  Json params;
  NodeStatus status;
  int worker_pid = 0;
  std::uint32_t restarts = 0;
  NodeStats stats;
  double running_seconds = 0;
  ConnectionView connection;
  Json telemetry;                // kNodeTelemetry: {"event_type": ..., ...}
  std::int64_t timestamp_us = -1;  // kNodeTelemetry: the event's own time; < 0: unknown
};

/// A subscriber's bounded event queue. A subscriber that lags loses events, never slows a
/// session: stats events for one node replace the queued one, and past the capacity the
/// oldest event is dropped and counted.
class EventSubscription {
 public:
  explicit EventSubscription(std::size_t capacity) : capacity_(capacity) {}
  /// The next event, waiting up to `timeout`; nothing on timeout or once closed.
  std::optional<SessionEvent> next(std::chrono::milliseconds timeout);
  [[nodiscard]] std::uint64_t dropped() const;
  [[nodiscard]] std::uint64_t coalesced() const;
  /// Stops delivery; a waiting next() returns at once.
  void close();
  [[nodiscard]] bool closed() const;
  /// For subscribers that do not wait in next() (gRPC's callback API): called after each
  /// event is queued and on close(), from the producer's thread; it must not block. Once
  /// set_listener() returns, the previous listener is no longer running nor called.
  void set_listener(std::function<void()> listener);

  /// Producer side (the session manager).
  void push(SessionEvent event, bool coalesce_stats);

 private:
  void notify();

  std::mutex listener_mutex_;
  std::function<void()> listener_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<SessionEvent> queue_;
  std::size_t capacity_;
  std::uint64_t dropped_ = 0;
  std::uint64_t coalesced_ = 0;
  bool closed_ = false;
};

struct SessionManagerStats {
  std::size_t sessions = 0;
  std::size_t nodes = 0;
  std::size_t workers = 0;
  std::uint64_t sessions_created = 0;
  std::uint64_t sessions_destroyed = 0;
  std::uint64_t worker_restarts = 0;
  std::uint64_t worker_crashes = 0;
  std::uint64_t nodes_failed = 0;
  std::uint64_t events_dropped = 0;  // over all subscribers
  std::uint64_t telemetry_events = 0;  // nodetelemetry events received from workers
};

class SessionManager {
 public:
  explicit SessionManager(SessionConfig config);
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;
  SessionManager(SessionManager&&) = delete;
  SessionManager& operator=(SessionManager&&) = delete;
  /// Destroys every session: no worker or shared-memory segment outlives the manager.
  ~SessionManager();

  [[nodiscard]] const SessionConfig& config() const;

  /// Creates a session from pipeline YAML (its `mode` may be absent or `dynamic`), or an empty
  /// one when `yaml` is empty. Errors: kInvalidArgument (and the compiler's codes) for a bad
  /// pipeline, kAlreadyExists for a taken name, kResourceExhausted past max_sessions or
  /// max_nodes_per_session, kPermissionDenied from the node policy. Returns once every worker
  /// of the session has started (or failed to start, then the session is not created).
  Result<SessionInfo> create_session(const std::optional<std::string>& name,
                                     std::string_view yaml, std::string owner = "");
  /// Stops and removes a session (by id or name). kNotFound if there is none.
  Result<SessionInfo> destroy_session(std::string_view id_or_name);
  std::vector<SessionInfo> list_sessions();
  Result<SessionInfo> find_session(std::string_view id_or_name);

  /// The session's pipeline with live state.
  Result<PipelineView> pipeline(std::string_view id_or_name);

  /// Checks a batch against the session as it would be after each operation; changes nothing.
  Result<std::vector<BatchIssue>> validate_batch(std::string_view id_or_name,
                                                 const std::vector<BatchOperation>& operations);
  /// Applies a batch all or nothing: every operation is checked first (types, ids, limits,
  /// policy); on any problem nothing changes, the error lists every problem, one per line,
  /// and `issues` (if given) receives them.
  Status apply_batch(std::string_view id_or_name, const std::vector<BatchOperation>& operations,
                     std::vector<BatchIssue>* issues = nullptr);

  /// Merges `patch` into the node's params (validated against its schema first). With `wait`,
  /// returns once the node has applied it between two packets (or fails after 2 s); without,
  /// returns once it is sent. kFailedPrecondition when the node has stopped or failed.
  Status tune_node(std::string_view id_or_name, std::string_view node_id, const Json& patch,
                   bool wait);

  /// Forwards an HTTP request to a running node of the session (WebRTC signalling) and waits
  /// for its reply: kNotFound (session, node), kUnavailable (the node has ended or its worker
  /// is restarting), kDeadlineExceeded (no reply within `timeout`).
  Result<NodeReply> node_request(std::string_view id_or_name, std::string_view node_id,
                                 NodeRequest request, std::chrono::milliseconds timeout);

  /// Every event of every session from now on, into a bounded queue of its own.
  std::shared_ptr<EventSubscription> subscribe(std::size_t capacity = 0);

  SessionManagerStats stats();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skit::supervisor
