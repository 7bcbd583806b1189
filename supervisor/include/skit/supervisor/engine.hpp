// SPDX-License-Identifier: MPL-2.0
// The engine: the one interface through which front ends (the HTTP gateway, the gRPC
// service, the CLI) compile, check and run pipelines. It owns the run-time policy (placement,
// sandbox, limits, file path allow-lists) and keeps counters for health and metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "skit/supervisor/path_policy.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"
#include "skit/supervisor/plugins.hpp"
#include "skit/supervisor/run.hpp"

namespace skit::supervisor {

struct EngineConfig {
  PlacementPolicy placement = PlacementPolicy::kGrouped;
  SandboxOptions sandbox;
  std::string worker_executable;
  std::uint32_t ring_capacity = 32;
  std::size_t max_concurrent_oneshots = 16;
  std::chrono::milliseconds oneshot_timeout{10 * 60 * 1000};
  std::filesystem::path base_dir = std::filesystem::current_path();
  std::vector<std::string> allowed_file_paths = {"samples/**"};
  std::vector<std::string> allowed_write_paths;  // empty: writing files is denied
  // URLs that nodes may download (security.allowed_fetch_urls); empty: fetching is refused.
  std::vector<UrlRule> allowed_fetch_urls;
  // Ports listening nodes may use (transports.listen_ports, inclusive); 0: none.
  int listen_port_first = 0;
  int listen_port_last = 0;
  // Native plugins (plugins.*): those in <plugins_dir>/native load at start (load_plugins()).
  std::filesystem::path plugins_dir = ".plugins";
  bool allow_plugin_management = false;  // upload/delete over HTTP and gRPC (admin role)
  std::chrono::milliseconds plugin_call_timeout{0};  // 0: the node timeout (30 s)
};

/// Counters since start, for /metrics and health.
struct EngineStats {
  std::uint64_t oneshots_started = 0;
  std::uint64_t oneshots_succeeded = 0;
  std::uint64_t oneshots_failed = 0;
  std::uint64_t oneshots_rejected = 0;  // over the concurrency limit
  std::uint64_t active_oneshots = 0;
  std::uint64_t workers_started = 0;
  std::uint64_t packets = 0;  // packets out of every node of finished runs
  std::uint64_t dropped = 0;  // best-effort drops of finished runs
  double run_seconds_total = 0;
};

class Engine {
 public:
  explicit Engine(EngineConfig config);

  [[nodiscard]] const EngineConfig& config() const { return config_; }
  /// The file path allow-lists (security.allowed_file_paths / allowed_write_paths), for front
  /// ends that check nodes outside a oneshot (dynamic sessions).
  [[nodiscard]] const PathPolicy& path_policy() const { return paths_; }

  /// YAML -> validated pipeline, plus the oneshot rules and the file path policy.
  /// `has_media`: the request carries an upload for streamkit::http_input.
  [[nodiscard]] CompiledPipeline compile_oneshot(std::string_view yaml, bool has_media) const;

  /// Runs a compiled oneshot pipeline to completion. Fails at once with kResourceExhausted
  /// when max_concurrent_oneshots runs are active.
  RunReport run_oneshot(const v1::Pipeline& pipeline, HostByteSource* media, HostByteSink* output,
                        const std::atomic<bool>* cancel);

  [[nodiscard]] EngineStats stats() const;

  /// The native plugin catalog (its kinds are in NodeRegistry::builtin()).
  [[nodiscard]] PluginCatalog& plugins() { return *plugins_; }
  /// Loads the plugins of <plugins_dir>/native; a bad one is logged and skipped.
  std::vector<Status> load_plugins();

 private:
  EngineConfig config_;
  std::unique_ptr<PluginCatalog> plugins_;
  PathPolicy paths_;
  mutable std::mutex mutex_;
  EngineStats stats_;
};

}  // namespace skit::supervisor
