// SPDX-License-Identifier: MPL-2.0
// gRPC server reflection, ours: grpc.reflection.v1 and grpc.reflection.v1alpha on the
// callback API (an open stream holds no thread), behind the API's bearer tokens when they are
// configured, counted as a long-lived stream, and describing every file with its comments
// (the descriptor set embedded at build time with source info).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "grpc_infra.hpp"

namespace skit::gateway {

struct ReflectionContext {
  const Authenticator& auth;
  StreamLimiter& limiter;
  CallRegistry& calls;
  std::vector<std::string> services;  // what list_services answers
};

/// The v1 and the v1alpha service; `context` must outlive them.
std::vector<std::unique_ptr<grpc::Service>> make_reflection_services(
    const ReflectionContext& context);

}  // namespace skit::gateway
