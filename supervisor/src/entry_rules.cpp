// SPDX-License-Identifier: MPL-2.0
#include "skit/supervisor/entry_rules.hpp"

#include <set>
#include <string>

#include "skit/core/registry.hpp"
#include "skit/supervisor/graph.hpp"

namespace skit::supervisor {

namespace {
constexpr std::string_view kHttpInput = "streamkit::http_input";
constexpr std::string_view kHttpOutput = "streamkit::http_output";

Status at(const v1::NodeSpec* node, std::string message) {
  SourceLocation where;
  if (node != nullptr) {
    where.node_id = node->id();
    where.line = node->position().line();
    where.column = node->position().column();
  }
  return Status(ErrorCode::kInvalidArgument, std::move(message), where);
}

/// A node that reads a file or downloads a URL named by one of its params (a source without
/// an upload).
bool reads_media(const NodeDescriptor& d) {
  if (d.params == nullptr) {
    return false;
  }
  for (const auto& f : d.params->fields()) {
    if (f.file_access == FileAccess::kRead || f.fetch_url) {
      return true;
    }
  }
  return false;
}

struct Markers {
  std::vector<const v1::NodeSpec*> inputs;
  std::vector<const v1::NodeSpec*> outputs;
  std::vector<const v1::NodeSpec*> host_nodes;
  int file_sources = 0;
};

Markers markers_of(const v1::Pipeline& p) {
  Markers m;
  const auto& registry = NodeRegistry::builtin();
  for (const auto& n : p.nodes()) {
    if (n.kind() == kHttpInput) {
      m.inputs.push_back(&n);
    } else if (n.kind() == kHttpOutput) {
      m.outputs.push_back(&n);
    }
    const NodeDescriptor* d = registry.find(n.kind());
    if (d != nullptr && d->execution == NodeExecution::kHost) {
      m.host_nodes.push_back(&n);
    }
    m.file_sources += d != nullptr && reads_media(*d) ? 1 : 0;
  }
  return m;
}
}  // namespace

std::string_view entry_point_name(EntryPoint entry) {
  switch (entry) {
    case EntryPoint::kProcess: return "POST /api/v1/process";
    case EntryPoint::kRun: return "skit run";
    case EntryPoint::kSession: return "a session";
  }
  return "?";
}

std::vector<Status> check_entry(const v1::Pipeline& pipeline, EntryPoint entry, EntryIo io) {
  const Markers m = markers_of(pipeline);
  std::vector<Status> errors;
  const v1::NodeSpec* first_in = m.inputs.empty() ? nullptr : m.inputs.front();
  const v1::NodeSpec* second_in = m.inputs.size() > 1 ? m.inputs[1] : nullptr;
  switch (entry) {
    case EntryPoint::kProcess:
      if (io.has_input && m.inputs.empty()) {
        errors.push_back(at(nullptr, "the request carries media but the pipeline has no "
                                     "streamkit::http_input to receive it"));
      }
      if (!io.has_input && first_in != nullptr) {
        errors.push_back(
            at(first_in, "the pipeline reads streamkit::http_input but the request carries no media"));
      }
      if (!io.has_input && m.inputs.empty() && m.file_sources == 0) {
        errors.push_back(at(nullptr, "a oneshot pipeline without media needs a source that "
                                     "reads a file or a URL (core::file_reader, "
                                     "transport::http::fetcher)"));
      }
      if (second_in != nullptr) {
        errors.push_back(at(second_in, "a oneshot pipeline takes at most one streamkit::http_input"));
      }
      if (m.outputs.size() != 1) {
        errors.push_back(at(m.outputs.size() > 1 ? m.outputs[1] : nullptr,
                            "a oneshot pipeline needs exactly one streamkit::http_output (found " +
                                std::to_string(m.outputs.size()) + ")"));
      }
      break;
    case EntryPoint::kRun:
      if (second_in != nullptr) {
        errors.push_back(at(second_in, "skit run feeds one streamkit::http_input from --input; "
                                       "this pipeline has " +
                                           std::to_string(m.inputs.size())));
      }
      if (m.outputs.size() > 1) {
        errors.push_back(at(m.outputs[1], "skit run writes one streamkit::http_output to --output; "
                                          "this pipeline has " +
                                              std::to_string(m.outputs.size())));
      }
      if (first_in != nullptr && !io.has_input) {
        errors.push_back(at(first_in, "the pipeline reads streamkit::http_input: pass --input "
                                      "FILE (or - for stdin)"));
      }
      if (first_in == nullptr && io.has_input) {
        errors.push_back(at(nullptr, "--input was given but the pipeline has no "
                                     "streamkit::http_input to read it"));
      }
      if (!m.outputs.empty() && !io.has_output) {
        errors.push_back(at(m.outputs.front(), "the pipeline writes streamkit::http_output: "
                                               "pass --output FILE (or - for stdout)"));
      }
      if (m.outputs.empty() && io.has_output) {
        errors.push_back(at(nullptr, "--output was given but the pipeline has no "
                                     "streamkit::http_output to write it"));
      }
      break;
    case EntryPoint::kSession:
      for (const auto* n : m.host_nodes) {
        errors.push_back(at(n, n->kind() + " carries an HTTP request body or response; it only "
                                           "works in oneshot pipelines, not in sessions"));
      }
      break;
  }
  if (entry != EntryPoint::kSession) {
    // Running to completion needs every required input connected, whatever the document's
    // mode says (a session may connect them later).
    GraphCheck rules;
    rules.mode = GraphMode::kOneshot;
    for (Status& s : PipelineGraph::of(pipeline).check(rules)) {
      if (s.message().rfind("required input", 0) == 0) {
        errors.push_back(std::move(s));
      }
    }
  }
  return errors;
}

std::vector<Status> unconnected_outputs(const v1::Pipeline& pipeline) {
  std::set<std::pair<std::string, std::string>> used;
  for (const auto& c : pipeline.connections()) {
    used.emplace(c.from_node(), c.from_pin());
  }
  std::vector<Status> warnings;
  const auto& registry = NodeRegistry::builtin();
  for (const auto& n : pipeline.nodes()) {
    const NodeDescriptor* d = registry.find(n.kind());
    if (d == nullptr) {
      continue;
    }
    for (const auto& out : d->outputs) {
      if (!used.contains({n.id(), out.name})) {
        warnings.push_back(at(&n, "output '" + out.name + "' leads nowhere: its packets are "
                                                          "dropped (connect it, or end the "
                                                          "branch with core::sink)"));
      }
    }
  }
  return warnings;
}

}  // namespace skit::supervisor
