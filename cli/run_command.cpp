// SPDX-License-Identifier: MPL-2.0
// skit run: one oneshot pipeline to completion, --input into streamkit::http_input and
// streamkit::http_output into --output, with a progress line (media time and speed, as ffmpeg
// users read it) and a summary.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <spdlog/spdlog.h>

#include "cli_common.hpp"
#include "skit/supervisor/plugins.hpp"
#include "commands.hpp"
#include "output_file.hpp"
#include "skit/supervisor/entry_rules.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"
#include "skit/supervisor/run.hpp"
#include "skit/core/url_policy.hpp"

namespace skit::cli {

namespace {

/// Reads --input from a file descriptor.
class FdSource final : public HostByteSource {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  Result<std::size_t> read(std::span<std::byte> buffer) override {
    while (true) {
      const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
      if (n >= 0) {
        return static_cast<std::size_t>(n);
      }
      if (errno != EINTR) {
        return Status(ErrorCode::kInvalidArgument,
                      std::string("reading input: ") + std::strerror(errno));
      }
    }
  }

 private:
  int fd_;
};

/// Writes --output to a file descriptor.
class FdSink final : public HostByteSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  Status write(std::span<const std::byte> bytes) override {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return Status(ErrorCode::kUnavailable,
                      std::string("writing output: ") + std::strerror(errno));
      }
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return Status::ok();
  }
  Status close() override { return Status::ok(); }

 private:
  int fd_;
};

struct RunArgs {
  std::string pipeline;
  std::string input;
  std::string output;
  std::string stats;
  std::string placement = "grouped";
  int ring_depth = 32;
  int node_timeout_ms = 30000;
  bool no_sandbox = false;
  bool quiet = false;
  bool progress = false;
  std::string plugins_dir;
};

std::string progress_line(const supervisor::RunProgress& p) {
  std::string line;
  if (p.media_seconds > 0) {
    char speed[32];
    std::snprintf(speed, sizeof speed, "%.3gx", p.media_seconds / std::max(p.elapsed_seconds, 1e-3));
    line = "time=" + media_clock(p.media_seconds) + " speed=" + speed + " ";
  }
  char rest[160];
  std::snprintf(rest, sizeof rest, "in=%s out=%s workers=%zu elapsed=%.1fs",
                human_bytes(p.bytes_in).c_str(), human_bytes(p.bytes_out).c_str(), p.workers,
                p.elapsed_seconds);
  return line + rest;
}

int run(const RunArgs& a) {
  auto text = read_document(a.pipeline);
  if (!text) {
    std::fprintf(stderr, "skit run: %s\n", text.status().to_string().c_str());
    return 2;
  }
  const std::string source = a.pipeline == "-" ? "<stdin>" : a.pipeline;
  // Native plugins: probed by sandboxed workers and run in workers of their own, as in the
  // server. The catalog outlives the run (its private copies are what workers load).
  std::unique_ptr<supervisor::PluginCatalog> plugins;
  if (!a.plugins_dir.empty()) {
    supervisor::PluginCatalogOptions o;
    o.directory = a.plugins_dir;
    o.worker_executable = self_executable();
    plugins = std::make_unique<supervisor::PluginCatalog>(o);
    for (const auto& error : plugins->load_directory()) {
      std::fprintf(stderr, "skit run: %s\n", error.message().c_str());
    }
  }
  auto compiled = supervisor::compile_pipeline_yaml(*text);
  if (!compiled.ok()) {
    std::fputs(compiled.error_report(source).c_str(), stderr);
    return 2;
  }
  const auto& pipeline = compiled.pipeline;
  const auto misuse = supervisor::check_entry(
      pipeline, supervisor::EntryPoint::kRun,
      {.has_input = !a.input.empty(), .has_output = !a.output.empty()});
  if (!misuse.empty()) {
    supervisor::CompiledPipeline report;
    report.errors = misuse;
    std::fputs(report.error_report(source).c_str(), stderr);
    return 2;
  }
  for (const Status& w : supervisor::unconnected_outputs(pipeline)) {
    std::fprintf(stderr, "%s\n", supervisor::format_diagnostic(source, w, "warning").c_str());
  }
  if (a.pipeline == "-" && a.input == "-") {
    std::fputs("skit run: the pipeline and --input cannot both be standard input\n", stderr);
    return 2;
  }

  supervisor::RunOptions options;
  options.placement = *supervisor::parse_placement(a.placement);
  options.ring_capacity = static_cast<std::uint32_t>(a.ring_depth);
  options.node_timeout = std::chrono::milliseconds(a.node_timeout_ms);
  options.sandbox.enabled = !a.no_sandbox;

  int in_fd = -1;
  if (!a.input.empty()) {
    in_fd = a.input == "-" ? STDIN_FILENO : ::open(a.input.c_str(), O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) {
      std::fprintf(stderr, "skit run: cannot open input '%s': %s\n", a.input.c_str(),
                   std::strerror(errno));
      return 2;
    }
  }
  OutputFile out;
  if (!a.output.empty()) {
    if (Status s = out.open(a.output); !s.is_ok()) {
      std::fprintf(stderr, "skit run: %s\n", s.message().c_str());
      if (in_fd > STDERR_FILENO) {
        ::close(in_fd);
      }
      return 2;
    }
  }
  FdSource input(in_fd);
  FdSink sink(out.fd());
  options.input = in_fd >= 0 ? &input : nullptr;
  options.output = out.fd() >= 0 ? &sink : nullptr;
  options.worker_executable = self_executable();
  options.cancel = &g_cancel;
  const bool tty = isatty(STDERR_FILENO) != 0;
  const bool show_progress = !a.quiet && (tty || a.progress);
  supervisor::RunProgress last;
  options.on_progress = [&](const supervisor::RunProgress& p) {
    last = p;
    if (!show_progress || (tty && p.elapsed_seconds < 1.0)) {
      return;  // short runs print no progress on a terminal
    }
    if (tty) {
      std::fprintf(stderr, "\r\033[K  %s", progress_line(p).c_str());
    } else {
      std::fprintf(stderr, "progress: %s\n", progress_line(p).c_str());
    }
    std::fflush(stderr);
  };

  // skit run acts for the local user, who could fetch any URL anyway: a fetcher may download
  // any http(s) URL and an SRT caller call any listener, loopback and private ones included,
  // unless the environment already holds a policy (as skit serve's workers do).
  if (std::getenv(kFetchPolicyEnvVar) == nullptr) {  // NOLINT(concurrency-mt-unsafe)
    const std::vector<UrlRule> any = {{.url = "http://*:*", .allow_private = true},
                                      {.url = "https://*:*", .allow_private = true},
                                      {.url = "srt://*:*", .allow_private = true}};
    ::setenv(kFetchPolicyEnvVar, to_json(any).dump().c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
  }
  auto report = supervisor::run_pipeline(pipeline, options);
  if (show_progress && tty && report.wall_seconds >= 1.0) {
    std::fputs("\r\033[K", stderr);
  }
  if (in_fd > STDERR_FILENO) {
    ::close(in_fd);
  }
  if (!a.stats.empty()) {
    const std::string json = report.to_json(pipeline.name());
    if (a.stats == "-") {
      std::fputs((json + "\n").c_str(), stdout);
    } else if (FILE* f = std::fopen(a.stats.c_str(), "w")) {
      std::fputs((json + "\n").c_str(), f);
      std::fclose(f);
    } else {
      std::fprintf(stderr, "skit run: cannot write stats to '%s'\n", a.stats.c_str());
    }
  }
  if (!report.status.is_ok()) {
    std::fprintf(stderr, "skit run: %s: %s\n", source.c_str(), report.status.to_string().c_str());
    if (!a.output.empty() && a.output != "-") {
      std::fprintf(stderr, "skit run: '%s' was not written\n", a.output.c_str());
    }
    return report.status.code() == ErrorCode::kCancelled ? 130 : 1;
  }
  if (Status s = out.commit(); !s.is_ok()) {
    std::fprintf(stderr, "skit run: %s\n", s.message().c_str());
    return 1;
  }
  // The summary: one line, as ffmpeg and gst-launch users expect at the end of a run.
  double media = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  for (const auto& n : report.nodes) {
    media = std::max(media, static_cast<double>(n.stats.media_time_us) / 1e6);
    if (n.kind == "streamkit::http_input") {
      bytes_in += n.stats.bytes_out;
    } else if (n.kind == "streamkit::http_output") {
      bytes_out += n.stats.bytes_in;
    }
  }
  char summary[256];
  if (media > 0) {
    std::snprintf(summary, sizeof summary,
                  "done in %.2fs: %s of media (%.3gx real time), %s in, %s out, %zu worker(s)",
                  report.wall_seconds, media_clock(media).c_str(),
                  media / std::max(report.wall_seconds, 1e-3), human_bytes(bytes_in).c_str(),
                  human_bytes(bytes_out).c_str(), report.worker_count);
  } else {
    std::snprintf(summary, sizeof summary, "done in %.2fs: %s in, %s out, %zu worker(s)",
                  report.wall_seconds, human_bytes(bytes_in).c_str(),
                  human_bytes(bytes_out).c_str(), report.worker_count);
  }
  if (show_progress) {
    std::fprintf(stderr, "skit run: %s\n", summary);
  } else {
    spdlog::info("skit run: {}", summary);
  }
  return 0;
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run a pipeline to completion (oneshot)");
  cmd->add_option("pipeline", args->pipeline, "Pipeline YAML ('-' = standard input)")->required();
  cmd->add_option("-i,--input", args->input,
                  "Media for streamkit::http_input ('-' = standard input)");
  cmd->add_option("-o,--output", args->output,
                  "Destination of streamkit::http_output ('-' = standard output); written "
                  "under a temporary name and renamed when the run succeeds");
  cmd->add_option("--placement", args->placement,
                  "per-node (a worker process per node) or grouped (one worker per pipeline)")
      ->check(CLI::IsMember({"per-node", "grouped"}))
      ->capture_default_str();
  cmd->add_option("--plugins-dir", args->plugins_dir,
                  "Load the native plugins in DIR/native (plugins.directory)");
  cmd->add_option("--stats", args->stats, "Write per-node statistics as JSON ('-' = stdout)");
  cmd->add_option("--ring-depth", args->ring_depth, "Packets each connection buffers")
      ->check(integer_in(2, 4096))
      ->capture_default_str();
  cmd->add_option("--node-timeout", args->node_timeout_ms,
                  "Kill a worker whose node is stuck in one call this long (milliseconds)")
      ->check(integer_in(100, 3600000))
      ->capture_default_str();
  cmd->add_flag("--no-sandbox", args->no_sandbox,
                "Do not confine workers (debugging, sanitizer builds)");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress line and no summary");
  cmd->add_flag("--progress", args->progress,
                "Progress lines and the summary even when stderr is not a terminal");
  cmd->footer(
      "streamkit::http_input reads --input and streamkit::http_output writes --output; a "
      "pipeline without them (file to file) takes neither.\n"
      "Progress shows media time and speed (time=00:01:23.4 speed=41x) on a terminal.\n"
      "Exit status: 0 success, 1 the run failed (no --output file is left), 2 invalid "
      "pipeline or usage, 130 interrupted.");
  return [args] { return run(*args); };
}

}  // namespace skit::cli
