// SPDX-License-Identifier: MPL-2.0
// The real `skit serve` for end-to-end tests, and a curl client: one curl process per request,
// its status, headers and body read back (headers in lower case). Header-only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "skit_test_support.hpp"

namespace skit::testing {

using namespace std::chrono_literals;

inline std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// The server process

/// `skit serve --listen 127.0.0.1:0 --config FILE`, in the repository root unless `cwd` is
/// given, its stderr and stdout in a log file (never a pipe that could fill up while the test
/// is busy elsewhere).
class ServeProcess {
 public:
  ServeProcess(const TempDir& dir, const std::string& config_yaml, const fs::path& cwd = {},
               const std::vector<std::string>& extra_env = {})
      : config_(dir.file("skit.yaml")), log_(dir.file("server.log")) {
    write_file(config_, config_yaml);
    // Everything the child needs is prepared before fork (only async-signal-safe calls after).
    const std::string repo = cwd.empty() ? std::string(SKIT_SOURCE_DIR) : cwd.string();
    std::vector<std::string> env_strings = extra_env;
    for (char** e = environ; *e != nullptr; ++e) {
      env_strings.emplace_back(*e);  // extra_env first: the first of a name wins in getenv
    }
    std::vector<char*> env;
    for (auto& e : env_strings) {
      env.push_back(e.data());
    }
    env.push_back(nullptr);
    std::vector<std::string> argv = {SKIT_BINARY,   "serve",    "--listen",
                                     "127.0.0.1:0", "--config", config_};
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int null = ::open("/dev/null", O_RDONLY);
      if (log < 0 || null < 0 || ::chdir(repo.c_str()) != 0) {
        ::_exit(126);
      }
      ::dup2(null, 0);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execve(args[0], args.data(), env.data());
      ::_exit(127);
    }
    const std::string marker = "skit serve: listening on http://127.0.0.1:";
    wait_until(
        [&] {
          const std::string text = read_file(log_);
          const auto at = text.find(marker);
          if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
            port_ = std::atoi(text.c_str() + at + marker.size());
            return true;
          }
          return !running();
        },
        15s);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  ~ServeProcess() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  [[nodiscard]] std::string log() const { return read_file(log_); }

  bool running() {
    if (exited_) {
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

  /// SIGTERM, then waits for the exit; returns the exit code (-1: did not exit in time).
  int stop(std::chrono::milliseconds timeout = 30s) {
    if (running()) {
      ::kill(pid_, SIGTERM);
    }
    if (!wait_until([&] { return !running(); }, timeout)) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      exited_ = true;
      return -1;
    }
    return exit_code_;
  }

 private:
  std::string config_;
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool exited_ = false;
  int exit_code_ = -1;
};

// ---------------------------------------------------------------------------------------------
// The client: one curl process per request

struct Response {
  int status = 0;                              // 0: no HTTP response (see curl_exit and err)
  std::map<std::string, std::string> headers;  // of the final response; names in lower case
  std::string raw_headers;  // every response head curl saw (interim 100 Continue included)
  std::string body;
  std::string body_path;
  int curl_exit = -1;
  std::string err;
  double seconds = 0;

  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(lower(name));
    return it == headers.end() ? "" : it->second;
  }
  [[nodiscard]] nlohmann::json body_json() const {
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  }
  /// For assertion messages.
  [[nodiscard]] std::string describe() const {
    return "HTTP " + std::to_string(status) + " (curl exit " + std::to_string(curl_exit) + ": " +
           err + ")\n" + raw_headers + body.substr(0, 2000);
  }
};

/// A curl process started at construction; finish() waits for it and reads the response.
class Curl {
 public:
  Curl(const TempDir& dir, const std::vector<std::string>& args) {
    static std::atomic<int> counter{0};
    const std::string id = std::to_string(counter++);
    body_ = dir.file("response-" + id + ".body");
    head_ = dir.file("response-" + id + ".head");
    std::vector<std::string> argv = {
        find_tool("curl"), "-sS", "--max-time", "120", "-o", body_, "-D", head_, "-w",
        "%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    t0_ = std::chrono::steady_clock::now();
    process_ = std::make_unique<Process>(argv);
  }

  Response finish(std::chrono::milliseconds timeout = 150s) {
    process_->wait(timeout);
    Response r;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    r.curl_exit = process_->exit_code();
    r.err = process_->err();
    r.status = std::atoi(process_->out().c_str());
    r.body_path = body_;
    r.body = read_file(body_);
    r.raw_headers = read_file(head_);
    std::istringstream lines(r.raw_headers);
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (line.rfind("HTTP/", 0) == 0) {
        r.headers.clear();
        continue;
      }
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        r.headers[lower(line.substr(0, colon))] = value;
      }
    }
    return r;
  }

 private:
  std::string body_;
  std::string head_;
  std::chrono::steady_clock::time_point t0_;
  std::unique_ptr<Process> process_;
};

}  // namespace skit::testing
