// SPDX-License-Identifier: MPL-2.0
// skit: the command-line entry point. Each subcommand lives in its own file (commands.hpp);
// this file builds the command line and installs the signal handlers.
#include <csignal>
#include <cstring>

#include "cli_common.hpp"
#include "commands.hpp"

#ifndef SKIT_VERSION
#define SKIT_VERSION "0.0.0"
#endif

namespace {
void on_signal(int /*sig*/) { skit::cli::g_cancel.store(true); }
}  // namespace

int main(int argc, char** argv) {
  using namespace skit::cli;
  setup_logging();
  if (argc >= 2 && std::strcmp(argv[1], "worker") == 0) {
    return run_worker_command(argc, argv);
  }
  CLI::App app("skit - StreamKit C++ media processing engine", "skit");
  app.set_version_flag("-V,--version", "skit " SKIT_VERSION);
  app.require_subcommand(1);
  const std::vector<std::pair<std::string, Command>> commands = {
      {"run", add_run_command(app)},       {"validate", add_validate_command(app)},
      {"nodes", add_nodes_command(app)},   {"serve", add_serve_command(app)},
      {"config", add_config_command(app)}, {"client", add_client_command(app)},
  };
  app.add_subcommand("worker", "(internal) Run as a worker process of a supervisor");
  app.footer(
      "Environment:\n"
      "  SKIT_LOG    log level: trace, debug, info, warn (default), error, critical, off\n"
      "  SKIT_TOKEN  bearer token of `skit client` (or --token)\n"
      "Logs go to stderr: text on a terminal, JSON lines otherwise.\n"
      "`skit COMMAND --help` describes each command.");
  if (const int code = parse_command_line(app, argc, argv); code >= 0) {
    return code;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: let poll() return so the run can tear down
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  for (const auto& [name, run] : commands) {
    if (app.get_subcommand(name)->parsed()) {
      return run();
    }
  }
  return 2;
}
