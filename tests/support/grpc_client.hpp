// SPDX-License-Identifier: MPL-2.0
// gRPC client helpers for the end-to-end suites: a call context with a bearer token and a
// deadline, and a trailing-metadata lookup. Header-only.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace skit::testing {

inline std::unique_ptr<grpc::ClientContext> grpc_context(
    const std::string& token, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  if (!token.empty()) {
    ctx->AddMetadata("authorization", "Bearer " + token);
  }
  return ctx;
}

inline std::string grpc_trailer(const grpc::ClientContext& ctx, const std::string& key) {
  const auto& md = ctx.GetServerTrailingMetadata();
  const auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

}  // namespace skit::testing
