// SPDX-License-Identifier: MPL-2.0
// The native plugin catalog: plugins found in <plugins.directory>/native at start or uploaded,
// each probed by a short-lived sandboxed worker (the server never loads a plugin) and
// registered as plugin::native::<kind>. Workers load the catalog's private read-only copy, so
// a re-upload or a delete never changes the library under a running or restarting node.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "skit/core/registry.hpp"

namespace skit::supervisor {

struct PluginCatalogOptions {
  std::filesystem::path directory;  // plugins.directory; native plugins in <directory>/native
  std::string worker_executable;    // the skit binary, run as `skit worker --probe-plugin`
  std::optional<std::chrono::milliseconds> call_timeout;  // plugins.native_call_timeout_secs
  std::chrono::milliseconds probe_timeout{10000};
  std::uint64_t probe_address_space_bytes = 4ULL << 30;
  std::uint64_t max_upload_bytes = 256ULL << 20;
  NodeRegistry* registry = nullptr;  // default: NodeRegistry::builtin()
};

struct PluginInfo {
  std::string kind;           // plugin::native::<original_kind>
  std::string original_kind;  // as the plugin's metadata names it
  std::string file_name;
  std::vector<std::string> categories;
  std::int64_t loaded_at_ms = 0;
  std::string plugin_type = "native";
};

class PluginCatalog {
 public:
  explicit PluginCatalog(PluginCatalogOptions options);
  ~PluginCatalog();
  PluginCatalog(const PluginCatalog&) = delete;
  PluginCatalog& operator=(const PluginCatalog&) = delete;

  /// Loads every *.so in <directory>/native. A bad file is skipped (its error returned and
  /// logged); the others load.
  std::vector<Status> load_directory();
  /// Probes the library at `path` and registers it (replacing a loaded plugin of that kind).
  Result<PluginInfo> load_file(const std::filesystem::path& path);
  /// An uploaded library: checked by a probe first, then stored as <directory>/native/<name>
  /// (loaded again at the next start) and registered. A bad upload leaves nothing behind.
  Result<PluginInfo> install(std::string_view file_name, std::span<const std::byte> bytes);
  /// Unregisters `kind` (plugin::native::x or x); with `remove_file` its file in the plugins
  /// directory goes too. Nodes already using it keep their copy until they go.
  Status unload(std::string_view kind, bool remove_file);
  [[nodiscard]] std::vector<PluginInfo> list() const;

  /// Reads a library's metadata through a probe worker: {kind, inputs, outputs, ...}.
  Result<Json> probe(const std::filesystem::path& library) const;

 private:
  /// `resources`: the directory of a plugin found on disk, whose subdirectories (models,
  /// bundled libraries) the copy sees beside itself.
  Result<PluginInfo> register_copy(const std::filesystem::path& source,
                                   const std::string& file_name,
                                   const std::filesystem::path& resources);

  PluginCatalogOptions options_;
  NodeRegistry& registry_;
  std::filesystem::path copies_;  // private read-only copies that workers load
  mutable std::mutex mutex_;
  std::vector<PluginInfo> loaded_;
  std::uint64_t next_copy_ = 0;
};

/// Whether `name` is acceptable as a plugin file name: a plain "lib-name_1.so".
bool valid_plugin_file_name(std::string_view name);

}  // namespace skit::supervisor
