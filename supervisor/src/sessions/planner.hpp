// SPDX-License-Identifier: MPL-2.0
// The planner turns a change of a session's graph into what realizes it: shared-memory pools
// and rings created or retired, and the ring changes (Rewire) each live worker applies between
// two packets. A worker that is not live yet gets its whole part of the graph in its next
// Assign instead, built from the same model (fleet.cpp).
#pragma once

#include <string>
#include <vector>

#include "model.hpp"

namespace skit::supervisor::sessions {

class Planner {
 public:
  explicit Planner(Core& core) : core_(core) {}

  /// A node joins the model with one pool per declared output (connections come and go).
  LiveNode& add_node(Session& s, const std::string& id, const std::string& kind,
                     const Json& params, const Json& worker_params,
                     const NodeDescriptor* descriptor);
  /// A new worker slot of the session (its process is spawned by the fleet).
  std::uint32_t add_worker_slot(Session& s);
  /// A connection joins the model with its ring; nothing is sent yet.
  Status add_connection(Session& s, const std::string& from_node, const std::string& from_pin,
                        const std::string& to_node, const std::string& to_pin,
                        ConnectionMode mode);
  /// The new connection `c` reaches its live ends (output first, then input).
  void attach(Session& s, Rewires& rewires, const LiveConnection& c);
  /// Removes a connection: the producer closes it with a detach marker; the consumer drains
  /// (reliable) or drops (best effort) up to that marker, then goes on with its next one.
  void disconnect(Session& s, Rewires& rewires, std::vector<LiveConnection>::iterator it,
                  bool consumer_removed);
  /// Removes a node: its connections, then the node (its runner retires), its pools later.
  void remove_node(Session& s, Rewires& rewires, const std::string& node_id);
  /// Cuts a failed node out so that its neighbours neither wait for it nor block on it: its
  /// producers detach their outputs to it, its consumers see the end of its stream.
  /// `consumer_gone`: nothing reads its input rings any more; they are emptied.
  void sever_node(Session& s, const std::string& id, bool consumer_gone, Rewires& rewires);
  /// Before a restart: rings whose both ends are the worker's nodes hold packets of the
  /// previous incarnation (a demuxer restarting from the top must not read the old reader's
  /// bytes); both ends are dead, so they are emptied.
  void reset_internal_rings(Session& s, const LiveWorker& w);
  /// Sends each live worker its changes, numbered so that their acknowledgements can be waited
  /// for before a retired segment is unlinked.
  void send(Session& s, Rewires& rewires);

  static std::vector<LiveConnection>::iterator find_connection(Session& s, const std::string& fn,
                                                               const std::string& fp,
                                                               const std::string& tn,
                                                               const std::string& tp);

 private:
  void add_change(Session& s, Rewires& rewires, const std::string& node_id,
                  v1::RingChange::Type type, const std::string& pin, const std::string& ring,
                  bool drop = false, std::uint32_t grace_ms = 2000);
  void retire_ring(Session& s, const std::string& ring, Rewires& rewires,
                   const std::vector<std::string>& ends);

  Core& core_;
};

}  // namespace skit::supervisor::sessions
