// SPDX-License-Identifier: MPL-2.0
// The skit subcommands. Each adds itself to the CLI11 app and returns the function that runs it
// once the command line is parsed (its exit code: 0 success, 1 the work failed, 2 usage or an
// invalid document).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace skit::cli {

using Command = std::function<int()>;

Command add_run_command(CLI::App& app);
Command add_validate_command(CLI::App& app);
Command add_nodes_command(CLI::App& app);
Command add_serve_command(CLI::App& app);
Command add_config_command(CLI::App& app);
Command add_client_command(CLI::App& app);

/// `skit worker`: parsed by hand, before anything else (it is not for people).
int run_worker_command(int argc, char** argv);

}  // namespace skit::cli
