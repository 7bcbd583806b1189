// SPDX-License-Identifier: MPL-2.0
// The one mapping from skit's error codes to HTTP statuses and gRPC codes (docs/grpc.md's
// table): every code has its answer on both front ends, and the gRPC numbers are gRPC's own.
#include "status_codes.hpp"

#include <grpcpp/support/status.h>
#include <gtest/gtest.h>

#include "grpc_infra.hpp"

namespace skit::gateway {
namespace {

struct Row {
  ErrorCode code;
  unsigned http;
  grpc::StatusCode grpc;
};

// docs/grpc.md, "Error codes".
const Row kTable[] = {
    {ErrorCode::kOk, 200, grpc::StatusCode::OK},
    {ErrorCode::kInvalidArgument, 400, grpc::StatusCode::INVALID_ARGUMENT},
    {ErrorCode::kInvalidParam, 400, grpc::StatusCode::INVALID_ARGUMENT},
    {ErrorCode::kUnknownKind, 400, grpc::StatusCode::INVALID_ARGUMENT},
    {ErrorCode::kPinTypeMismatch, 400, grpc::StatusCode::INVALID_ARGUMENT},
    {ErrorCode::kGraphError, 400, grpc::StatusCode::INVALID_ARGUMENT},
    {ErrorCode::kCorruptMedia, 422, grpc::StatusCode::INVALID_ARGUMENT},
    {ErrorCode::kNotFound, 404, grpc::StatusCode::NOT_FOUND},
    {ErrorCode::kPermissionDenied, 403, grpc::StatusCode::PERMISSION_DENIED},
    {ErrorCode::kResourceExhausted, 503, grpc::StatusCode::RESOURCE_EXHAUSTED},
    {ErrorCode::kUnavailable, 500, grpc::StatusCode::INTERNAL},
    {ErrorCode::kCancelled, 400, grpc::StatusCode::CANCELLED},
    {ErrorCode::kDeadlineExceeded, 504, grpc::StatusCode::DEADLINE_EXCEEDED},
    {ErrorCode::kAlreadyExists, 409, grpc::StatusCode::ALREADY_EXISTS},
    {ErrorCode::kInternal, 500, grpc::StatusCode::INTERNAL},
    {ErrorCode::kFailedPrecondition, 409, grpc::StatusCode::FAILED_PRECONDITION},
};

TEST(StatusCodes, EveryCodeHasItsHttpStatusAndGrpcCode) {
  for (const Row& row : kTable) {
    const std::string name(error_code_name(row.code));
    EXPECT_EQ(http_status_for(row.code), row.http) << name;
    EXPECT_EQ(http_status_for(Status(row.code, "x")), row.http) << name;
    EXPECT_EQ(grpc_code_for(row.code), row.grpc) << name;
    EXPECT_EQ(grpc_code_number(row.code), static_cast<int>(row.grpc)) << name;
  }
}

TEST(StatusCodes, TuningAStoppedNodeIsAFailedPreconditionNotAServerError) {
  // The session manager refuses to tune a node that has stopped or failed with this code: a
  // client error about the node's state (409 / FAILED_PRECONDITION), not a dead worker (500 /
  // INTERNAL) that a client would report as a server fault.
  EXPECT_EQ(http_status_for(ErrorCode::kFailedPrecondition), 409U);
  EXPECT_EQ(grpc_code_for(ErrorCode::kFailedPrecondition), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(error_code_name(ErrorCode::kFailedPrecondition), "failed_precondition");
}

TEST(StatusCodes, ErrorCodeNamesRoundTrip) {
  for (const Row& row : kTable) {
    EXPECT_EQ(error_code_named(error_code_name(row.code)), row.code) << error_code_name(row.code);
  }
  EXPECT_EQ(error_code_named("no_such_code"), ErrorCode::kInternal);
}

TEST(StatusCodes, APathRefusalDecidesTheCodeOfAListOfProblems) {
  EXPECT_EQ(problems_code({}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(problems_code({Status(ErrorCode::kGraphError, "cycle"),
                           Status(ErrorCode::kUnknownKind, "kind")}),
            ErrorCode::kGraphError);
  EXPECT_EQ(problems_code({Status(ErrorCode::kGraphError, "cycle"),
                           Status(ErrorCode::kPermissionDenied, "path")}),
            ErrorCode::kPermissionDenied);
}

TEST(StatusCodes, ErrorTextPlacesTheMessageOnce) {
  // Without a place in the message, the status says it; with one, it is not repeated.
  EXPECT_EQ(error_text(Status(ErrorCode::kInvalidParam, "gain out of range", {.node_id = "g"})),
            Status(ErrorCode::kInvalidParam, "gain out of range", {.node_id = "g"}).to_string());
  EXPECT_EQ(error_text(Status(ErrorCode::kFailedPrecondition, "node 'g' is stopped",
                              {.node_id = "g"})),
            "node 'g' is stopped");
  EXPECT_EQ(error_text(Status(ErrorCode::kGraphError, "operation 1: a cycle\n")),
            "operation 1: a cycle");
}

}  // namespace
}  // namespace skit::gateway
