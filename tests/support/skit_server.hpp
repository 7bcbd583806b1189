// SPDX-License-Identifier: MPL-2.0
// The real `skit serve` for end-to-end tests: one harness for every suite. The server listens
// on 127.0.0.1:0 (HTTP, and gRPC when the config asks for it); the ports are read from the
// "listening" lines it prints. Its stdout and stderr go to a log file (never a pipe that could
// fill up while a test is busy elsewhere). Header-only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "skit_test_support.hpp"

namespace skit::testing {

using namespace std::chrono_literals;

inline const fs::path kRepo = SKIT_SOURCE_DIR;

struct ServerOptions {
  fs::path cwd;                   // working directory; empty: the repository root
  std::vector<std::string> env;   // NAME=value, ahead of the test's own environment
  std::vector<std::string> args;  // after `serve --listen 127.0.0.1:0 --config FILE`
};

/// `skit serve --listen 127.0.0.1:0 --config FILE [args]`; stopped (SIGTERM, then SIGKILL)
/// when destroyed. A server that could not start (a bad config, a taken port) is not up()
/// and its log says why.
class SkitServer {
 public:
  explicit SkitServer(const std::string& config_yaml, ServerOptions options = {})
      : config_(dir_.file("skit.yaml")), log_(dir_.file("server.log")) {
    write_file(config_, config_yaml);
    // Everything the child needs is prepared before fork (only async-signal-safe calls after).
    const std::string cwd = options.cwd.empty() ? std::string(SKIT_SOURCE_DIR) : options.cwd.string();
    std::vector<std::string> env_strings = options.env;
    for (char** e = environ; *e != nullptr; ++e) {
      env_strings.emplace_back(*e);  // options.env first: the first of a name wins in getenv
    }
    std::vector<char*> env;
    for (auto& e : env_strings) {
      env.push_back(e.data());
    }
    env.push_back(nullptr);
    std::vector<std::string> argv = {SKIT_BINARY, "serve", "--listen", "127.0.0.1:0", "--config",
                                     config_};
    argv.insert(argv.end(), options.args.begin(), options.args.end());
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // a crashed test leaves no server behind
      const int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int null = ::open("/dev/null", O_RDONLY);
      if (log < 0 || null < 0 || ::chdir(cwd.c_str()) != 0) {
        ::_exit(126);
      }
      ::dup2(null, 0);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execve(args[0], args.data(), env.data());
      ::_exit(127);
    }
    // gRPC's line comes before HTTP's: once HTTP listens, both ports are known.
    wait_until(
        [&] {
          const std::string text = read_file(log_);
          http_port_ = port_after(text, "skit serve: listening on http://127.0.0.1:");
          if (const int tls = port_after(text, "skit serve: listening on https://127.0.0.1:"); tls > 0) {
            http_port_ = tls;  // server.tls
            scheme_ = "https";
          }
          grpc_port_ = port_after(text, "skit serve: grpc listening on 127.0.0.1:");
          return http_port_ > 0 || !running();
        },
        30s);
  }
  SkitServer(const SkitServer&) = delete;
  SkitServer& operator=(const SkitServer&) = delete;
  ~SkitServer() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  /// HTTP listens (and gRPC, when the config enables it).
  [[nodiscard]] bool up() const { return http_port_ > 0; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int http_port() const { return http_port_; }
  [[nodiscard]] int port() const { return http_port_; }
  [[nodiscard]] int grpc_port() const { return grpc_port_; }
  [[nodiscard]] std::string url(const std::string& path) const {
    return scheme_ + "://127.0.0.1:" + std::to_string(http_port_) + path;
  }
  [[nodiscard]] std::string log() const { return read_file(log_); }
  /// Sends `sig` to the server (SIGHUP: reload).
  void signal(int sig) const { ::kill(pid_, sig); }
  [[nodiscard]] const std::string& config_path() const { return config_; }

  bool running() {
    if (exited_ || pid_ <= 0) {
      return false;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    return true;
  }

  /// SIGTERM, then waits for the exit; returns the exit code (-1: killed after `timeout`).
  int stop(std::chrono::milliseconds timeout = 30s) {
    if (running()) {
      ::kill(pid_, SIGTERM);
    }
    if (!wait_until([&] { return !running(); }, timeout)) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      exited_ = true;
      exit_code_ = -1;
    }
    return exit_code_;
  }

 private:
  static int port_after(const std::string& text, const std::string& prefix) {
    const auto at = text.find(prefix);
    if (at == std::string::npos || text.find('\n', at) == std::string::npos) {
      return 0;
    }
    return std::atoi(text.c_str() + at + prefix.size());
  }

  TempDir dir_;
  std::string config_;
  std::string log_;
  pid_t pid_ = -1;
  int http_port_ = 0;
  std::string scheme_ = "http";
  int grpc_port_ = 0;
  bool exited_ = false;
  int exit_code_ = -1;
};

}  // namespace skit::testing
