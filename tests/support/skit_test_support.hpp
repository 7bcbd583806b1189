// SPDX-License-Identifier: MPL-2.0
// Helpers for tests that run the real skit binary: processes, temp dirs, shm and process
// accounting. Header-only so every test binary can use it.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace skit::testing {

namespace fs = std::filesystem;

/// A per-test temporary directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "skit-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The contents of a /proc file, or "" if the process is gone. Plain read(2): libstdc++'s
/// filebuf throws when a read fails with ESRCH (the process exited between open and read).
inline std::string read_proc_file(const std::string& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return out;
  }
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

inline std::string random_bytes(std::size_t n, unsigned seed = 42) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = rng();
    for (std::size_t k = 0; k < 8 && i + k < n; ++k) {
      out[i + k] = static_cast<char>((v >> (8 * k)) & 0xFF);
    }
  }
  return out;
}

/// A child process with captured stdout/stderr.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out_pipe[1], 1);
      ::dup2(err_pipe[1], 2);
      std::vector<char*> args;
      for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
      }
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    out_fd_ = out_pipe[0];
    err_fd_ = err_pipe[0];
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      wait(std::chrono::seconds(10));
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  [[nodiscard]] pid_t pid() const { return pid_; }

  /// Waits for exit, draining output; false on timeout (the process is then killed).
  bool wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      drain(20);
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        drain(0);
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        exit_code_ = -1;
        return false;
      }
    }
  }

  [[nodiscard]] int exit_code() const { return exit_code_; }
  [[nodiscard]] const std::string& out() const { return out_; }
  [[nodiscard]] const std::string& err() const { return err_; }

 private:
  void drain(int timeout_ms) {
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    if (::poll(fds, 2, timeout_ms) <= 0) {
      return;
    }
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP)) != 0) {
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n > 0) {
          (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
        }
      }
    }
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::string out_;
  std::string err_;
};

/// Shared-memory segments created by the supervisor with this pid.
inline std::vector<std::string> shm_segments_of(pid_t pid) {
  std::vector<std::string> out;
  const std::string prefix = "skit-" + std::to_string(pid) + "-";
  for (const auto& e : fs::directory_iterator("/dev/shm")) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) {
      out.push_back(name);
    }
  }
  return out;
}

/// Live processes whose parent is `parent`.
inline std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close_paren = line.rfind(')');
    if (close_paren == std::string::npos) {
      continue;
    }
    std::istringstream rest(line.substr(close_paren + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != 'Z') {
      out.push_back(static_cast<pid_t>(std::stoi(name)));
    }
  }
  return out;
}

/// Processes running `skit worker` for the supervisor `supervisor` (found through the control
/// endpoint in their command line, which survives re-parenting), or for any supervisor.
inline std::vector<pid_t> skit_workers(pid_t supervisor = 0) {
  const std::string marker = "ipc://@skit-" + std::to_string(supervisor) + "-";
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const std::string cmdline = read_proc_file((e.path() / "cmdline").string());
    if (cmdline.find(std::string(SKIT_BINARY) + '\0' + "worker") != std::string::npos &&
        (supervisor == 0 || cmdline.find(marker) != std::string::npos)) {
      out.push_back(static_cast<pid_t>(std::stoi(name)));
    }
  }
  return out;
}

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

/// Runs the skit binary with `args` to completion.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  double seconds = 0;
};

inline RunResult run_skit(const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  std::vector<std::string> argv = {SKIT_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto t0 = std::chrono::steady_clock::now();
  Process p(argv);
  p.wait(timeout);
  RunResult r{p.exit_code(), p.out(), p.err(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
  EXPECT_TRUE(shm_segments_of(p.pid()).empty()) << "shared memory left behind";
  const pid_t pid = p.pid();
  EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, std::chrono::seconds(5)))
      << "worker processes outlived their supervisor";
  return r;
}

}  // namespace skit::testing
