// SPDX-License-Identifier: MPL-2.0
#include "status_codes.hpp"

namespace skit::gateway {

namespace {

struct Mapping {
  unsigned http;
  int grpc;  // grpc::StatusCode
};

// gRPC's code numbers (grpc/include/grpcpp/support/status_code_enum.h).
constexpr int kGrpcOk = 0;
constexpr int kGrpcCancelled = 1;
constexpr int kGrpcInvalidArgument = 3;
constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcNotFound = 5;
constexpr int kGrpcAlreadyExists = 6;
constexpr int kGrpcPermissionDenied = 7;
constexpr int kGrpcResourceExhausted = 8;
constexpr int kGrpcFailedPrecondition = 9;
constexpr int kGrpcInternal = 13;

Mapping mapping_of(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return {200, kGrpcOk};
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidParam:
    case ErrorCode::kUnknownKind:
    case ErrorCode::kPinTypeMismatch:
    case ErrorCode::kGraphError: return {400, kGrpcInvalidArgument};
    // The client's bytes cannot be parsed: an argument problem in gRPC's terms (DATA_LOSS is
    // the server's own loss), and HTTP's "well-formed request, unprocessable content".
    case ErrorCode::kCorruptMedia: return {422, kGrpcInvalidArgument};
    case ErrorCode::kNotFound: return {404, kGrpcNotFound};
    case ErrorCode::kPermissionDenied: return {403, kGrpcPermissionDenied};
    // Too many running pipelines or sessions: retry later (HTTP adds Retry-After).
    case ErrorCode::kResourceExhausted: return {503, kGrpcResourceExhausted};
    // A worker died or stopped answering: the same input would most likely kill it again,
    // so neither 503 nor UNAVAILABLE, which invite automatic retries.
    case ErrorCode::kUnavailable: return {500, kGrpcInternal};
    // The request was cut off or cancelled by its client (a read of its upload failed).
    case ErrorCode::kCancelled: return {400, kGrpcCancelled};
    case ErrorCode::kDeadlineExceeded: return {504, kGrpcDeadlineExceeded};
    case ErrorCode::kAlreadyExists: return {409, kGrpcAlreadyExists};
    case ErrorCode::kFailedPrecondition: return {409, kGrpcFailedPrecondition};
    case ErrorCode::kInternal: return {500, kGrpcInternal};
  }
  return {500, kGrpcInternal};
}

}  // namespace

std::string error_text(const Status& s) {
  std::string text = s.message();
  const auto& where = s.where();
  const bool placed = text.find('\n') != std::string::npos || text.rfind("error: ", 0) == 0 ||
                      text.rfind("operation ", 0) == 0 || text.rfind("line ", 0) == 0 ||
                      (!where.node_id.empty() &&
                       text.find("node '" + where.node_id + "'") != std::string::npos);
  if (!placed) {
    text = s.to_string();
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

unsigned http_status_for(ErrorCode code) { return mapping_of(code).http; }

int grpc_code_number(ErrorCode code) { return mapping_of(code).grpc; }

ErrorCode problems_code(const std::vector<Status>& problems) {
  for (const auto& p : problems) {
    if (p.code() == ErrorCode::kPermissionDenied) {
      return ErrorCode::kPermissionDenied;
    }
  }
  return problems.empty() ? ErrorCode::kInvalidArgument : problems.front().code();
}

ErrorCode error_code_named(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(ErrorCode::kFailedPrecondition); ++c) {
    if (error_code_name(static_cast<ErrorCode>(c)) == name) {
      return static_cast<ErrorCode>(c);
    }
  }
  return ErrorCode::kInternal;
}

}  // namespace skit::gateway
