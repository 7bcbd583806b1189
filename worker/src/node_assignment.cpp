// SPDX-License-Identifier: MPL-2.0
#include "node_assignment.hpp"

#include "skit/core/registry.hpp"
#include "skit/plugins/plugin_kinds.hpp"

namespace skit::worker {

Result<std::unique_ptr<runtime::NodeRunner>> make_runner(const v1::NodeAssignment& n,
                                                         const v1::Assign& assign,
                                                         runtime::PoolTable& pools,
                                                         runtime::EventSink& events) {
  const NodeDescriptor* d = NodeRegistry::builtin().find(n.kind());
  std::optional<NodeDescriptor> plugin;
  if (!n.plugin_library().empty()) {
    Json metadata = Json::parse(n.plugin_metadata_json(), nullptr, /*allow_exceptions=*/false);
    auto described = plugins::native_descriptor(metadata, n.plugin_library(), std::nullopt);
    if (!described) {
      Status err = described.status();
      err.where().node_id = n.node_id();
      return err;
    }
    plugin = std::move(described).value();
    d = &*plugin;
  }
  if (d == nullptr) {
    return Status(ErrorCode::kUnknownKind, "unknown kind " + n.kind(), {.node_id = n.node_id()});
  }
  Json params;
  try {
    params = Json::parse(n.params_json());
  } catch (const Json::exception& e) {
    return Status(ErrorCode::kInvalidParam, e.what(), {.node_id = n.node_id()});
  }
  auto node = d->create(params);
  if (!node) {
    Status err = node.status();
    err.where().node_id = n.node_id();
    return err;
  }
  runtime::RunnerSpec spec;
  spec.node_id = n.node_id();
  spec.kind = n.kind();
  spec.doorbell = n.doorbell();
  spec.pulls_input = d->pulls_input;
  spec.accepts_input = !d->inputs.empty();
  spec.confined_files = assign.sandbox().confined_files();
  for (const auto& in : n.inputs()) {
    spec.inputs.push_back({in.pin(), in.ring_segment()});
  }
  for (const auto& out : n.outputs()) {
    runtime::RunnerOutput o;
    o.pin = out.pin();
    o.pool_index = out.pool_index();
    for (const auto& declared : d->outputs) {
      o.passthrough = o.passthrough || (declared.name == out.pin() &&
                                        declared.produces.kind == PacketKind::kPassthrough);
    }
    for (const auto& r : out.ring_segments()) {
      o.ring_segments.push_back(r);
    }
    spec.outputs.push_back(std::move(o));
  }
  runtime::RunnerOptions options;
  options.dynamic = assign.dynamic();
  return std::make_unique<runtime::NodeRunner>(std::move(spec), std::move(node).value(), pools,
                                               events, options);
}

RewireBatches rewire_batches(const v1::Rewire& rewire) {
  RewireBatches batches;
  for (const auto& c : rewire.changes()) {
    runtime::RewireCommand cmd;
    cmd.type = static_cast<runtime::RewireCommand::Type>(c.type());
    cmd.pin = c.pin();
    cmd.segment_name = c.ring_segment();
    cmd.drop = c.drop();
    cmd.grace = std::chrono::milliseconds(c.grace_ms());
    if (c.type() == v1::RingChange::ATTACH_INPUT || c.type() == v1::RingChange::ATTACH_OUTPUT) {
      auto segment = ipc::SharedSegment::open(c.ring_segment());
      if (!segment) {
        batches.error += segment.status().to_string() + "; ";
        continue;
      }
      cmd.segment = std::make_unique<ipc::SharedSegment>(std::move(segment).value());
    }
    batches.by_node[c.node_id()].push_back(std::move(cmd));
  }
  return batches;
}

}  // namespace skit::worker
