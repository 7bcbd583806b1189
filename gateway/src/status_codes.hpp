// SPDX-License-Identifier: MPL-2.0
// The one mapping from skit's error codes to HTTP statuses and gRPC codes (the tables in
// docs/http.md and docs/grpc.md). Every front end answers an engine or session error through
// it; the few answers that depend on what was asked, not on the code (an upload over
// limits.max_body_bytes is 413, a session limit 429 as StreamKit has it), are the callers'.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "skit/core/status.hpp"

namespace skit::gateway {

/// An error as a client reads it (WebSocket, gRPC and REST session messages): the message with
/// its place (line, node, param), once, without a trailing newline.
std::string error_text(const Status& s);

/// The HTTP status of an error code (200 for kOk).
unsigned http_status_for(ErrorCode code);
inline unsigned http_status_for(const Status& s) { return http_status_for(s.code()); }

/// The gRPC status code number of an error code (grpc::StatusCode's values; grpc_infra.hpp
/// has the typed grpc_code_for), so that this table needs no gRPC header.
int grpc_code_number(ErrorCode code);

/// The code of a list of problems (a pipeline's): a path policy refusal decides
/// (kPermissionDenied), otherwise the first problem's code.
ErrorCode problems_code(const std::vector<Status>& problems);

/// The error code named `name` by error_code_name() (kInternal for an unknown name).
ErrorCode error_code_named(std::string_view name);

}  // namespace skit::gateway
