// SPDX-License-Identifier: MPL-2.0
// Live edits of a session: a batch is judged whole on the graph model (batch_check), then
// carried out by the planner (rings, pools, Rewires) and the fleet (new workers); a tune is
// checked against the node's params and the path allow-lists, then sent to its worker, whose
// acknowledgement the caller may wait for. Runs on the control thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fleet.hpp"
#include "model.hpp"
#include "planner.hpp"

namespace skit::supervisor::sessions {

class LiveEdits {
 public:
  LiveEdits(Core& core, Planner& planner, WorkerFleet& fleet)
      : core_(core), planner_(planner), fleet_(fleet) {}

  /// Every problem of the batch, none applied; `worker_params` receives the params of added
  /// nodes as their workers get them (file paths confined).
  std::vector<BatchIssue> check(const Session& s, const std::vector<BatchOperation>& ops,
                                std::map<std::size_t, Json>* worker_params) const;
  /// All or nothing: refused with its issues, or applied whole.
  Status apply(Session& s, const std::vector<BatchOperation>& ops,
               std::vector<BatchIssue>* issues_out);
  /// The session's rules and the path allow-lists for one node; `worker_params` receives its
  /// params with the file paths as checked (canonical).
  std::vector<Status> policy_of(const v1::NodeSpec& spec, Json& worker_params) const;

  /// Sends a tune; returns its op id (0 when nothing to wait for).
  Result<std::uint64_t> tune(Session& s, const std::string& node_id, const Json& patch);
  /// The outcome of tune `op` once its worker has answered; nullopt while it has not
  /// (`give_up`: stop waiting, the change stays queued in the worker).
  std::optional<Status> tune_result(std::uint64_t op, bool give_up);
  /// Sends an HTTP request to a running node of the session; returns its request id.
  Result<std::uint64_t> request(Session& s, const std::string& node_id, NodeRequest request);
  /// The node's reply once its worker has sent it; nullopt while not (with `give_up`: an
  /// error, and the wait is forgotten).
  std::optional<Result<NodeReply>> request_result(std::uint64_t id, bool give_up);

  void emit_node_added(const Session& s, const LiveNode& n);
  void emit_connection_added(const Session& s, const LiveConnection& c);

 private:
  Core& core_;
  Planner& planner_;
  WorkerFleet& fleet_;
};

}  // namespace skit::supervisor::sessions
