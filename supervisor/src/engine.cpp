// SPDX-License-Identifier: MPL-2.0
#include "skit/supervisor/engine.hpp"

#include <algorithm>

#include "skit/supervisor/entry_rules.hpp"

namespace skit::supervisor {

namespace {
PluginCatalogOptions catalog_options(const EngineConfig& config) {
  PluginCatalogOptions o;
  o.directory = config.plugins_dir.empty() || config.plugins_dir.is_absolute()
                    ? config.plugins_dir
                    : config.base_dir / config.plugins_dir;
  o.worker_executable = config.worker_executable;
  if (config.plugin_call_timeout.count() > 0) {
    o.call_timeout = config.plugin_call_timeout;
  }
  o.probe_address_space_bytes = config.sandbox.address_space_bytes;
  return o;
}

// The config loader checked every rule; one that is bad here refuses every URL.
UrlPolicy fetch_policy_of(const EngineConfig& config) {
  auto policy = UrlPolicy::make(config.allowed_fetch_urls, kFetchPolicyKey, kFetchSchemes);
  return policy ? std::move(policy).value() : UrlPolicy(kFetchPolicyKey);
}
}  // namespace

Engine::Engine(EngineConfig config)
    : config_(std::move(config)),
      plugins_(std::make_unique<PluginCatalog>(catalog_options(config_))),
      paths_(config_.base_dir, config_.allowed_file_paths, config_.allowed_write_paths,
             fetch_policy_of(config_)) {
  paths_.set_listen_ports(config_.listen_port_first, config_.listen_port_last);
}

std::vector<Status> Engine::load_plugins() {
  return plugins_->load_directory();
}

CompiledPipeline Engine::compile_oneshot(std::string_view yaml, bool has_media) const {
  CompiledPipeline compiled = compile_pipeline_yaml(yaml);
  if (!compiled.ok()) {
    return compiled;
  }
  for (Status& s : check_entry(compiled.pipeline, EntryPoint::kProcess, {.has_input = has_media})) {
    compiled.errors.push_back(std::move(s));
  }
  for (Status& s : paths_.confine_pipeline(compiled.pipeline)) {
    compiled.errors.push_back(std::move(s));
  }
  return compiled;
}

RunReport Engine::run_oneshot(const v1::Pipeline& pipeline, HostByteSource* media,
                              HostByteSink* output, const std::atomic<bool>* cancel) {
  {
    std::lock_guard lock(mutex_);
    if (stats_.active_oneshots >= config_.max_concurrent_oneshots) {
      ++stats_.oneshots_rejected;
      RunReport rejected;
      rejected.status = Status(ErrorCode::kResourceExhausted,
                               "too many oneshot pipelines running (limit " +
                                   std::to_string(config_.max_concurrent_oneshots) + ")");
      return rejected;
    }
    ++stats_.active_oneshots;
    ++stats_.oneshots_started;
  }
  RunOptions options;
  options.placement = config_.placement;
  options.sandbox = config_.sandbox;
  options.sandbox.confined_files = true;  // compile_oneshot() confined the file params
  options.worker_executable = config_.worker_executable;
  options.ring_capacity = config_.ring_capacity;
  options.input = media;
  options.output = output;
  options.cancel = cancel;
  options.deadline = std::chrono::steady_clock::now() + config_.oneshot_timeout;
  RunReport report = run_pipeline(pipeline, options);
  std::lock_guard lock(mutex_);
  --stats_.active_oneshots;
  (report.status.is_ok() ? stats_.oneshots_succeeded : stats_.oneshots_failed)++;
  stats_.workers_started += report.worker_count;
  stats_.run_seconds_total += report.wall_seconds;
  for (const auto& n : report.nodes) {
    stats_.packets += n.stats.packets_out;
    stats_.dropped += n.stats.dropped;
  }
  return report;
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace skit::supervisor
