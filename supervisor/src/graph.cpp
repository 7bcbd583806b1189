// SPDX-License-Identifier: MPL-2.0
#include "skit/supervisor/graph.hpp"

#include <algorithm>
#include <functional>

namespace skit::supervisor {

namespace {

Status at(ErrorCode code, std::string message, SourceLocation where, const std::string& node,
          const std::string& param = {}) {
  where.node_id = node;
  where.param = param;
  return Status(code, std::move(message), std::move(where));
}

std::string pin_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    out += (out.empty() ? "" : ", ") + n;
  }
  return out.empty() ? "none" : out;
}

std::string accepts_text(const std::vector<PacketType>& accepts) {
  std::string out;
  for (const auto& a : accepts) {
    out += (out.empty() ? "" : " or ") + to_string(a);
  }
  return out;
}

const SourceLocation& first_placed(const SourceLocation& a, const SourceLocation& b) {
  return a.line > 0 || a.operation >= 0 ? a : b;
}

}  // namespace

PipelineGraph::PipelineGraph(const NodeRegistry& registry) : registry_(&registry) {}

PipelineGraph PipelineGraph::of(const v1::Pipeline& pipeline, const NodeRegistry& registry) {
  PipelineGraph g(registry);
  for (const auto& n : pipeline.nodes()) {
    GraphNode node;
    node.id = n.id();
    node.kind = n.kind();
    node.params = Json::parse(n.params_json().empty() ? "{}" : n.params_json(), nullptr, false);
    node.dedicated = n.isolation() == v1::ISOLATION_DEDICATED;
    node.where = SourceLocation{"", "", n.position().line(), n.position().column()};
    (void)g.add_node(std::move(node));
  }
  for (const auto& c : pipeline.connections()) {
    (void)g.connect(GraphConnection{
        c.from_node(), c.from_pin(), c.to_node(), c.to_pin(),
        c.mode() == v1::CONNECTION_MODE_BEST_EFFORT ? ConnectionMode::kBestEffort
                                                    : ConnectionMode::kReliable,
        SourceLocation{"", "", c.position().line(), c.position().column()}});
  }
  return g;
}

Status PipelineGraph::check_node_id(const std::string& id) {
  if (id.empty() || id.find_first_of(". \t\r\n") != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument, "node ids must be non-empty, without '.' or spaces",
                  {.node_id = id});
  }
  return Status::ok();
}

const InputPinSpec* PipelineGraph::find_input(const NodeDescriptor& d, const std::string& pin) {
  for (const auto& p : d.inputs) {
    if (p.name == pin) {
      return &p;
    }
    if (p.cardinality == Cardinality::kDynamic && pin.rfind(p.name + "_", 0) == 0 &&
        pin.size() > p.name.size() + 1 &&
        pin.find_first_not_of("0123456789", p.name.size() + 1) == std::string::npos) {
      return &p;
    }
  }
  return nullptr;
}

const OutputPinSpec* PipelineGraph::find_output(const NodeDescriptor& d, const std::string& pin) {
  for (const auto& p : d.outputs) {
    if (p.name == pin) {
      return &p;
    }
  }
  return nullptr;
}

const GraphNode* PipelineGraph::find(std::string_view id) const {
  const auto it = std::find_if(nodes_.begin(), nodes_.end(),
                               [&](const GraphNode& n) { return n.id == id; });
  return it == nodes_.end() ? nullptr : &*it;
}

GraphNode* PipelineGraph::find_mutable(std::string_view id) {
  return const_cast<GraphNode*>(std::as_const(*this).find(id));
}

std::vector<Status> PipelineGraph::add_node(GraphNode node) {
  std::vector<Status> errors;
  if (Status bad = check_node_id(node.id); !bad.is_ok()) {
    errors.push_back(at(bad.code(), bad.message(), node.where, node.id));
    return errors;
  }
  if (const GraphNode* existing = find(node.id); existing != nullptr) {
    errors.push_back(at(ErrorCode::kGraphError,
                        existing->where.line > 0
                            ? "duplicate node id (first defined on line " +
                                  std::to_string(existing->where.line) + ")"
                            : "duplicate node id: '" + node.id + "' already exists",
                        node.where, node.id));
    return errors;
  }
  node.descriptor = registry_->find(node.kind);
  if (node.descriptor == nullptr) {
    const std::string closest = registry_->closest_kind(node.kind);
    errors.push_back(at(ErrorCode::kUnknownKind,
                        "unknown node kind '" + node.kind + "'" +
                            (closest.empty() ? " (see `skit nodes` for the list)"
                                             : " (did you mean '" + closest + "'?)"),
                        first_placed(node.kind_where, node.where), node.id));
    return errors;
  }
  if (node.params.is_null()) {
    node.params = Json::object();
  }
  for (Status& s : node.descriptor->validate_params(node.params)) {
    const auto it = node.param_where.find(s.where().param);
    const SourceLocation& place = it != node.param_where.end()
                                      ? it->second
                                      : first_placed(node.params_where, node.where);
    errors.push_back(at(s.code(), s.message(), place, node.id, s.where().param));
  }
  // Bad params do not keep the node out: its connections are checked too, so that a document
  // or a batch gets every problem at once (either is refused whole for any of them).
  nodes_.push_back(std::move(node));
  return errors;
}

Status PipelineGraph::remove_node(const std::string& id, const SourceLocation& where) {
  const auto it = std::find_if(nodes_.begin(), nodes_.end(),
                               [&](const GraphNode& n) { return n.id == id; });
  if (it == nodes_.end()) {
    return at(ErrorCode::kNotFound, "no node '" + id + "' to remove", where, id);
  }
  nodes_.erase(it);
  std::erase_if(connections_, [&](const GraphConnection& c) {
    return c.from_node == id || c.to_node == id;
  });
  return Status::ok();
}

Status PipelineGraph::connect(GraphConnection c) {
  const GraphNode* from = find(c.from_node);
  const GraphNode* to = find(c.to_node);
  if (from == nullptr) {
    return at(ErrorCode::kGraphError, "no node '" + c.from_node + "' to connect from", c.where,
              c.to_node);
  }
  if (to == nullptr) {
    return at(ErrorCode::kGraphError, "no node '" + c.to_node + "' to connect to", c.where,
              c.to_node);
  }
  if (c.from_node == c.to_node) {
    return at(ErrorCode::kGraphError, "a node cannot need itself", c.where, c.to_node);
  }
  if (find_output(*from->descriptor, c.from_pin) == nullptr) {
    std::vector<std::string> names;
    for (const auto& p : from->descriptor->outputs) {
      names.push_back(p.name);
    }
    return at(ErrorCode::kGraphError,
              "node '" + from->id + "' (" + from->kind + ") has no output '" + c.from_pin +
                  "' (outputs: " + pin_list(names) + ")",
              c.where, c.to_node);
  }
  const InputPinSpec* in = find_input(*to->descriptor, c.to_pin);
  if (in == nullptr) {
    std::vector<std::string> names;
    for (const auto& p : to->descriptor->inputs) {
      names.push_back(p.cardinality == Cardinality::kDynamic ? p.name + "_N" : p.name);
    }
    return at(ErrorCode::kGraphError,
              to->descriptor->inputs.empty()
                  ? "kind " + to->kind + " has no inputs, so it cannot have needs"
                  : "kind " + to->kind + " has no input '" + c.to_pin + "' (inputs: " +
                        pin_list(names) + ")",
              c.where, c.to_node);
  }
  const bool taken = std::any_of(connections_.begin(), connections_.end(), [&](const auto& e) {
    return e.to_node == c.to_node && e.to_pin == c.to_pin;
  });
  if (taken) {
    return at(ErrorCode::kGraphError, "input '" + c.to_pin + "' is connected twice", c.where,
              c.to_node);
  }
  connections_.push_back(std::move(c));
  return Status::ok();
}

Status PipelineGraph::disconnect(const GraphConnection& c) {
  const auto it = std::find_if(connections_.begin(), connections_.end(), [&](const auto& e) {
    return e.from_node == c.from_node && e.from_pin == c.from_pin && e.to_node == c.to_node &&
           e.to_pin == c.to_pin;
  });
  if (it == connections_.end()) {
    return at(ErrorCode::kGraphError,
              "no connection " + c.from_node + "." + c.from_pin + " -> " + c.to_node + "." +
                  c.to_pin,
              c.where, c.to_node);
  }
  connections_.erase(it);
  return Status::ok();
}

PacketType PipelineGraph::output_type(const std::string& node, const std::string& pin) const {
  return output_type(node, pin, 0);
}

PacketType PipelineGraph::output_type(const std::string& node, const std::string& pin,
                                      int depth) const {
  const GraphNode* n = find(node);
  const OutputPinSpec* out = n != nullptr ? find_output(*n->descriptor, pin) : nullptr;
  if (out == nullptr) {
    return PacketType::any();
  }
  if (out->produces.kind != PacketKind::kPassthrough) {
    return out->produces;
  }
  if (depth > static_cast<int>(nodes_.size())) {
    return PacketType::any();  // a cycle: reported by check()
  }
  // What flows into the node: its first connected input in pin order.
  const GraphConnection* first = nullptr;
  for (const auto& c : connections_) {
    if (c.to_node == node && (first == nullptr || c.to_pin < first->to_pin)) {
      first = &c;
    }
  }
  return first != nullptr ? output_type(first->from_node, first->from_pin, depth + 1)
                          : PacketType::any();
}

std::size_t PipelineGraph::family_members(const std::string& node,
                                          const std::string& family) const {
  return static_cast<std::size_t>(
      std::count_if(connections_.begin(), connections_.end(), [&](const GraphConnection& c) {
        return c.to_node == node && c.to_pin.rfind(family + "_", 0) == 0;
      }));
}

std::vector<Status> PipelineGraph::check(const GraphCheck& rules) const {
  std::vector<Status> errors;
  // Cycles: every back edge of a depth-first search is one, reported with its path at the
  // node where the search entered it (or at the batch operation that closed it).
  std::map<std::string, int> color;  // 0 white, 1 grey, 2 black
  std::vector<std::string> stack;
  bool cyclic = false;
  std::function<void(const std::string&)> visit = [&](const std::string& id) {
    color[id] = 1;
    stack.push_back(id);
    for (const auto& e : connections_) {
      if (e.from_node != id) {
        continue;
      }
      if (color[e.to_node] == 1) {
        std::string path;
        bool in_cycle = false;
        const SourceLocation* placed = nullptr;
        for (std::size_t i = 0; i < stack.size(); ++i) {
          in_cycle = in_cycle || stack[i] == e.to_node;
          if (in_cycle) {
            path += stack[i] + " -> ";
            // The cycle's edge out of stack[i]: prefer one a batch operation made.
            const std::string& next = i + 1 < stack.size() ? stack[i + 1] : e.to_node;
            for (const auto& c : connections_) {
              if (c.from_node == stack[i] && c.to_node == next && c.where.operation >= 0 &&
                  placed == nullptr) {
                placed = &c.where;
              }
            }
          }
        }
        const GraphNode* entered = find(e.to_node);
        errors.push_back(at(ErrorCode::kGraphError, "circular dependency: " + path + e.to_node,
                            placed != nullptr ? *placed : entered->where, e.to_node));
        cyclic = true;
        continue;  // each back edge is one cycle; keep looking for others
      }
      if (color[e.to_node] == 0) {
        visit(e.to_node);
      }
    }
    stack.pop_back();
    color[id] = 2;
  };
  for (const auto& n : nodes_) {
    if (color[n.id] == 0) {
      visit(n.id);
    }
  }
  // Types, once there is no cycle to resolve Passthrough outputs around.
  if (!cyclic) {
    for (const auto& c : connections_) {
      const GraphNode* to = find(c.to_node);
      const InputPinSpec* in = find_input(*to->descriptor, c.to_pin);
      const PacketType produced = output_type(c.from_node, c.from_pin);
      if (!can_connect_any(produced, in->accepts)) {
        errors.push_back(at(ErrorCode::kPinTypeMismatch,
                            "pin type mismatch: '" + c.from_node + "." + c.from_pin +
                                "' produces " + to_string(produced) + " but '" + c.to_node + "." +
                                c.to_pin + "' accepts " + accepts_text(in->accepts),
                            c.where, c.to_node));
      }
    }
  }
  if (rules.mode == GraphMode::kOneshot) {
    for (const auto& n : nodes_) {
      if (rules.inputs_explained.contains(n.id)) {
        continue;
      }
      for (const auto& in : n.descriptor->inputs) {
        if (!in.required) {
          continue;
        }
        const bool connected =
            std::any_of(connections_.begin(), connections_.end(), [&](const GraphConnection& c) {
              return c.to_node == n.id && find_input(*n.descriptor, c.to_pin) == &in;
            });
        if (!connected) {
          errors.push_back(at(ErrorCode::kGraphError,
                              "required input '" + in.name + "' is not connected",
                              n.where, n.id));
        }
      }
    }
  }
  return errors;
}

}  // namespace skit::supervisor
