// SPDX-License-Identifier: MPL-2.0
// The session manager's state, owned by its control thread: each live session's nodes,
// connections, workers and shared memory, and what the parts of the manager share (the
// control socket, ids, counters, the event hub). See manager.cpp for how they fit together.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "../worker_process.hpp"
#include "events.hpp"
#include "skit/core/registry.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/supervisor/sessions.hpp"
#include "skit/v1/worker.pb.h"

namespace skit::supervisor::sessions {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using LiveState = NodeStatus::Kind;

struct LiveNode {
  std::string id;
  std::string kind;
  Json params = Json::object();         // as the user gave them (pipeline view, events)
  Json worker_params = Json::object();  // as the worker gets them: file paths confined
  const NodeDescriptor* descriptor = nullptr;
  LiveState state = LiveState::kInitializing;
  std::string reason;  // Stopped/Failed/Recovering
  /// The params as views and events show them: secrets (a stream key) as "***".
  [[nodiscard]] Json shown_params() const {
    return descriptor != nullptr && descriptor->params != nullptr ? descriptor->params->redacted(params)
                                                                   : params;
  }
  Json details;        // Recovering
  NodeStats stats;
  NodeStats emitted_stats;
  Clock::time_point stats_emitted_at{};
  Clock::time_point started_at = Clock::now();
  std::uint32_t worker = 0;  // session-local worker slot
  std::string doorbell;
  std::vector<std::uint32_t> pools;  // one per declared output pin
  std::uint32_t restarts = 0;
  bool cut_out = false;  // failed in a live worker: its runner is gone, its rings unread

  [[nodiscard]] bool ended() const {
    return state == LiveState::kStopped || state == LiveState::kFailed;
  }
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

  /// Assigned and running: it takes Rewire and Tune messages (otherwise its next Assign is
  /// built from the model).
  [[nodiscard]] bool live() const { return hello && !exited && process.running() && !failed; }
};

/// A ring or pool no longer in the graph, unlinked once every worker that mapped it has
/// acknowledged the Rewire that let go of it (and not before `not_before`).
struct RetiredSegment {
  std::unique_ptr<ipc::SharedSegment> segment;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> waits;  // (gid, seq) to be acked
  Clock::time_point not_before{};
};

struct TuneWait {
  std::optional<Status> result;
  Clock::time_point sent_at{};
};

/// A NodeRequest on its way: answered only by the worker of the node it was sent to.
struct RequestWait {
  std::string session_id;
  std::string node_id;
  std::uint32_t worker_gid = 0;
  std::optional<NodeReply> reply;
  Clock::time_point sent_at{};
};

struct Session {
  std::string id;
  std::string name;
  std::string created_at;
  std::string owner;  // SessionInfo::owner
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

/// Ring changes per worker slot, sent together after a model change.
using Rewires = std::map<std::uint32_t, v1::Rewire>;

/// What the manager's parts share; one instance, used on the control thread only.
struct Core {
  explicit Core(SessionConfig c);

  SessionConfig config;
  std::string run_id;
  std::string control_endpoint;
  std::unique_ptr<zmq::socket_t> control;
  std::vector<std::unique_ptr<Session>> sessions;
  std::uint32_t next_session_number = 0;
  std::uint32_t next_gid = 1;
  std::map<std::uint32_t, std::pair<std::string, std::uint32_t>> by_gid;  // -> (session, slot)
  std::uint64_t next_op = 1;
  std::map<std::uint64_t, TuneWait> tune_waits;
  std::map<std::uint64_t, RequestWait> request_waits;
  SessionManagerStats stats;
  EventHub events;

  /// A session by id or name (not one being destroyed).
  Session* find(std::string_view id_or_name);
  Session* find_by_id(const std::string& id);
  [[nodiscard]] std::string segment_name(const Session& s, const std::string& what) const;
  void send(const LiveWorker& w, const v1::SupervisorMessage& msg);
  /// Sets a node's state and tells the subscribers.
  void set_state(Session& s, LiveNode& n, LiveState state, const std::string& reason,
                 Json details = nullptr);
  [[nodiscard]] NodeView view_of(const Session& s, const LiveNode& n) const;
  void emit(const Session& s, SessionEvent event, bool coalesce_stats = false);
};

/// Empties a ring whose consumer is dead, giving its slots back to their pools, so that a
/// producer blocked on it (backpressure) moves on.
void drain_ring(Session& s, const std::string& ring);

/// The StreamKit-shaped connection of an event or a view.
ConnectionView view_of(const LiveConnection& c);

}  // namespace skit::supervisor::sessions
