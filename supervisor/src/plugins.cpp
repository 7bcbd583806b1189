// SPDX-License-Identifier: MPL-2.0
#include "skit/supervisor/plugins.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "skit/plugins/plugin_kinds.hpp"
#include "worker_process.hpp"

namespace skit::supervisor {

namespace fs = std::filesystem;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Copies directories of servers that are gone (a crash leaves them behind).
void remove_stale_copies(const fs::path& tmp) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(tmp, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("skit-plugins-", 0) != 0) {
      continue;
    }
    const std::string rest = name.substr(13);
    const pid_t pid = static_cast<pid_t>(std::atol(rest.c_str()));
    if (pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
      fs::remove_all(entry.path(), ec);
    }
  }
}

}  // namespace

bool valid_plugin_file_name(std::string_view name) {
  if (name.size() < 4 || name.size() > 128 || name.substr(name.size() - 3) != ".so" ||
      name.front() == '.') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
  });
}

PluginCatalog::PluginCatalog(PluginCatalogOptions options)
    : options_(std::move(options)),
      registry_(options_.registry != nullptr ? *options_.registry : NodeRegistry::builtin()) {
  std::error_code ec;
  const fs::path tmp = fs::temp_directory_path(ec);
  remove_stale_copies(tmp);
  std::random_device rd;
  copies_ = tmp / ("skit-plugins-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000));
  fs::create_directories(copies_, ec);
  ::chmod(copies_.c_str(), 0700);
}

PluginCatalog::~PluginCatalog() {
  // Workers that still run a plugin have it mapped; removing the files does not disturb them.
  std::error_code ec;
  fs::remove_all(copies_, ec);
}

Result<Json> PluginCatalog::probe(const fs::path& library) const {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Status(ErrorCode::kResourceExhausted, "cannot create a pipe for the plugin probe");
  }
  auto proc = WorkerProcess::spawn(
      options_.worker_executable,
      {"worker", "--probe-plugin", library.string(), "--address-space",
       std::to_string(options_.probe_address_space_bytes)},
      fds[1]);
  ::close(fds[1]);
  if (!proc) {
    ::close(fds[0]);
    return proc.status();
  }
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + options_.probe_timeout;
  bool timed_out = false;
  while (out.size() < (4U << 20)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      continue;
    }
    char buffer[8192];
    const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n <= 0) {
      break;
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  proc->terminate(timed_out ? 0 : 2000);
  const std::string file = library.filename().string();
  if (timed_out) {
    return Status(ErrorCode::kDeadlineExceeded,
                  "plugin " + file + ": loading it did not finish within " +
                      std::to_string(options_.probe_timeout.count()) + " ms");
  }
  Json answer = Json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded() || !answer.is_object()) {
    return Status(ErrorCode::kInvalidArgument,
                  "plugin " + file + ": its probe " + proc->exit_description() +
                      " without describing it (the library crashed or exited while loading)");
  }
  if (!answer.value("ok", false)) {
    std::string why = answer.value("error", "unknown error");
    return Status(ErrorCode::kInvalidArgument, why);
  }
  return answer["metadata"];
}

Result<PluginInfo> PluginCatalog::register_copy(const fs::path& source,
                                                const std::string& file_name,
                                                const fs::path& resources) {
  std::error_code ec;
  // One directory per copy, the library under its own name: a plugin that finds its models
  // beside itself (dladdr) finds them through links to the directories next to the original.
  const fs::path dir = copies_ / std::to_string(next_copy_++);
  fs::create_directories(dir, ec);
  const fs::path copy = dir / file_name;
  fs::copy_file(source, copy, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    return Status(ErrorCode::kInternal, "plugin " + file_name + ": cannot copy it: " + ec.message());
  }
  ::chmod(copy.c_str(), 0500);
  if (!resources.empty()) {
    for (const auto& entry : fs::directory_iterator(resources, ec)) {
      if (entry.is_directory(ec)) {
        fs::create_directory_symlink(fs::absolute(entry.path(), ec), dir / entry.path().filename(), ec);
      }
    }
  }
  auto metadata = probe(copy);
  if (!metadata) {
    fs::remove_all(dir, ec);
    return metadata.status();
  }
  auto descriptor = plugins::native_descriptor(*metadata, copy.string(), options_.call_timeout);
  if (!descriptor) {
    fs::remove_all(dir, ec);
    return Status(ErrorCode::kInvalidArgument,
                  "plugin " + file_name + ": " + descriptor.status().message());
  }
  const NodeDescriptor* existing = registry_.find(descriptor->kind);
  if (existing != nullptr && !existing->native_plugin) {
    fs::remove_all(dir, ec);
    return Status(ErrorCode::kAlreadyExists,
                  "plugin " + file_name + ": kind " + descriptor->kind + " is a built-in kind");
  }
  PluginInfo info;
  info.kind = descriptor->kind;
  info.original_kind = metadata->value("kind", "");
  info.file_name = file_name;
  info.categories = descriptor->categories;
  info.loaded_at_ms = now_ms();
  registry_.put(std::move(descriptor).value());
  std::erase_if(loaded_, [&](const PluginInfo& p) { return p.kind == info.kind; });
  loaded_.push_back(info);
  spdlog::info("plugin loaded: {} from {}", info.kind, file_name);
  return info;
}

std::vector<Status> PluginCatalog::load_directory() {
  std::vector<Status> errors;
  const fs::path native = options_.directory / "native";
  std::error_code ec;
  if (options_.directory.empty() || !fs::is_directory(native, ec)) {
    return errors;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(native, ec)) {
    if (entry.is_regular_file(ec) && entry.path().extension() == ".so") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto loaded = load_file(file);
    if (!loaded) {
      spdlog::warn("plugin not loaded: {}", loaded.status().message());
      errors.push_back(loaded.status());
    }
  }
  return errors;
}

Result<PluginInfo> PluginCatalog::load_file(const fs::path& path) {
  std::lock_guard lock(mutex_);
  return register_copy(path, path.filename().string(), path.parent_path());
}

Result<PluginInfo> PluginCatalog::install(std::string_view file_name,
                                          std::span<const std::byte> bytes) {
  if (!valid_plugin_file_name(file_name)) {
    return Status(ErrorCode::kInvalidArgument,
                  "plugin file name '" + std::string(file_name) +
                      "' must end in .so and use only letters, digits, '.', '_' and '-'");
  }
  if (bytes.size() > options_.max_upload_bytes) {
    return Status(ErrorCode::kResourceExhausted,
                  "plugin upload of " + std::to_string(bytes.size()) + " bytes exceeds " +
                      std::to_string(options_.max_upload_bytes));
  }
  if (bytes.size() < 4 || std::memcmp(bytes.data(), "\x7f" "ELF", 4) != 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "plugin " + std::string(file_name) + " is not a shared library (no ELF header)");
  }
  if (options_.directory.empty()) {
    return Status(ErrorCode::kFailedPrecondition, "no plugins.directory is configured");
  }
  std::lock_guard lock(mutex_);
  std::error_code ec;
  const fs::path native = options_.directory / "native";
  fs::create_directories(native, ec);
  const fs::path staged = copies_ / ("upload-" + std::to_string(next_copy_++) + ".so");
  {
    std::ofstream f(staged, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      return Status(ErrorCode::kInternal, "cannot stage the plugin upload");
    }
  }
  auto info = register_copy(staged, std::string(file_name), {});
  if (info) {
    // Kept for the next start; written beside and renamed, never half a library in place.
    const fs::path target = native / std::string(file_name);
    const fs::path part = native / ("." + std::string(file_name) + ".part");
    fs::copy_file(staged, part, fs::copy_options::overwrite_existing, ec);
    if (!ec) {
      fs::rename(part, target, ec);
    }
    if (ec) {
      spdlog::warn("plugin {} loaded but not stored in {}: {}", info->kind, native.string(),
                   ec.message());
    }
  }
  fs::remove(staged, ec);
  return info;
}

Status PluginCatalog::unload(std::string_view kind, bool remove_file) {
  const std::string full = kind.starts_with(plugins::kNativeKindPrefix)
                               ? std::string(kind)
                               : plugins::native_kind(kind);
  std::lock_guard lock(mutex_);
  auto it = std::find_if(loaded_.begin(), loaded_.end(),
                         [&](const PluginInfo& p) { return p.kind == full; });
  if (it == loaded_.end()) {
    return Status(ErrorCode::kNotFound, "plugin " + full + " not found");
  }
  if (remove_file && !options_.directory.empty()) {
    std::error_code ec;
    fs::remove(options_.directory / "native" / it->file_name, ec);
  }
  registry_.remove(full);
  spdlog::info("plugin unloaded: {}", full);
  loaded_.erase(it);
  return Status::ok();
}

std::vector<PluginInfo> PluginCatalog::list() const {
  std::lock_guard lock(mutex_);
  auto out = loaded_;
  std::sort(out.begin(), out.end(),
            [](const PluginInfo& a, const PluginInfo& b) { return a.kind < b.kind; });
  return out;
}

}  // namespace skit::supervisor
