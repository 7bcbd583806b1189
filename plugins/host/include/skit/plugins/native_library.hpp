// SPDX-License-Identifier: MPL-2.0
// A loaded native plugin library (StreamKit C ABI v2). Only ever used inside a worker process:
// the server reads metadata through a short-lived probe worker and never loads a plugin.
#pragma once

#include <memory>
#include <string>

#include "skit/core/params.hpp"
#include "skit/core/status.hpp"
#include "streamkit_plugin.h"

namespace skit::plugins {

class NativeLibrary {
 public:
  /// dlopens `path`, resolves streamkit_native_plugin_api, checks the API version and the
  /// metadata. Errors name the file and what is wrong (missing symbol, version, metadata).
  static Result<NativeLibrary> open(const std::string& path);

  NativeLibrary(NativeLibrary&&) noexcept = default;
  NativeLibrary& operator=(NativeLibrary&&) noexcept = default;
  ~NativeLibrary();

  [[nodiscard]] const CNativePluginAPI& api() const { return *api_; }
  /// The validated metadata as JSON: {kind, description, inputs[{name, accepts_types[]}],
  /// outputs[{name, produces_type}], param_schema, categories[]} (types in wire form).
  [[nodiscard]] const Json& metadata() const { return metadata_; }

 private:
  NativeLibrary() = default;
  struct Closer {
    void operator()(void* handle) const;
  };
  std::unique_ptr<void, Closer> handle_;
  const CNativePluginAPI* api_ = nullptr;
  Json metadata_;
};

/// Converts and checks a plugin's C metadata (pointers may be garbage in a broken plugin: only
/// call this in a worker). `file` names the library in errors.
Result<Json> read_metadata(const CNodeMetadata* metadata, const std::string& file);

}  // namespace skit::plugins
