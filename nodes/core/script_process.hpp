// SPDX-License-Identifier: MPL-2.0
// The Node.js child of a core::script node: spawned in prepare() (the worker may not exec once
// sandboxed) under a sandbox of its own, and spoken to in length-prefixed frames over two
// pipes. See docs/scripts.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "skit/core/files.hpp"
#include "skit/core/status.hpp"

namespace skit::nodes::script {

/// Frame types, shared with script_runner.js.
enum class Frame : std::uint8_t {
  kInit = 1,
  kPacket = 2,
  kFetchResult = 3,
  kTune = 4,
  kReady = 10,
  kResult = 11,
  kLog = 12,
  kFetch = 13,
  kTelemetry = 14,
};

struct ProcessOptions {
  std::string node_binary;  // empty: `node` on PATH
  std::uint32_t heap_limit_mb = 64;
  std::vector<std::string> extra_args;  // tests: run code other than the embedded runner
};

/// What the sandbox of the child could engage (for the log).
struct SandboxReport {
  int landlock_abi = 0;  // 0: Landlock unavailable (the child runs degraded)
};

/// The source of script_runner.js, embedded at build time.
std::string_view runner_source();

/// Locates `node` on PATH (or `hint` when not empty); errors say what to install.
Result<std::string> find_node(const std::string& hint);

class ScriptProcess {
 public:
  ScriptProcess() = default;
  ScriptProcess(const ScriptProcess&) = delete;
  ScriptProcess& operator=(const ScriptProcess&) = delete;
  ~ScriptProcess();

  /// Forks and execs Node.js with the runner (or options.extra_args), sandboxed.
  Status spawn(const ProcessOptions& options, SandboxReport* report);

  Status send(Frame type, std::string_view payload);
  /// The next frame, or kDeadlineExceeded at `deadline`, or kUnavailable if the child is gone.
  struct Received {
    Frame type;
    std::string payload;
  };
  Result<Received> receive(std::chrono::steady_clock::time_point deadline);

  /// Resident set size of the child in bytes (0 when unknown).
  [[nodiscard]] std::uint64_t rss_bytes() const;
  /// SIGKILLs the child (it stays a zombie until the worker ends if wait4 is refused).
  void kill();
  [[nodiscard]] bool alive() const { return alive_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  Status read_exact(char* out, std::size_t n, std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  bool alive_ = false;
  UniqueFd to_child_;
  UniqueFd from_child_;
  UniqueFd statm_;
  std::string buffer_;  // bytes read ahead
};

}  // namespace skit::nodes::script
