// SPDX-License-Identifier: MPL-2.0
#include "batch_check.hpp"

#include <algorithm>
#include <set>

#include "skit/supervisor/graph.hpp"

namespace skit::supervisor::sessions {

namespace {

/// The session's graph as it is now (no positions: its problems were reported long ago).
PipelineGraph graph_of(const Session& s) {
  PipelineGraph g;
  for (const auto& id : s.order) {
    const LiveNode& n = s.nodes.at(id);
    GraphNode node;
    node.id = n.id;
    node.kind = n.kind;
    node.params = n.params;
    (void)g.add_node(std::move(node));
  }
  for (const auto& c : s.connections) {
    (void)g.connect(GraphConnection{c.from_node, c.from_pin, c.to_node, c.to_pin, c.mode, {}});
  }
  return g;
}

/// "stopped (completed)" or "failed (...)" for a live node that has ended, "" otherwise.
std::string ended_state(const Session& s, const std::string& id) {
  const auto it = s.nodes.find(id);
  if (it == s.nodes.end() || !it->second.ended()) {
    return {};
  }
  const LiveNode& n = it->second;
  return std::string(n.state == LiveState::kStopped ? "stopped" : "failed") +
         (n.reason.empty() ? "" : " (" + n.reason + ")");
}

}  // namespace

std::vector<BatchIssue> check_batch(const Session& s, const std::vector<BatchOperation>& ops,
                                    const NodePolicy& policy, std::size_t max_nodes,
                                    std::map<std::size_t, Json>* worker_params) {
  PipelineGraph g = graph_of(s);
  std::vector<Status> problems;
  std::set<std::string> added;  // by this batch: not the live node of that id, if any
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const BatchOperation& op = ops[i];
    SourceLocation at;
    at.operation = static_cast<int>(i);
    auto problem = [&](Status st) {
      st.where().operation = static_cast<int>(i);
      problems.push_back(std::move(st));
    };
    switch (op.action) {
      case BatchOperation::Action::kAddNode: {
        if (op.node_id.empty()) {
          problem(Status(ErrorCode::kInvalidArgument, "addnode needs a node_id"));
          break;
        }
        GraphNode node;
        node.id = op.node_id;
        node.kind = op.kind;
        node.params = op.params.is_null() ? Json::object() : op.params;
        node.where = at;
        const bool existed = g.find(op.node_id) != nullptr;
        for (Status& st : g.add_node(node)) {
          problem(std::move(st));
        }
        if (existed || g.find(op.node_id) == nullptr) {
          break;  // a duplicate, or refused (its problems are above)
        }
        added.insert(op.node_id);
        v1::NodeSpec spec;
        spec.set_id(op.node_id);
        spec.set_kind(op.kind);
        spec.set_params_json(node.params.dump());
        Json confined;
        for (Status& st : policy(spec, confined)) {
          problem(std::move(st));
        }
        if (worker_params != nullptr) {
          (*worker_params)[i] = std::move(confined);
        }
        if (g.nodes().size() > max_nodes) {
          problem(Status(ErrorCode::kResourceExhausted,
                         "a session may have at most " + std::to_string(max_nodes) + " nodes",
                         {.node_id = op.node_id}));
        }
        break;
      }
      case BatchOperation::Action::kRemoveNode:
        if (Status st = g.remove_node(op.node_id, at); !st.is_ok()) {
          problem(std::move(st));
        }
        added.erase(op.node_id);
        break;
      case BatchOperation::Action::kConnect: {
        // A node that has ended neither writes nor reads again: a connection to it would
        // leave its other end waiting forever while reporting Running.
        if (const std::string ended = added.contains(op.from_node) ? "" : ended_state(s, op.from_node);
            !ended.empty()) {
          problem(Status(ErrorCode::kGraphError,
                         "node '" + op.from_node + "' has " + ended +
                             ": its output carries nothing more (connect from a running node)",
                         {.node_id = op.from_node}));
          break;
        }
        if (const std::string ended = added.contains(op.to_node) ? "" : ended_state(s, op.to_node);
            !ended.empty()) {
          problem(Status(ErrorCode::kGraphError,
                         "node '" + op.to_node + "' has " + ended + ": it reads nothing more",
                         {.node_id = op.to_node}));
          break;
        }
        if (Status st = g.connect(GraphConnection{op.from_node, op.from_pin, op.to_node,
                                                  op.to_pin, op.mode, at});
            !st.is_ok()) {
          problem(std::move(st));
        }
        break;
      }
      case BatchOperation::Action::kDisconnect:
        if (Status st = g.disconnect(GraphConnection{op.from_node, op.from_pin, op.to_node,
                                                     op.to_pin, op.mode, at});
            !st.is_ok()) {
          problem(std::move(st));
        }
        break;
    }
  }
  // The whole graph as the batch leaves it: cycles, and types through Passthrough outputs
  // whatever the order of the connections. Inputs may stay unconnected in a session.
  for (Status& st : g.check({.mode = GraphMode::kDynamic})) {
    problems.push_back(std::move(st));
  }
  std::stable_sort(problems.begin(), problems.end(), [](const Status& a, const Status& b) {
    return a.where().operation < b.where().operation;
  });
  std::vector<BatchIssue> issues;
  for (const Status& p : problems) {
    Status text = p;
    text.where().operation = -1;  // the issue carries it as a field
    issues.push_back(BatchIssue{static_cast<std::size_t>(std::max(p.where().operation, 0)),
                                p.where().node_id, text.to_string(), p.code(), p.where().param});
  }
  return issues;
}

Status batch_error(const std::vector<BatchIssue>& issues) {
  std::string all;
  for (const auto& i : issues) {
    all += (all.empty() ? "" : "\n") + std::string("operation ") + std::to_string(i.operation) +
           ": " + i.message;
  }
  // The first problem's kind decides the code (a path escape is not a syntax error).
  return Status(issues.front().code, all, {.node_id = issues.front().node_id});
}

}  // namespace skit::supervisor::sessions

