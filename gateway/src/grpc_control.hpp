// SPDX-License-Identifier: MPL-2.0
// skit.v1.Control, declared once and defined by family: oneshot processing (Process:
// grpc_oneshot.cpp), sessions and their events (grpc_sessions.cpp), schemas, configuration and
// samples (grpc_schema.cpp). The unary RPCs run on gRPC's synchronous handler threads (they
// are short); the long-lived streams, Process and WatchEvents, on the callback API, so that an
// open stream holds no thread. Long-lived streams count against the per-connection and
// per-token caps (grpc_infra.hpp); every call is authenticated by the HTTP gateway's bearer
// tokens and authorized by its role's permissions (authorization.hpp).
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_callback.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "authorization.hpp"
#include "grpc_infra.hpp"
#include "skit/gateway/config.hpp"
#include "skit/supervisor/engine.hpp"
#include "skit/supervisor/sessions.hpp"
#include "skit/v1/control.grpc.pb.h"

namespace skit::gateway {

using ControlBase = v1::Control::WithCallbackMethod_Process<
    v1::Control::WithCallbackMethod_WatchEvents<v1::Control::Service>>;

class ControlService final : public ControlBase {
 public:
  ControlService(const ServerConfig& config, supervisor::Engine& engine,
                 supervisor::SessionManager& sessions, const Authenticator& auth,
                 StreamLimiter& limiter, CallRegistry& calls, HealthState& health)
      : config_(config), engine_(engine), sessions_(sessions), auth_(auth), limiter_(limiter),
        calls_(calls), health_(health) {}

  // Oneshot processing (grpc_oneshot.cpp).
  grpc::ServerBidiReactor<v1::ProcessRequest, v1::ProcessResponse>* Process(
      grpc::CallbackServerContext* ctx) override;

  // Schemas, configuration, samples, validation (grpc_schema.cpp).
  grpc::Status ListNodeKinds(grpc::ServerContext* ctx, const v1::ListNodeKindsRequest* req,
                             v1::ListNodeKindsResponse* resp) override;
  grpc::Status GetPermissions(grpc::ServerContext* ctx, const v1::GetPermissionsRequest* req,
                              v1::GetPermissionsResponse* resp) override;
  grpc::Status GetConfig(grpc::ServerContext* ctx, const v1::GetConfigRequest* req,
                         v1::GetConfigResponse* resp) override;
  grpc::Status GetPacketSchema(grpc::ServerContext* ctx, const v1::GetPacketSchemaRequest* req,
                               v1::GetPacketSchemaResponse* resp) override;
  grpc::Status ListSamples(grpc::ServerContext* ctx, const v1::ListSamplesRequest* req,
                           v1::ListSamplesResponse* resp) override;
  grpc::Status GetSample(grpc::ServerContext* ctx, const v1::GetSampleRequest* req,
                         v1::Sample* resp) override;
  grpc::Status ListPlugins(grpc::ServerContext* ctx, const v1::ListPluginsRequest* req,
                           v1::ListPluginsResponse* resp) override;
  grpc::Status UploadPlugin(grpc::ServerContext* ctx, const v1::UploadPluginRequest* req,
                            v1::Plugin* resp) override;
  grpc::Status DeletePlugin(grpc::ServerContext* ctx, const v1::DeletePluginRequest* req,
                            v1::DeletePluginResponse* resp) override;
  grpc::Status ValidatePipeline(grpc::ServerContext* ctx, const v1::ValidatePipelineRequest* req,
                                v1::ValidatePipelineResponse* resp) override;

  // Sessions and their events (grpc_sessions.cpp).
  grpc::Status CreateSession(grpc::ServerContext* ctx, const v1::CreateSessionRequest* req,
                             v1::CreateSessionResponse* resp) override;
  grpc::Status ListSessions(grpc::ServerContext* ctx, const v1::ListSessionsRequest* req,
                            v1::ListSessionsResponse* resp) override;
  grpc::Status GetSession(grpc::ServerContext* ctx, const v1::GetSessionRequest* req,
                          v1::GetSessionResponse* resp) override;
  grpc::Status DeleteSession(grpc::ServerContext* ctx, const v1::DeleteSessionRequest* req,
                             v1::DeleteSessionResponse* resp) override;
  grpc::Status ApplyBatch(grpc::ServerContext* ctx, const v1::ApplyBatchRequest* req,
                          v1::ApplyBatchResponse* resp) override;
  grpc::Status TuneNode(grpc::ServerContext* ctx, const v1::TuneNodeRequest* req,
                        v1::TuneNodeResponse* resp) override;
  grpc::ServerWriteReactor<v1::SessionEvent>* WatchEvents(
      grpc::CallbackServerContext* ctx, const v1::WatchEventsRequest* req) override;

  // ---- shared by the families (grpc_control.cpp)

  /// Null when the call may go on; else the status to end it with: the server is draining
  /// (UNAVAILABLE, new calls are refused), the caller is not authenticated, or its role lacks
  /// `permission` (none: any authenticated caller may `what`).
  std::optional<grpc::Status> admit(grpc::ServerContextBase& ctx,
                                    std::optional<Permission> permission, const char* what,
                                    Caller* caller = nullptr) const;

  /// An engine or session error: the message with its place, the code from the one mapping,
  /// and a problem naming `field` for an error of the request's content.
  static grpc::Status session_error(grpc::ServerContextBase& ctx, const Status& s,
                                    const std::string& field);
  grpc::Status config_too_large(grpc::ServerContextBase& ctx, std::size_t size) const;
  static grpc::Status protocol_error(grpc::ServerContextBase& ctx, const std::string& message);

  const ServerConfig& config_;
  supervisor::Engine& engine_;
  supervisor::SessionManager& sessions_;
  const Authenticator& auth_;
  StreamLimiter& limiter_;
  CallRegistry& calls_;
  HealthState& health_;
};

/// Every problem of a pipeline, one per line in the message and one per detail; the code of
/// the list (a path policy refusal: PERMISSION_DENIED; otherwise the first problem's).
grpc::Status compile_error(grpc::ServerContextBase& ctx, const std::vector<Status>& errors,
                           const std::string& field);

/// A JSON document as a google.protobuf.Struct (false if it is not an object).
bool to_struct(const nlohmann::json& value, google::protobuf::Struct* out);
/// A google.protobuf.Struct as JSON (numbers are doubles: 2 stays 2).
nlohmann::json from_struct(const google::protobuf::Struct& value);
/// A JSON object in a request field; the error carries the field and where in the text.
Result<nlohmann::json> json_object_of(const std::string& text, const std::string& what,
                                      v1::SourcePosition* position);

}  // namespace skit::gateway
