// SPDX-License-Identifier: MPL-2.0
// Compiles StreamKit pipeline YAML (`steps:` or `nodes:` + `needs:`) into a typed, validated
// skit.v1.Pipeline. Every problem of a document is reported at once, each with its line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "skit/core/registry.hpp"
#include "skit/core/status.hpp"
#include "skit/v1/pipeline.pb.h"

namespace skit::supervisor {

struct CompiledPipeline {
  v1::Pipeline pipeline;
  std::vector<Status> errors;  // sorted by line; empty when the pipeline is valid

  [[nodiscard]] bool ok() const { return errors.empty(); }
  /// All errors, one per line, prefixed with `source` ("pipeline.yml:12:5: ...").
  [[nodiscard]] std::string error_report(std::string_view source = {}) const;
};

/// "pipeline.yml:12:5: error: node 'gain': param 'gain': must be <= 4 (got 9)".
std::string format_diagnostic(std::string_view source, const Status& s,
                              std::string_view severity = "error");

CompiledPipeline compile_pipeline_yaml(std::string_view yaml,
                                       const NodeRegistry& registry = NodeRegistry::builtin());


Result<std::string> read_text_file(const std::string& path);

}  // namespace skit::supervisor
