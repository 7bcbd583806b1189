// SPDX-License-Identifier: MPL-2.0
// skit.v1.Control's schema, configuration and sample RPCs: ListNodeKinds, GetPermissions,
// GetConfig, GetPacketSchema, ListSamples, GetSample, ValidatePipeline.
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "grpc_control.hpp"
#include "skit/core/packet_type.hpp"
#include "skit/core/registry.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"

#ifndef SKIT_VERSION
#define SKIT_VERSION "0.0.0"
#endif

namespace skit::gateway {

namespace {

v1::NodeKind::Cardinality cardinality_of(Cardinality c) {
  switch (c) {
    case Cardinality::kOne: return v1::NodeKind::ONE;
    case Cardinality::kBroadcast: return v1::NodeKind::BROADCAST;
    case Cardinality::kDynamic: return v1::NodeKind::DYNAMIC;
  }
  return v1::NodeKind::CARDINALITY_UNSPECIFIED;
}

std::filesystem::path samples_dir(const ControlService& s) {
  return s.engine_.config().base_dir / s.config_.samples_dir / "oneshot";
}

void load_sample(const std::filesystem::path& file, v1::Sample* out) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  const std::string yaml = text.str();
  const auto compiled = supervisor::compile_pipeline_yaml(yaml);
  out->set_id("oneshot/" + file.stem().string());
  out->set_name(compiled.pipeline.name().empty() ? file.stem().string()
                                                 : compiled.pipeline.name());
  out->set_description(compiled.pipeline.description());
  out->set_yaml(yaml);
  out->set_mode("oneshot");
}

}  // namespace

grpc::Status ControlService::ListNodeKinds(grpc::ServerContext* ctx,
                                           const v1::ListNodeKindsRequest* /*req*/,
                                           v1::ListNodeKindsResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  if (auto denied = admit(*ctx, Permission::kListNodes, "list node kinds")) {
    return *denied;
  }
  for (const auto* d : NodeRegistry::builtin().all()) {
    v1::NodeKind* k = resp->add_node_kinds();
    k->set_kind(d->kind);
    k->set_description(d->summary);
    if (d->categories.empty()) {
      k->add_categories(d->category);
    }
    for (const auto& c : d->categories) {
      k->add_categories(c);
    }
    k->set_param_schema_json(d->params != nullptr ? d->params->json_schema().dump() : "{}");
    for (const auto& p : d->inputs) {
      auto* in = k->add_inputs();
      in->set_name(p.name);
      for (const auto& t : p.accepts) {
        in->add_accepts_types(to_string(t));
      }
      in->set_cardinality(cardinality_of(p.cardinality));
      in->set_required(p.required);
    }
    for (const auto& p : d->outputs) {
      auto* out = k->add_outputs();
      out->set_name(p.name);
      out->set_produces_type(to_string(p.produces));
      out->set_cardinality(cardinality_of(p.cardinality));
    }
    k->set_execution(d->execution == NodeExecution::kHost ? v1::NodeKind::HOST
                                                          : v1::NodeKind::WORKER);
    k->set_bidirectional(d->to_json().value("bidirectional", false));
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::GetPermissions(grpc::ServerContext* ctx,
                                            const v1::GetPermissionsRequest* /*req*/,
                                            v1::GetPermissionsResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  Caller caller;  // without auth: admin
  if (auto denied = admit(*ctx, std::nullopt, "read permissions", &caller)) {
    return *denied;
  }
  resp->set_role(std::string(role_name(caller.role)));
  const nlohmann::json permissions = permissions_of(caller.role);
  for (const auto& [name, allowed] : permissions.items()) {
    (*resp->mutable_permissions())[name] = allowed.get<bool>();
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::GetConfig(grpc::ServerContext* ctx,
                                       const v1::GetConfigRequest* /*req*/,
                                       v1::GetConfigResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  if (auto denied = admit(*ctx, std::nullopt, "read the config")) {
    return *denied;
  }
  resp->set_version(SKIT_VERSION);
  resp->set_placement(std::string(supervisor::placement_name(engine_.config().placement)));
  resp->set_max_body_bytes(config_.max_body_bytes);
  resp->set_max_config_bytes(config_.max_config_bytes);
  resp->set_max_concurrent_oneshots(
      static_cast<std::uint32_t>(engine_.config().max_concurrent_oneshots));
  resp->set_request_timeout_ms(static_cast<std::uint64_t>(config_.request_timeout.count()));
  resp->set_max_sessions(static_cast<std::uint32_t>(sessions_.config().max_sessions));
  resp->set_max_nodes_per_session(
      static_cast<std::uint32_t>(sessions_.config().max_nodes_per_session));
  resp->set_grpc_streams_per_connection(
      static_cast<std::uint32_t>(config_.grpc_streams_per_connection));
  resp->set_grpc_streams_per_token(static_cast<std::uint32_t>(config_.grpc_streams_per_token));
  resp->set_grpc_max_streams(static_cast<std::uint32_t>(config_.grpc_max_streams));
  return grpc::Status::OK;
}

grpc::Status ControlService::GetPacketSchema(grpc::ServerContext* ctx,
                                             const v1::GetPacketSchemaRequest* /*req*/,
                                             v1::GetPacketSchemaResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  if (auto denied = admit(*ctx, std::nullopt, "read the packet schema")) {
    return *denied;
  }
  const auto converted = google::protobuf::util::JsonStringToMessage(packet_schema_json().dump(),
                                                                     resp->mutable_schema());
  if (!converted.ok()) {
    return rpc_error(*ctx, grpc::StatusCode::INTERNAL, "internal",
                     "the packet schema does not convert: " + converted.ToString());
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::ListSamples(grpc::ServerContext* ctx,
                                         const v1::ListSamplesRequest* /*req*/,
                                         v1::ListSamplesResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  if (auto denied = admit(*ctx, Permission::kListSamples, "list samples")) {
    return *denied;
  }
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(samples_dir(*this), ec)) {
    if (e.path().extension() == ".yml" || e.path().extension() == ".yaml") {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    load_sample(f, resp->add_samples());
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::GetSample(grpc::ServerContext* ctx, const v1::GetSampleRequest* req,
                                       v1::Sample* resp) {
  const HealthState::UnaryGuard busy(health_);
  if (auto denied = admit(*ctx, Permission::kReadSamples, "read samples")) {
    return *denied;
  }
  std::string id = req->id();
  if (id.rfind("oneshot/", 0) == 0) {
    id = id.substr(8);
  }
  if (id.empty() || id.find('/') != std::string::npos || id.find("..") != std::string::npos) {
    return rpc_error(*ctx, grpc::StatusCode::INVALID_ARGUMENT, "invalid_argument",
                     "bad sample id '" + req->id() + "'");
  }
  for (const char* ext : {".yml", ".yaml"}) {
    if (std::filesystem::exists(samples_dir(*this) / (id + ext))) {
      load_sample(samples_dir(*this) / (id + ext), resp);
      return grpc::Status::OK;
    }
  }
  return rpc_error(*ctx, grpc::StatusCode::NOT_FOUND, "not_found",
                   "no oneshot sample '" + req->id() + "'");
}

grpc::Status ControlService::ValidatePipeline(grpc::ServerContext* ctx,
                                              const v1::ValidatePipelineRequest* req,
                                              v1::ValidatePipelineResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  if (auto denied = admit(*ctx, std::nullopt, "validate pipelines")) {
    return *denied;
  }
  const std::string& yaml = req->pipeline_yaml();
  if (yaml.size() > config_.max_config_bytes) {
    return config_too_large(*ctx, yaml.size());
  }
  bool has_media = req->has_media();
  if (!req->has_has_media()) {
    // Whatever the pipeline reads: media when it has a streamkit::http_input.
    auto plain = supervisor::compile_pipeline_yaml(yaml);
    if (!plain.ok()) {
      return compile_error(*ctx, plain.errors, "pipeline_yaml");
    }
    const auto& nodes = plain.pipeline.nodes();
    has_media = std::any_of(nodes.begin(), nodes.end(), [](const v1::NodeSpec& n) {
      return n.kind() == "streamkit::http_input";
    });
  }
  auto compiled = engine_.compile_oneshot(yaml, has_media);
  if (!compiled.ok()) {
    return compile_error(*ctx, compiled.errors, "pipeline_yaml");
  }
  *resp->mutable_pipeline() = std::move(compiled.pipeline);
  return grpc::Status::OK;
}

}  // namespace skit::gateway
