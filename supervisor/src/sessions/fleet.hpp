// SPDX-License-Identifier: MPL-2.0
// The worker fleet of the sessions: spawning workers and assigning them their nodes, the
// messages they send (hello, ready, node states, heartbeats, acks, tunes applied), and what
// keeps a session alive through faults: heartbeats and hung nodes, the memory watch, crash
// restarts with backoff, and the restart budget past which nodes fail for good.
#pragma once

#include <string>

#include "model.hpp"
#include "planner.hpp"

namespace skit::supervisor::sessions {

class WorkerFleet {
 public:
  WorkerFleet(Core& core, Planner& planner) : core_(core), planner_(planner) {}

  /// Starts (or restarts) the process of a worker slot; it says hello, then gets its Assign.
  Status spawn(Session& s, LiveWorker& w);
  /// One message from a worker (identity "w<gid>").
  void handle_message(const std::string& identity, const std::string& payload);
  /// Reaps exits (a crash restarts after a backoff), restarts those due, kills the silent.
  void check_workers(Session& s);
  /// Kills a worker whose resident memory passed sessions.worker_memory_limit_mb.
  void check_memory(Session& s);
  /// Unlinks retired segments once nobody can be using them; forgets workers with no nodes.
  void collect_retired(Session& s);
  /// Gives up on a worker: its nodes fail and are cut out of the graph.
  void fail_worker(Session& s, LiveWorker& w, const std::string& reason);
  /// A nodestatsupdated event at most once a second per node, when its counters moved.
  void maybe_emit_stats(Session& s, LiveNode& n);
  /// Asks every worker of the session to stop (killed at the deadline if it does not).
  void begin_destroy(Session& s);
  /// Final teardown: no process, mapping or name of the session is left.
  void destroy_now(Session& s);

 private:
  v1::Assign make_assign(const Session& s, const LiveWorker& w) const;
  void on_crash(Session& s, LiveWorker& w, const std::string& reason);

  Core& core_;
  Planner& planner_;
};

}  // namespace skit::supervisor::sessions
