// SPDX-License-Identifier: MPL-2.0
// Plugin metadata (as read from a library by a probe worker) -> a node kind of the registry:
// pins, a params schema built from the plugin's JSON Schema, and a factory for the worker.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "skit/core/registry.hpp"

namespace skit::plugins {

inline constexpr std::string_view kNativeKindPrefix = "plugin::native::";

/// The registered kind of a plugin whose metadata kind is `kind`.
std::string native_kind(std::string_view kind);

/// Builds the descriptor of a native plugin kind. `library_path` is the file workers load.
Result<NodeDescriptor> native_descriptor(const Json& metadata, const std::string& library_path,
                                         std::optional<std::chrono::milliseconds> call_timeout);

/// The params schema of a plugin, from its JSON Schema (top-level properties with type,
/// minimum/maximum, enum, default, required; every field tunable unless "tunable": false).
Result<std::shared_ptr<const ParamSchema>> schema_from_json_schema(const Json& schema);

}  // namespace skit::plugins
