// SPDX-License-Identifier: MPL-2.0
// skit.v1.Control's native plugin RPCs: ListPlugins, UploadPlugin, DeletePlugin (the same
// catalog and rules as /api/v1/plugins).
#include "grpc_control.hpp"
#include "skit/supervisor/plugins.hpp"

namespace skit::gateway {

namespace {

void fill(v1::Plugin& out, const supervisor::PluginInfo& p) {
  out.set_kind(p.kind);
  out.set_original_kind(p.original_kind);
  out.set_file_name(p.file_name);
  for (const auto& c : p.categories) {
    out.add_categories(c);
  }
  out.set_loaded_at_ms(p.loaded_at_ms);
  out.set_plugin_type(p.plugin_type);
}

grpc::Status management_disabled() {
  return {grpc::StatusCode::PERMISSION_DENIED,
          "plugin management over the API is disabled (set plugins.allow_http_management: true "
          "in the config)"};
}

}  // namespace

grpc::Status ControlService::ListPlugins(grpc::ServerContext* ctx,
                                         const v1::ListPluginsRequest* /*req*/,
                                         v1::ListPluginsResponse* resp) {
  const HealthState::UnaryGuard busy(health_);
  if (auto denied = admit(*ctx, Permission::kListNodes, "list plugins")) {
    return *denied;
  }
  for (const auto& p : engine_.plugins().list()) {
    fill(*resp->add_plugins(), p);
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::UploadPlugin(grpc::ServerContext* ctx,
                                          const v1::UploadPluginRequest* req,
                                          v1::Plugin* resp) {
  const HealthState::UnaryGuard busy(health_);
  if (!engine_.config().allow_plugin_management) {
    return management_disabled();
  }
  if (auto denied = admit(*ctx, Permission::kLoadPlugins, "load plugins")) {
    return *denied;
  }
  const std::string& bytes = req->library();
  auto info = engine_.plugins().install(
      req->file_name(), {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()});
  if (!info) {
    return session_error(*ctx, info.status(), "library");
  }
  fill(*resp, *info);
  return grpc::Status::OK;
}

grpc::Status ControlService::DeletePlugin(grpc::ServerContext* ctx,
                                          const v1::DeletePluginRequest* req,
                                          v1::DeletePluginResponse* /*resp*/) {
  const HealthState::UnaryGuard busy(health_);
  if (!engine_.config().allow_plugin_management) {
    return management_disabled();
  }
  if (auto denied = admit(*ctx, Permission::kDeletePlugins, "delete plugins")) {
    return *denied;
  }
  Status st = engine_.plugins().unload(req->kind(), !req->keep_file());
  if (!st.is_ok()) {
    return session_error(*ctx, st, "kind");
  }
  return grpc::Status::OK;
}

}  // namespace skit::gateway
