// SPDX-License-Identifier: MPL-2.0
// Checking a batch of live edits: the operations are applied to the graph model of the session
// (supervisor/graph.hpp, the rules YAML documents are compiled with), then the whole graph is
// judged, so that a batch and a document refuse the same things with the same messages; the
// session adds its own rules (nodes that have ended, the node limit, the session's node policy).
#pragma once

#include <functional>
#include <map>
#include <vector>

#include "model.hpp"

namespace skit::supervisor::sessions {

/// The checks a node must pass to join a session (entry rules, file allow-lists); fills the
/// params its worker gets (paths confined).
using NodePolicy = std::function<std::vector<Status>(const v1::NodeSpec&, Json& worker_params)>;

/// Every problem of `ops` against `s`, sorted by operation. `worker_params` (optional)
/// receives, per addnode operation index, the params its worker gets.
std::vector<BatchIssue> check_batch(const Session& s, const std::vector<BatchOperation>& ops,
                                    const NodePolicy& policy, std::size_t max_nodes,
                                    std::map<std::size_t, Json>* worker_params = nullptr);

/// The same problems as one error: a line per problem ("operation 2: node 'x': ..."); the
/// first one's code decides the error's.
Status batch_error(const std::vector<BatchIssue>& issues);

}  // namespace skit::supervisor::sessions
