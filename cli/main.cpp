// SPDX-License-Identifier: MPL-2.0
// skit: the command-line entry point (run, validate, nodes, worker).
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <string>
#include <vector>

#include "skit/core/registry.hpp"
#include "skit/gateway/config.hpp"
#include "skit/gateway/server.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"
#include "skit/supervisor/run.hpp"
#include "skit/worker/worker.hpp"

#ifndef SKIT_VERSION
#define SKIT_VERSION "0.0.0"
#endif

namespace {

using skit::ErrorCode;
using skit::Result;
using skit::Status;

std::atomic<bool> g_cancel{false};

void on_signal(int /*sig*/) { g_cancel.store(true); }

constexpr const char* kMainHelp = R"(skit - StreamKit C++ media processing engine

Usage: skit <command> [options]

Commands:
  run PIPELINE.yml     Run a pipeline to completion (oneshot)
  validate PIPELINE.yml
                       Check a pipeline without running it
  nodes                List every node kind with its pins and params
  serve                Run the server: StreamKit's HTTP API (oneshot /api/v1/process,
                       dynamic sessions, WebSocket control plane), the gRPC API and
                       the web UI at / (docs/ui.md)
  config check FILE    Check a server configuration file
  worker               (internal) Run as a worker process of a supervisor

Options:
  -h, --help           Show help (also after a command: skit run --help)
  -V, --version        Print the version

Environment:
  SKIT_LOG             Log level: trace, debug, info, warn (default), error
)";

constexpr const char* kRunHelp = R"(Usage: skit run PIPELINE.yml [options]

Runs a pipeline to completion. streamkit::http_input reads --input and
streamkit::http_output writes --output ('-' is stdin/stdout).

Options:
  -i, --input FILE        Media for streamkit::http_input ('-' = stdin)
  -o, --output FILE       Destination of streamkit::http_output ('-' = stdout)
      --placement POLICY  per-node (a worker process per node) or grouped
                          (one worker per pipeline; default)
      --stats FILE        Write per-node statistics as JSON ('-' = stdout)
      --ring-depth N      Packets each connection buffers (default 32)
      --node-timeout MS   Kill a worker whose node is stuck in one call this
                          long (default 30000)
      --no-sandbox        Do not confine workers (debugging, sanitizer builds)
  -q, --quiet             No progress line
  -h, --help              Show this help

Exit status: 0 success, 1 the run failed, 2 invalid pipeline or usage.
)";

constexpr const char* kValidateHelp = R"(Usage: skit validate PIPELINE.yml

Compiles and type-checks a pipeline without running it. Every error is
printed as FILE:LINE:COLUMN: error: ..., all at once.
Exit status: 0 valid, 2 invalid.
)";

constexpr const char* kNodesHelp = R"(Usage: skit nodes [--json] [KIND]

Lists every node kind with its pins and params (types, defaults, ranges).
  --json    Print the schema as JSON (what GET /api/v1/schema/nodes serves)
  KIND      Show only this kind
)";

constexpr const char* kServeHelp = R"(Usage: skit serve [--config skit.yaml] [--listen HOST:PORT]
                  [--grpc-listen HOST:PORT] [--no-sandbox]

Runs the server: StreamKit's HTTP API (GET /healthz, /metrics, /api/v1/config,
/api/v1/permissions, /api/v1/schema/nodes, /api/v1/schema/packets,
/api/v1/samples/oneshot[/{id}], POST /api/v1/process), dynamic sessions
(POST/GET /api/v1/sessions, GET /api/v1/sessions/{id}/pipeline,
DELETE /api/v1/sessions/{id}, the WebSocket control plane GET /api/v1/control;
docs/sessions.md) and the gRPC API (skit.v1.Control, grpc.health.v1.Health,
reflection; docs/grpc.md). Every config key is documented in
docs/configuration.md. Port 0 picks a free port; the chosen ones are printed
on stderr ("skit serve: listening on http://HOST:PORT", "skit serve: grpc
listening on HOST:PORT").
SIGINT/SIGTERM stop accepting, cancel running pipelines, close WebSocket
clients, destroy every session and exit.

Options:
  -c, --config FILE       Configuration file (YAML); defaults apply without one
      --listen ADDR       HTTP address (default 127.0.0.1:4545)
      --grpc-listen ADDR  gRPC address (default 127.0.0.1:4546; "" disables gRPC)
      --no-sandbox        Do not confine workers (debugging, sanitizer builds)
  -h, --help              Show this help
)";

constexpr const char* kConfigHelp = R"(Usage: skit config check FILE

Checks a server configuration file: every error with its line, all at once.
Exit status: 0 valid, 2 invalid.
)";

constexpr const char* kWorkerHelp = R"(Usage: skit worker --control ENDPOINT --worker-id N --parent PID

Internal: the supervisor starts workers with this command. A worker receives
its nodes over ZeroMQ, maps their shared-memory rings, engages its sandbox and
runs them.
)";

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "-h" || a == "--help") {
      return true;
    }
  }
  return false;
}

void setup_logging() {
  auto logger = spdlog::stderr_color_mt("skit");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern(isatty(STDERR_FILENO) ? "%^%L%$ %H:%M:%S.%e [%n] %v"
                                            : R"({"ts":"%Y-%m-%dT%H:%M:%S.%f","level":"%l","logger":"%n","msg":"%v"})");
  const char* level = std::getenv("SKIT_LOG");
  spdlog::set_level(level != nullptr ? spdlog::level::from_str(level) : spdlog::level::warn);
}

/// Reads --input from a file descriptor.
class FdSource final : public skit::HostByteSource {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  Result<std::size_t> read(std::span<std::byte> buffer) override {
    while (true) {
      const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
      if (n >= 0) {
        return static_cast<std::size_t>(n);
      }
      if (errno != EINTR) {
        return Status(ErrorCode::kInvalidArgument, std::string("reading input: ") +
                                                       std::strerror(errno));
      }
    }
  }

 private:
  int fd_;
};

/// Writes --output to a file descriptor.
class FdSink final : public skit::HostByteSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  Status write(std::span<const std::byte> bytes) override {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return Status(ErrorCode::kUnavailable, std::string("writing output: ") +
                                                   std::strerror(errno));
      }
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return Status::ok();
  }
  Status close() override { return Status::ok(); }

 private:
  int fd_;
};

Result<skit::supervisor::CompiledPipeline> load_pipeline(const std::string& path) {
  auto text = skit::supervisor::read_text_file(path);
  if (!text) {
    return text.status();
  }
  return skit::supervisor::compile_pipeline_yaml(*text);
}

std::string self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("skit") : p.string();
}

std::string human_bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (1ULL << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  }
  return buf;
}

int cmd_run(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::fputs(kRunHelp, stdout);
    return 0;
  }
  std::string pipeline_path;
  std::string input;
  std::string output;
  std::string stats_path;
  bool quiet = false;
  skit::supervisor::RunOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* name) -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "skit run: %s needs a value\n", name);
        return std::nullopt;
      }
      return args[++i];
    };
    if (a == "-i" || a == "--input") {
      auto v = value("--input");
      if (!v) return 2;
      input = *v;
    } else if (a == "-o" || a == "--output") {
      auto v = value("--output");
      if (!v) return 2;
      output = *v;
    } else if (a == "--stats") {
      auto v = value("--stats");
      if (!v) return 2;
      stats_path = *v;
    } else if (a == "--placement") {
      auto v = value("--placement");
      if (!v) return 2;
      auto p = skit::supervisor::parse_placement(*v);
      if (!p) {
        std::fprintf(stderr, "skit run: %s\n", p.status().message().c_str());
        return 2;
      }
      options.placement = *p;
    } else if (a == "--ring-depth") {
      auto v = value("--ring-depth");
      if (!v) return 2;
      options.ring_capacity = static_cast<std::uint32_t>(std::max(2L, std::atol(v->c_str())));
    } else if (a == "--node-timeout") {
      auto v = value("--node-timeout");
      if (!v) return 2;
      options.node_timeout = std::chrono::milliseconds(std::max(1L, std::atol(v->c_str())));
    } else if (a == "--no-sandbox") {
      options.sandbox.enabled = false;
    } else if (a == "-q" || a == "--quiet") {
      quiet = true;
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      std::fprintf(stderr, "skit run: unknown option '%s' (see skit run --help)\n", a.c_str());
      return 2;
    } else if (pipeline_path.empty()) {
      pipeline_path = a;
    } else {
      std::fprintf(stderr, "skit run: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (pipeline_path.empty()) {
    std::fputs(kRunHelp, stderr);
    return 2;
  }
  auto compiled = load_pipeline(pipeline_path);
  if (!compiled) {
    std::fprintf(stderr, "skit: %s\n", compiled.status().to_string().c_str());
    return 2;
  }
  if (!compiled->ok()) {
    std::fputs(compiled->error_report(pipeline_path).c_str(), stderr);
    return 2;
  }
  const auto& pipeline = compiled->pipeline;
  bool has_http_input = false;
  bool has_http_output = false;
  for (const auto& n : pipeline.nodes()) {
    has_http_input = has_http_input || n.kind() == "streamkit::http_input";
    has_http_output = has_http_output || n.kind() == "streamkit::http_output";
  }
  if (has_http_input && input.empty()) {
    std::fprintf(stderr, "skit run: the pipeline reads streamkit::http_input: pass --input FILE "
                         "(or - for stdin)\n");
    return 2;
  }
  if (has_http_output && output.empty()) {
    std::fprintf(stderr, "skit run: the pipeline writes streamkit::http_output: pass --output "
                         "FILE (or - for stdout)\n");
    return 2;
  }

  int in_fd = -1;
  int out_fd = -1;
  if (!input.empty()) {
    in_fd = input == "-" ? STDIN_FILENO : ::open(input.c_str(), O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) {
      std::fprintf(stderr, "skit run: cannot open input '%s': %s\n", input.c_str(),
                   std::strerror(errno));
      return 2;
    }
  }
  if (!output.empty()) {
    out_fd = output == "-" ? STDOUT_FILENO
                           : ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      std::fprintf(stderr, "skit run: cannot create output '%s': %s\n", output.c_str(),
                   std::strerror(errno));
      return 2;
    }
  }
  FdSource source(in_fd);
  FdSink sink(out_fd);
  options.input = in_fd >= 0 ? &source : nullptr;
  options.output = out_fd >= 0 ? &sink : nullptr;
  options.worker_executable = self_executable();
  options.cancel = &g_cancel;
  const bool show_progress = !quiet && isatty(STDERR_FILENO) != 0;
  if (show_progress) {
    options.on_progress = [](const skit::supervisor::RunProgress& p) {
      if (p.elapsed_seconds < 1.0) {
        return;  // short runs print nothing
      }
      std::fprintf(stderr, "\r\033[K  skit: %s in, %s out, %zu worker(s), %.1f s",
                   human_bytes(p.bytes_in).c_str(), human_bytes(p.bytes_out).c_str(), p.workers,
                   p.elapsed_seconds);
      std::fflush(stderr);
    };
  }

  auto report = skit::supervisor::run_pipeline(pipeline, options);
  if (show_progress && report.wall_seconds >= 1.0) {
    std::fputs("\r\033[K", stderr);
  }
  if (in_fd > STDERR_FILENO) {
    ::close(in_fd);
  }
  if (out_fd > STDERR_FILENO) {
    ::close(out_fd);
  }
  if (!stats_path.empty()) {
    const std::string json = report.to_json(pipeline.name());
    if (stats_path == "-") {
      std::fputs((json + "\n").c_str(), stdout);
    } else if (FILE* f = std::fopen(stats_path.c_str(), "w")) {
      std::fputs((json + "\n").c_str(), f);
      std::fclose(f);
    } else {
      std::fprintf(stderr, "skit run: cannot write stats to '%s'\n", stats_path.c_str());
    }
  }
  if (!report.status.is_ok()) {
    std::fprintf(stderr, "skit run: %s: %s\n", pipeline_path.c_str(),
                 report.status.to_string().c_str());
    return report.status.code() == ErrorCode::kCancelled ? 130 : 1;
  }
  return 0;
}

int cmd_validate(const std::vector<std::string>& args) {
  if (wants_help(args) || args.size() != 1) {
    std::fputs(kValidateHelp, wants_help(args) ? stdout : stderr);
    return wants_help(args) ? 0 : 2;
  }
  auto compiled = load_pipeline(args[0]);
  if (!compiled) {
    std::fprintf(stderr, "skit: %s\n", compiled.status().to_string().c_str());
    return 2;
  }
  if (!compiled->ok()) {
    std::fputs(compiled->error_report(args[0]).c_str(), stderr);
    std::fprintf(stderr, "%zu error(s)\n", compiled->errors.size());
    return 2;
  }
  const auto& p = compiled->pipeline;
  std::printf("%s: valid (%d nodes, %d connections, mode %s)\n", args[0].c_str(), p.nodes_size(),
              p.connections_size(), p.mode() == skit::v1::PIPELINE_MODE_ONESHOT ? "oneshot" : "dynamic");
  return 0;
}

int cmd_nodes(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::fputs(kNodesHelp, stdout);
    return 0;
  }
  bool json = false;
  std::string only;
  for (const auto& a : args) {
    if (a == "--json") {
      json = true;
    } else {
      only = a;
    }
  }
  const auto all = skit::NodeRegistry::builtin().all();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto* d : all) {
      if (only.empty() || d->kind == only) {
        out.push_back(d->to_json());
      }
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  bool found = false;
  for (const auto* d : all) {
    if (!only.empty() && d->kind != only) {
      continue;
    }
    found = true;
    std::printf("%s  [%s]%s\n  %s\n", d->kind.c_str(), d->category.c_str(),
                d->execution == skit::NodeExecution::kHost ? "  (host-side)" : "",
                d->summary.c_str());
    for (const auto& in : d->inputs) {
      std::string types;
      for (const auto& t : in.accepts) {
        types += (types.empty() ? "" : " | ") + skit::to_string(t);
      }
      std::printf("  in  %-10s %s%s\n", in.name.c_str(), types.c_str(),
                  in.cardinality == skit::Cardinality::kDynamic ? "  (in_0, in_1, ...)" : "");
    }
    for (const auto& out : d->outputs) {
      std::printf("  out %-10s %s\n", out.name.c_str(), skit::to_string(out.produces).c_str());
    }
    for (const auto& f : d->params->fields()) {
      const auto num = [](double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", v);
        return std::string(buf);
      };
      std::string extra;
      if (f.min || f.max) {
        extra += "  range " + (f.min ? num(*f.min) : std::string("-inf")) + ".." +
                 (f.max ? num(*f.max) : std::string("inf"));
      }
      if (!f.choices.empty()) {
        std::string choices;
        for (const auto& c : f.choices) {
          choices += (choices.empty() ? "" : "|") + c;
        }
        extra += "  one of " + choices;
      }
      if (f.tunable) {
        extra += "  tunable";
      }
      static constexpr const char* kTypes[] = {"bool", "integer", "number", "string", "object"};
      std::printf("  param %-22s %-7s %s%s\n      %s\n", f.name.c_str(),
                  kTypes[static_cast<int>(f.type)],
                  f.required ? "required" : ("default " + f.default_value.dump()).c_str(),
                  extra.c_str(), f.doc.c_str());
    }
    std::printf("\n");
  }
  if (!found) {
    std::fprintf(stderr, "skit nodes: unknown kind '%s'\n", only.c_str());
    return 2;
  }
  return 0;
}

int cmd_config(const std::vector<std::string>& args) {
  if (wants_help(args) || args.size() != 2 || args[0] != "check") {
    std::fputs(kConfigHelp, wants_help(args) ? stdout : stderr);
    return wants_help(args) ? 0 : 2;
  }
  std::vector<skit::Status> errors;
  auto cfg = skit::gateway::load_config(args[1], &errors);
  if (!cfg) {
    if (errors.empty()) {
      errors.push_back(cfg.status());
    }
    for (const auto& e : errors) {
      std::fprintf(stderr, "%s:%d:%d: error: %s\n", args[1].c_str(), e.where().line,
                   e.where().column, e.message().c_str());
    }
    return 2;
  }
  if (auto s = skit::gateway::check_listen_policy(*cfg); !s.is_ok()) {
    std::fprintf(stderr, "%s: error: %s\n", args[1].c_str(), s.message().c_str());
    return 2;
  }
  std::printf("%s: valid (listen %s, %zu token(s), placement %s)\n", args[1].c_str(),
              cfg->listen.c_str(), cfg->tokens.size(),
              std::string(skit::supervisor::placement_name(cfg->engine.placement)).c_str());
  return 0;
}

int cmd_serve(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::fputs(kServeHelp, stdout);
    return 0;
  }
  std::string config_path;
  std::string listen;
  std::optional<std::string> grpc_listen;
  bool no_sandbox = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "-c" || args[i] == "--config") && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (args[i] == "--listen" && i + 1 < args.size()) {
      listen = args[++i];
    } else if (args[i] == "--grpc-listen" && i + 1 < args.size()) {
      grpc_listen = args[++i];
    } else if (args[i] == "--no-sandbox") {
      no_sandbox = true;
    } else {
      std::fprintf(stderr, "skit serve: unexpected argument '%s' (see skit serve --help)\n",
                   args[i].c_str());
      return 2;
    }
  }
  skit::gateway::ServerConfig cfg;
  if (!config_path.empty()) {
    std::vector<skit::Status> errors;
    auto loaded = skit::gateway::load_config(config_path, &errors);
    if (!loaded) {
      if (errors.empty()) {
        errors.push_back(loaded.status());
      }
      for (const auto& e : errors) {
        std::fprintf(stderr, "%s:%d:%d: error: %s\n", config_path.c_str(), e.where().line,
                     e.where().column, e.message().c_str());
      }
      return 2;
    }
    cfg = *loaded;
  }
  if (!listen.empty()) {
    cfg.listen = listen;
  }
  if (grpc_listen) {
    cfg.grpc_listen = *grpc_listen;
  }
  if (no_sandbox) {
    cfg.engine.sandbox.enabled = false;
  }
  if (cfg.log_format == "json" || (cfg.log_format == "auto" && !isatty(STDERR_FILENO))) {
    spdlog::set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%f","level":"%l","logger":"%n","msg":"%v"})");
  } else if (cfg.log_format == "text") {
    spdlog::set_pattern("%^%L%$ %H:%M:%S.%e [%n] %v");
  }
  if (std::getenv("SKIT_LOG") == nullptr) {
    spdlog::set_level(spdlog::level::info);
  }
  cfg.engine.worker_executable = self_executable();
  skit::supervisor::Engine engine(cfg.engine);
  return skit::gateway::serve(cfg, engine, g_cancel);
}

int cmd_worker(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::fputs(kWorkerHelp, stdout);
    return 0;
  }
  skit::worker::WorkerArgs wa;
  for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--parent") {
      // Never outlive the supervisor: armed here (the supervisor spawns without fork), then
      // checked, in case the supervisor died before this line.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != static_cast<pid_t>(std::atol(args[i + 1].c_str()))) {
        return 127;
      }
    } else if (args[i] == "--control") {
      wa.control_endpoint = args[i + 1];
    } else if (args[i] == "--worker-id") {
      wa.worker_id = static_cast<unsigned>(std::atoi(args[i + 1].c_str()));
    }
  }
  if (wa.control_endpoint.empty()) {
    std::fputs(kWorkerHelp, stderr);
    return 2;
  }
  return skit::worker::run_worker(wa);
}

}  // namespace

int main(int argc, char** argv) {
  setup_logging();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(kMainHelp, stderr);
    return 2;
  }
  const std::string command = args.front();
  args.erase(args.begin());
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kMainHelp, stdout);
    return 0;
  }
  if (command == "-V" || command == "--version") {
    std::printf("skit %s\n", SKIT_VERSION);
    return 0;
  }
  if (command == "worker") {
    return cmd_worker(args);
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: let poll() return so the run can tear down
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  if (command == "run") {
    return cmd_run(args);
  }
  if (command == "validate") {
    return cmd_validate(args);
  }
  if (command == "nodes") {
    return cmd_nodes(args);
  }
  if (command == "serve") {
    return cmd_serve(args);
  }
  if (command == "config") {
    return cmd_config(args);
  }
  std::fprintf(stderr, "skit: unknown command '%s' (see skit --help)\n", command.c_str());
  return 2;
}
