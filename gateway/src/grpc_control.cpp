// SPDX-License-Identifier: MPL-2.0
// What the families of skit.v1.Control share: admission (drain, authentication, the role's
// permission), errors, and JSON in and out of protobuf.
#include "grpc_control.hpp"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "skit/gateway/session_json.hpp"
#include "status_codes.hpp"

namespace skit::gateway {

std::optional<grpc::Status> ControlService::admit(grpc::ServerContextBase& ctx,
                                                  std::optional<Permission> permission,
                                                  const char* what, Caller* caller) const {
  if (calls_.draining()) {
    return rpc_error(ctx, grpc::StatusCode::UNAVAILABLE, "unavailable",
                     "the server is shutting down");
  }
  Caller who;  // without auth: admin
  if (grpc::Status s = auth_.authenticate(ctx, &who); !s.ok()) {
    return s;
  }
  if (permission) {
    if (Status s = authorize(who.role, *permission, what); !s.is_ok()) {
      return rpc_error(ctx, grpc_code_for(s.code()), error_code_name(s.code()), s.message());
    }
  }
  if (caller != nullptr) {
    *caller = std::move(who);
  }
  return std::nullopt;
}

grpc::Status ControlService::session_error(grpc::ServerContextBase& ctx, const Status& s,
                                           const std::string& field) {
  std::vector<v1::Problem> problems;
  const bool invalid = grpc_code_for(s.code()) == grpc::StatusCode::INVALID_ARGUMENT ||
                       s.code() == ErrorCode::kPermissionDenied;
  if (invalid) {
    problems.push_back(problem_of(s, field));
    problems.back().set_message(error_text(s));
  }
  return rpc_error(ctx, grpc_code_for(s.code()), error_code_name(s.code()), error_text(s),
                   problems);
}

grpc::Status ControlService::config_too_large(grpc::ServerContextBase& ctx,
                                              std::size_t size) const {
  return rpc_error(ctx, grpc::StatusCode::RESOURCE_EXHAUSTED, "resource_exhausted",
                   "the pipeline is " + std::to_string(size) +
                       " bytes; limits.max_config_bytes is " +
                       std::to_string(config_.max_config_bytes));
}

grpc::Status ControlService::protocol_error(grpc::ServerContextBase& ctx,
                                            const std::string& message) {
  return rpc_error(ctx, grpc::StatusCode::INVALID_ARGUMENT, "invalid_argument", message);
}

grpc::Status compile_error(grpc::ServerContextBase& ctx, const std::vector<Status>& errors,
                           const std::string& field) {
  std::string message;
  std::vector<v1::Problem> problems;
  for (const auto& e : errors) {
    message += (message.empty() ? "" : "\n") + e.to_string();
    problems.push_back(problem_of(e, field));
  }
  const ErrorCode code = problems_code(errors);
  return rpc_error(ctx, grpc_code_for(code), error_code_name(code), message, problems);
}

bool to_struct(const nlohmann::json& value, google::protobuf::Struct* out) {
  return value.is_object() &&
         google::protobuf::util::JsonStringToMessage(
             value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), out)
             .ok();
}

nlohmann::json from_struct(const google::protobuf::Struct& value) {
  std::string text;
  (void)google::protobuf::util::MessageToJsonString(value, &text);
  return nlohmann::json::parse(text, nullptr, false);
}

Result<nlohmann::json> json_object_of(const std::string& text, const std::string& what,
                                      v1::SourcePosition* position) {
  try {
    auto value = nlohmann::json::parse(text);
    if (!value.is_object()) {
      return Status(ErrorCode::kInvalidArgument, what + " must be a JSON object");
    }
    return value;
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based, the offending character.
    const std::size_t at = std::min<std::size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    const auto line =
        1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
    const auto nl = text.rfind('\n', at == 0 ? 0 : at - 1);
    const auto column = nl == std::string::npos || at == 0 ? at + 1 : at - nl;
    if (position != nullptr) {
      position->set_line(static_cast<int>(line));
      position->set_column(static_cast<int>(column));
    }
    return Status(ErrorCode::kInvalidArgument,
                  what + " is not valid JSON (line " + std::to_string(line) + ", column " +
                      std::to_string(column) + ")");
  }
}

}  // namespace skit::gateway
