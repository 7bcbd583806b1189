// SPDX-License-Identifier: MPL-2.0
#include "skit/core/status.hpp"

#include <sstream>

namespace skit {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kInvalidParam: return "invalid_param";
    case ErrorCode::kUnknownKind: return "unknown_kind";
    case ErrorCode::kPinTypeMismatch: return "pin_type_mismatch";
    case ErrorCode::kGraphError: return "graph_error";
    case ErrorCode::kCorruptMedia: return "corrupt_media";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kResourceExhausted: return "resource_exhausted";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kDeadlineExceeded: return "deadline_exceeded";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kFailedPrecondition: return "failed_precondition";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) {
    return "ok";
  }
  std::ostringstream out;
  if (where_.operation >= 0) {
    out << "operation " << where_.operation << ": ";
  }
  if (where_.line > 0) {
    out << "line " << where_.line;
    if (where_.column > 0) {
      out << ", column " << where_.column;
    }
    out << ": ";
  }
  if (!where_.node_id.empty()) {
    out << "node '" << where_.node_id << "': ";
  }
  if (!where_.param.empty()) {
    out << "param '" << where_.param << "': ";
  }
  out << message_;
  return out.str();
}

}  // namespace skit

#include "skit/core/state.hpp"

namespace skit {
std::string_view node_state_name(NodeState state) {
  switch (state) {
    case NodeState::kInitializing: return "initializing";
    case NodeState::kReady: return "ready";
    case NodeState::kRunning: return "running";
    case NodeState::kStopped: return "stopped";
    case NodeState::kFailed: return "failed";
  }
  return "unknown";
}
}  // namespace skit
