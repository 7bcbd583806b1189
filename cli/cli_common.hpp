// SPDX-License-Identifier: MPL-2.0
// What the skit subcommands share: logging, the cancel flag set by SIGINT/SIGTERM, reading a
// pipeline document (a file or '-' for stdin), number and time formats, and CLI11 validators
// whose messages give the accepted range.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdint>
#include <string>

#include "skit/core/status.hpp"

namespace skit::cli {

/// Set by SIGINT/SIGTERM; runs and the server watch it.
extern std::atomic<bool> g_cancel;
/// Counts SIGHUPs while `skit serve` runs (its TLS certificate is read again on each).
extern std::atomic<unsigned> g_reload;

/// The default logger on stderr: text on a terminal, JSON lines otherwise; SKIT_LOG sets the
/// level (an unknown level is reported, not silently taken as "off").
void setup_logging();
/// Switches stderr logging to "json", "text" or "auto" (server.log_format).
void set_log_format(const std::string& format);
/// SKIT_LOG was set: the level was chosen by the user.
bool log_level_from_env();

std::string self_executable();

/// The text of a pipeline document; "-" reads standard input.
Result<std::string> read_document(const std::string& path);

std::string human_bytes(std::uint64_t bytes);
/// 83.4 -> "00:01:23.4".
std::string media_clock(double seconds);

/// An integer option within [lo, hi]: "must be an integer from 2 to 4096 (got 'abc')".
CLI::Validator integer_in(long long lo, long long hi);

/// Parses `argv` into `app`; returns -1 to go on, or the exit code (0 after --help or
/// --version, 2 after a usage error, which is printed with a pointer to --help).
int parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace skit::cli
