// SPDX-License-Identifier: MPL-2.0
#include "skit/supervisor/pipeline_compiler.hpp"

#include "skit/supervisor/graph.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace skit::supervisor {

namespace {

struct Position {
  int line = 0;
  int column = 0;
};

Position position_of(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) {
    return {};
  }
  return {mark.line + 1, mark.column + 1};
}

/// A scalar's JSON value: quoted scalars stay strings; plain ones become bool/int/float/null.
Json scalar_to_json(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") {
    return text;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return nullptr;
  }
  // Plain decimal numbers (and 0x hex) only: words such as "nan" or "inf" stay strings, as
  // YAML reads them (its floats are spelled .nan and .inf, which JSON cannot carry anyway).
  const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  if (!hex && (text.find_first_not_of("0123456789+-.eE") != std::string::npos ||
               text.find_first_of("0123456789") == std::string::npos)) {
    return text;
  }
  {
    std::size_t used = 0;
    try {
      const long long v = std::stoll(text, &used, hex ? 16 : 10);
      if (used == text.size()) {
        return v;
      }
    } catch (const std::exception&) {
    }
  }
  if (!hex) {
    std::size_t used = 0;
    try {
      const double v = std::stod(text, &used);
      if (used == text.size()) {
        return v;
      }
    } catch (const std::exception&) {
    }
  }
  return text;
}

Json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return scalar_to_json(node);
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) {
        out.push_back(yaml_to_json(item));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : node) {
        out[kv.first.Scalar()] = yaml_to_json(kv.second);
      }
      return out;
    }
    default: return nullptr;
  }
}

struct PendingNeed {
  std::string from_node;
  std::string from_pin = "out";
  std::string to_pin;  // empty: derived from the form of `needs`
  ConnectionMode mode = ConnectionMode::kReliable;
  Position where;
};

struct PendingNode {
  std::string id;
  std::string kind;
  Json params;
  std::map<std::string, Position> param_positions;
  Position where;
  Position kind_where;
  Position params_where;
  bool dedicated = false;
  bool broken_needs = false;  // a needs entry was rejected while parsing
  std::vector<PendingNeed> needs;
  const NodeDescriptor* descriptor = nullptr;
  bool in_graph = false;  // in the graph model (a valid id and a known kind)
};

class Compiler {
 public:
  explicit Compiler(const NodeRegistry& registry) : registry_(registry) {}

  CompiledPipeline compile(std::string_view text) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      error(ErrorCode::kInvalidArgument, "YAML syntax error: " + e.msg,
            {e.mark.line + 1, e.mark.column + 1});
      return finish();
    }
    if (!root.IsMap()) {
      error(ErrorCode::kInvalidArgument,
            root.IsNull() ? "the document is empty" : "the document must be a mapping",
            position_of(root));
      return finish();
    }
    parse_top(root);
    if (!errors_.empty() && nodes_.empty()) {
      return finish();
    }
    check_nodes();
    build_connections();
    check_graph();
    if (errors_.empty()) {
      emit();
    }
    return finish();
  }

 private:
  void error(ErrorCode code, std::string message, Position where, std::string node_id = {},
             std::string param = {}) {
    errors_.emplace_back(code, std::move(message),
                         SourceLocation{std::move(node_id), std::move(param), where.line,
                                        where.column});
  }

  void parse_top(const YAML::Node& root) {
    static const std::set<std::string> kKnown = {"name",    "description", "mode",
                                                 "steps",   "nodes",       "client",
                                                 "group",   "variant",     "category",
                                                 "tags",    "keywords"};
    std::set<std::string> seen_keys;
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      if (!seen_keys.insert(key).second) {
        error(ErrorCode::kInvalidArgument, "key '" + key + "' given twice",
              position_of(kv.first));
      }
      if (!kKnown.contains(key)) {
        error(ErrorCode::kInvalidArgument,
              "unknown top-level key '" + key +
                  "' (expected name, description, mode, steps or nodes)",
              position_of(kv.first));
      }
    }
    if (auto name = root["name"]) {
      out_.pipeline.set_name(name.IsScalar() ? name.Scalar() : "");
    }
    if (auto desc = root["description"]) {
      out_.pipeline.set_description(desc.IsScalar() ? desc.Scalar() : "");
    }
    out_.pipeline.set_mode(v1::PIPELINE_MODE_DYNAMIC);  // StreamKit's default
    if (auto mode = root["mode"]) {
      const std::string m = mode.IsScalar() ? mode.Scalar() : "";
      if (m == "oneshot") {
        out_.pipeline.set_mode(v1::PIPELINE_MODE_ONESHOT);
      } else if (m != "dynamic") {
        error(ErrorCode::kInvalidArgument, "mode must be 'oneshot' or 'dynamic' (got '" + m + "')",
              position_of(mode));
      }
    }
    const YAML::Node steps = root["steps"];
    const YAML::Node nodes = root["nodes"];
    if (steps && nodes) {
      error(ErrorCode::kInvalidArgument, "use either 'steps' or 'nodes', not both",
            position_of(nodes));
    } else if (steps) {
      parse_steps(steps);
    } else if (nodes) {
      parse_nodes(nodes);
    } else {
      error(ErrorCode::kInvalidArgument, "the pipeline has neither 'steps' nor 'nodes'",
            position_of(root));
    }
  }

  void parse_node_body(PendingNode& node, const YAML::Node& body, bool allow_needs) {
    if (!body.IsMap()) {
      // An empty body has no position of its own: point at the node's key.
      error(ErrorCode::kInvalidArgument, "a node must be a mapping with 'kind'",
            body.IsNull() ? node.where : position_of(body), node.id);
      return;
    }
    std::set<std::string> seen_keys;
    for (const auto& kv : body) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& value = kv.second;
      if (!seen_keys.insert(key).second) {
        error(ErrorCode::kInvalidArgument, "'" + key + "' given twice", position_of(kv.first),
              node.id);
        continue;
      }
      if (key == "kind") {
        node.kind = value.IsScalar() ? value.Scalar() : "";
        node.kind_where = position_of(value);
      } else if (key == "params") {
        node.params_where = position_of(value);
        if (value.IsNull()) {
          continue;
        }
        if (!value.IsMap()) {
          error(ErrorCode::kInvalidParam, "params must be a mapping", position_of(value),
                node.id);
          continue;
        }
        node.params = Json::object();
        for (const auto& p : value) {
          const std::string pname = p.first.Scalar();
          if (node.params.contains(pname)) {
            error(ErrorCode::kInvalidParam, "param given twice", position_of(p.first), node.id,
                  pname);
          }
          node.params[pname] = yaml_to_json(p.second);
          node.param_positions[pname] = position_of(p.first);
        }
      } else if (key == "needs" && allow_needs) {
        const auto errors_before = errors_.size();
        parse_needs(node, value);
        node.broken_needs = errors_.size() != errors_before;
      } else if (key == "isolation") {
        const std::string v = value.IsScalar() ? value.Scalar() : "";
        if (v == "dedicated") {
          node.dedicated = true;
        } else if (v != "default") {
          error(ErrorCode::kInvalidArgument,
                "isolation must be 'dedicated' or 'default' (got '" + v + "')",
                position_of(value), node.id);
        }
      } else {
        error(ErrorCode::kInvalidArgument,
              "unknown key '" + key + "' (a node takes kind, params" +
                  (allow_needs ? ", needs" : "") + " and isolation)",
              position_of(kv.first), node.id);
      }
    }
    if (node.kind.empty() && seen_keys.count("kind") == 0) {
      error(ErrorCode::kInvalidArgument, "node has no 'kind'", node.where, node.id);
    }
  }

  void parse_steps(const YAML::Node& steps) {
    if (!steps.IsSequence() || steps.size() == 0) {
      error(ErrorCode::kInvalidArgument, "'steps' must be a non-empty list", position_of(steps));
      return;
    }
    for (std::size_t i = 0; i < steps.size(); ++i) {
      PendingNode node;
      node.id = "step_" + std::to_string(i);
      node.where = position_of(steps[i]);
      parse_node_body(node, steps[i], /*allow_needs=*/false);
      if (i > 0) {
        node.needs.push_back(PendingNeed{.from_node = "step_" + std::to_string(i - 1),
                                         .to_pin = "in",
                                         .where = node.where});
      }
      nodes_.push_back(std::move(node));
    }
  }

  void parse_nodes(const YAML::Node& nodes) {
    // A dynamic pipeline may start empty (StreamKit's `nodes: {}`): a session whose nodes are
    // added later. A oneshot one has nothing to run.
    const bool dynamic = out_.pipeline.mode() == v1::PIPELINE_MODE_DYNAMIC;
    if (nodes.IsMap() && nodes.size() == 0 && dynamic) {
      return;
    }
    if (!nodes.IsMap() || nodes.size() == 0) {
      error(ErrorCode::kInvalidArgument,
            dynamic ? "'nodes' must be a mapping of id -> node"
                    : "'nodes' must be a non-empty mapping of id -> node",
            position_of(nodes));
      return;
    }
    std::map<std::string, Position> seen;
    for (const auto& kv : nodes) {
      PendingNode node;
      node.id = kv.first.Scalar();
      node.where = position_of(kv.first);
      if (auto [it, fresh] = seen.emplace(node.id, node.where); !fresh) {
        error(ErrorCode::kGraphError,
              "duplicate node id (first defined on line " + std::to_string(it->second.line) + ")",
              node.where, node.id);
        continue;
      }
      parse_node_body(node, kv.second, /*allow_needs=*/true);
      nodes_.push_back(std::move(node));
    }
  }

  /// "node" or "node.pin" -> need (the pin after the first dot).
  PendingNeed need_from_ref(const std::string& ref, Position where) {
    PendingNeed need;
    const auto dot = ref.find('.');
    need.from_node = ref.substr(0, dot);
    if (dot != std::string::npos) {
      need.from_pin = ref.substr(dot + 1);
    }
    need.where = where;
    return need;
  }

  bool parse_need_object(PendingNode& node, const YAML::Node& obj, PendingNeed& need) {
    const YAML::Node target = obj["node"];
    if (!target || !target.IsScalar()) {
      error(ErrorCode::kInvalidArgument, "a needs entry must name a 'node'", position_of(obj),
            node.id);
      return false;
    }
    need = need_from_ref(target.Scalar(), position_of(target));
    for (const auto& kv : obj) {
      const std::string key = kv.first.Scalar();
      if (key == "node") {
        continue;
      }
      if (key != "mode") {
        error(ErrorCode::kInvalidArgument, "unknown key '" + key + "' in needs (node, mode)",
              position_of(kv.first), node.id);
        return false;
      }
      const std::string mode = kv.second.IsScalar() ? kv.second.Scalar() : "";
      if (mode == "best_effort") {
        need.mode = ConnectionMode::kBestEffort;
      } else if (mode != "reliable") {
        error(ErrorCode::kInvalidArgument,
              "connection mode must be 'reliable' or 'best_effort' (got '" + mode + "')",
              position_of(kv.second), node.id);
        return false;
      }
    }
    return true;
  }

  void parse_needs(PendingNode& node, const YAML::Node& needs) {
    if (needs.IsNull()) {
      return;
    }
    if (needs.IsScalar()) {
      auto need = need_from_ref(needs.Scalar(), position_of(needs));
      need.to_pin = "in";
      node.needs.push_back(need);
      return;
    }
    if (needs.IsSequence()) {
      for (std::size_t i = 0; i < needs.size(); ++i) {
        const YAML::Node& item = needs[i];
        PendingNeed need;
        if (item.IsScalar()) {
          need = need_from_ref(item.Scalar(), position_of(item));
        } else if (item.IsMap()) {
          if (!parse_need_object(node, item, need)) {
            continue;
          }
        } else {
          error(ErrorCode::kInvalidArgument, "a needs entry must be a node id or {node, mode}",
                position_of(item), node.id);
          continue;
        }
        need.to_pin = "in_" + std::to_string(i);
        node.needs.push_back(need);
      }
      // A one-entry list on a single-input node means that input.
      if (needs.size() == 1 && node.needs.size() == 1) {
        node.needs[0].to_pin = "";
      }
      return;
    }
    if (needs.IsMap()) {
      if (needs["node"]) {
        PendingNeed need;
        if (parse_need_object(node, needs, need)) {
          need.to_pin = "in";
          node.needs.push_back(need);
        }
        return;
      }
      for (const auto& kv : needs) {  // {target_pin: source}
        if (!kv.second.IsScalar()) {
          error(ErrorCode::kInvalidArgument, "a pin-keyed needs entry must name a node",
                position_of(kv.second), node.id);
          continue;
        }
        auto need = need_from_ref(kv.second.Scalar(), position_of(kv.second));
        need.to_pin = kv.first.Scalar();
        node.needs.push_back(need);
      }
      return;
    }
    error(ErrorCode::kInvalidArgument, "needs must be a node id, a list or a mapping",
          position_of(needs), node.id);
  }

  static SourceLocation loc(Position p) { return SourceLocation{"", "", p.line, p.column}; }

  /// Every node joins the graph model, which checks its id, kind and params.
  void check_nodes() {
    for (auto& node : nodes_) {
      index_[node.id] = &node;
      if (node.kind.empty()) {
        continue;  // reported while parsing
      }
      GraphNode g;
      g.id = node.id;
      g.kind = node.kind;
      g.params = node.params.is_null() ? Json::object() : node.params;
      g.dedicated = node.dedicated;
      g.where = loc(node.where);
      g.kind_where = loc(node.kind_where);
      g.params_where = loc(node.params_where);
      for (const auto& [name, where] : node.param_positions) {
        g.param_where[name] = loc(where);
      }
      for (Status& s : graph_.add_node(std::move(g))) {
        errors_.push_back(std::move(s));
      }
      const GraphNode* added = graph_.find(node.id);
      node.descriptor = added != nullptr ? added->descriptor : nullptr;
      node.in_graph = added != nullptr;
    }
  }

  /// Every `needs` entry becomes a connection of the graph model, which checks its pins.
  void build_connections() {
    for (auto& node : nodes_) {
      bool all_connected = !node.broken_needs;
      for (auto& need : node.needs) {
        auto it = index_.find(need.from_node);
        if (it == index_.end()) {
          error(ErrorCode::kGraphError,
                "needs '" + need.from_node + "', which is not a node of this pipeline",
                need.where, node.id);
          all_connected = false;
          continue;
        }
        const PendingNode& from = *it->second;
        if (!node.in_graph || !from.in_graph) {
          all_connected = false;
          continue;  // already reported (unknown kind, bad id)
        }
        std::string to_pin = need.to_pin.empty() ? "in" : need.to_pin;
        if (const InputPinSpec* family = PipelineGraph::find_input(*node.descriptor, to_pin);
            family != nullptr && family->cardinality == Cardinality::kDynamic &&
            to_pin == family->name) {
          to_pin += "_0";  // a single need on a dynamic family is its first member
        }
        Status s = graph_.connect(GraphConnection{need.from_node, need.from_pin, node.id, to_pin,
                                                  need.mode, loc(need.where)});
        if (!s.is_ok()) {
          errors_.push_back(std::move(s));
          all_connected = false;
        }
      }
      if (!all_connected) {
        explained_.insert(node.id);  // its missing inputs are explained already
      }
    }
  }

  /// The whole-graph rules: cycles, types through Passthrough, required inputs (oneshot).
  void check_graph() {
    GraphCheck rules;
    rules.mode = out_.pipeline.mode() == v1::PIPELINE_MODE_DYNAMIC ? GraphMode::kDynamic
                                                                   : GraphMode::kOneshot;
    rules.inputs_explained = explained_;
    for (Status& s : graph_.check(rules)) {
      if (s.message().rfind("required input", 0) == 0) {
        s = Status(s.code(), s.message() + " (add 'needs: <node id>')", s.where());
      }
      errors_.push_back(std::move(s));
    }
  }

  void emit() {
    const bool oneshot = out_.pipeline.mode() != v1::PIPELINE_MODE_DYNAMIC;
    for (const GraphNode& node : graph_.nodes()) {
      Json params = node.params;
      // A kind that sizes itself by its input family (the mixer's num_inputs, as StreamKit's
      // compiler does) is told the count in a oneshot pipeline, so it never waits to learn it.
      const NodeDescriptor& d = *node.descriptor;
      if (oneshot && !d.input_count_param.empty() &&
          (!params.contains(d.input_count_param) || params[d.input_count_param].is_null())) {
        std::size_t count = 0;
        for (const auto& in : d.inputs) {
          count += in.cardinality == Cardinality::kDynamic ? graph_.family_members(node.id, in.name) : 0;
        }
        if (count >= 2) {
          params[d.input_count_param] = count;
        }
      }
      auto* spec = out_.pipeline.add_nodes();
      spec->set_id(node.id);
      spec->set_kind(node.kind);
      spec->set_params_json(params.dump());
      spec->set_isolation(node.dedicated ? v1::ISOLATION_DEDICATED : v1::ISOLATION_DEFAULT);
      spec->mutable_position()->set_line(node.where.line);
      spec->mutable_position()->set_column(node.where.column);
    }
    for (const auto& e : graph_.connections()) {
      auto* c = out_.pipeline.add_connections();
      c->set_from_node(e.from_node);
      c->set_from_pin(e.from_pin);
      c->set_to_node(e.to_node);
      c->set_to_pin(e.to_pin);
      c->set_mode(e.mode == ConnectionMode::kBestEffort ? v1::CONNECTION_MODE_BEST_EFFORT
                                                        : v1::CONNECTION_MODE_RELIABLE);
      c->mutable_position()->set_line(e.where.line);
      c->mutable_position()->set_column(e.where.column);
    }
  }

  CompiledPipeline finish() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const Status& a, const Status& b) {
      return std::pair(a.where().line, a.where().column) <
             std::pair(b.where().line, b.where().column);
    });
    out_.errors = std::move(errors_);
    return std::move(out_);
  }

  const NodeRegistry& registry_;
  PipelineGraph graph_{registry_};
  CompiledPipeline out_;
  std::vector<Status> errors_;
  std::vector<PendingNode> nodes_;
  std::map<std::string, PendingNode*> index_;
  std::set<std::string> explained_;
};

}  // namespace

std::string format_diagnostic(std::string_view source, const Status& s,
                              std::string_view severity) {
  std::ostringstream out;
  if (!source.empty()) {
    out << source << ':';
    if (s.where().line > 0) {
      out << s.where().line << ':' << s.where().column << ':';
    }
    out << ' ';
    Status copy = s;
    copy.where().line = 0;
    out << severity << ": " << copy.to_string();
  } else {
    out << severity << ": " << s.to_string();
  }
  return out.str();
}

std::string CompiledPipeline::error_report(std::string_view source) const {
  std::string out;
  for (const auto& e : errors) {
    out += format_diagnostic(source, e, "error") + "\n";
  }
  return out;
}

CompiledPipeline compile_pipeline_yaml(std::string_view yaml, const NodeRegistry& registry) {
  return Compiler(registry).compile(yaml);
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(ErrorCode::kNotFound, "cannot read '" + path + "'");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace skit::supervisor
