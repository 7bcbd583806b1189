// SPDX-License-Identifier: MPL-2.0
// The one model of a pipeline graph: nodes (kind, params), their pins, and connections, with
// the rules of a valid graph written once. A YAML document is compiled by building this model
// (pipeline_compiler); a live batch is applied to a copy of a session's model (sessions). Both
// therefore refuse the same things with the same messages, placed by YAML line and column, or
// by the batch operation that caused them (SourceLocation::operation).
//
// Edits check what they can alone (ids, kinds, params, pins, an input used twice); check() then judges the whole graph (cycles, packet types resolved
// through Passthrough outputs, required inputs of a oneshot pipeline), so that the order of
// the edits never matters.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "skit/core/pins.hpp"
#include "skit/core/registry.hpp"
#include "skit/core/status.hpp"
#include "skit/v1/pipeline.pb.h"

namespace skit::supervisor {

struct GraphNode {
  std::string id;
  std::string kind;
  Json params = Json::object();
  bool dedicated = false;  // isolation: dedicated
  SourceLocation where;    // the node's YAML position, or the operation that added it
  // YAML positions of its `kind`, its `params` and each param, so that a problem points at its
  // line (each falls back to the one before, then to `where`).
  SourceLocation kind_where;
  SourceLocation params_where;
  std::map<std::string, SourceLocation> param_where;
  const NodeDescriptor* descriptor = nullptr;  // set by PipelineGraph::add_node
};

struct GraphConnection {
  std::string from_node;
  std::string from_pin = "out";
  std::string to_node;
  std::string to_pin = "in";
  ConnectionMode mode = ConnectionMode::kReliable;
  SourceLocation where;  // the `needs` entry, or the connect operation
};

enum class GraphMode : std::uint8_t {
  kOneshot,  // every required input is connected when the pipeline starts
  kDynamic,  // a session: inputs may be connected later
};

struct GraphCheck {
  GraphMode mode = GraphMode::kOneshot;
  /// Nodes whose missing inputs are already explained by an earlier error (a `needs` entry
  /// that was refused): not reported twice.
  std::set<std::string> inputs_explained;
};

class PipelineGraph {
 public:
  /// The model of a compiled pipeline (its problems, if any, are ignored: it was checked).
  static PipelineGraph of(const v1::Pipeline& pipeline,
                          const NodeRegistry& registry = NodeRegistry::builtin());

  explicit PipelineGraph(const NodeRegistry& registry = NodeRegistry::builtin());

  /// Node ids: non-empty, without '.' (pin references use it) or whitespace.
  static Status check_node_id(const std::string& id);

  /// Adds a node: its id, kind and params are checked (every param problem at once). A bad id,
  /// a duplicate or an unknown kind keeps it out; with bad params it joins, so that its
  /// connections are checked too (the caller refuses the whole document or batch).
  std::vector<Status> add_node(GraphNode node);
  /// Removes a node and every connection to or from it.
  Status remove_node(const std::string& id, const SourceLocation& where = {});
  /// Connects two pins: both nodes and pins exist (an input family like the mixer's `in_N`
  /// takes any member), the input is free, and a node does not feed itself.
  Status connect(GraphConnection connection);
  Status disconnect(const GraphConnection& connection);

  /// The rules over the whole graph: cycles, the packet type of every connection (Passthrough
  /// outputs resolved from upstream), and for a oneshot pipeline every required input.
  [[nodiscard]] std::vector<Status> check(const GraphCheck& rules) const;

  [[nodiscard]] const GraphNode* find(std::string_view id) const;
  /// In the order they were added (a YAML document's order).
  [[nodiscard]] const std::vector<GraphNode>& nodes() const { return nodes_; }
  [[nodiscard]] const std::vector<GraphConnection>& connections() const { return connections_; }
  /// What `node.pin` carries: its declared type, or for a Passthrough output what flows into
  /// the node's first connected input (Any when nothing does yet).
  [[nodiscard]] PacketType output_type(const std::string& node, const std::string& pin) const;
  /// Connected members of a node's dynamic input family (a oneshot mixer's num_inputs).
  [[nodiscard]] std::size_t family_members(const std::string& node, const std::string& family) const;

  static const InputPinSpec* find_input(const NodeDescriptor& d, const std::string& pin);
  static const OutputPinSpec* find_output(const NodeDescriptor& d, const std::string& pin);

 private:
  GraphNode* find_mutable(std::string_view id);
  PacketType output_type(const std::string& node, const std::string& pin, int depth) const;

  const NodeRegistry* registry_;
  std::vector<GraphNode> nodes_;
  std::vector<GraphConnection> connections_;
};

}  // namespace skit::supervisor
