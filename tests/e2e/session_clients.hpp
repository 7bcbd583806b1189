// SPDX-License-Identifier: MPL-2.0
// Clients of `skit serve` for the session tests: the server process (HTTP and gRPC on port 0,
// the ports read from its stderr, working directory the repository root), a small HTTP
// client and a WebSocket client on Boost.Beast, and process accounting (threads, fds, RSS).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <thread>

#include "skit_test_support.hpp"

namespace skit::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;
using namespace std::chrono_literals;

inline const fs::path kRepo = SKIT_SOURCE_DIR;
inline const std::string kOperatorToken = "operator-token-0123456789";
inline const std::string kViewerToken = "viewer-token-0123456789ab";
inline const std::string kAdminToken = "admin-token-0123456789abc";

/// A config with the three roles' tokens, gRPC on port 0, and `extra` appended (whole
/// sections, e.g. "sessions:\n  max_sessions: 2\n").
inline std::string session_config(const std::string& extra = "") {
  return "server:\n"
         "  log_format: json\n"
         "  grpc_listen: 127.0.0.1:0\n"
         "auth:\n"
         "  tokens:\n"
         "    - {name: ci, token: \"" + kOperatorToken + "\", role: operator}\n"
         "    - {name: dashboard, token: \"" + kViewerToken + "\", role: viewer}\n"
         "    - {name: root, token: \"" + kAdminToken + "\", role: admin}\n" + extra;
}

/// `skit serve --config CONFIG --listen 127.0.0.1:0`; a thread collects its stderr.
class SkitServer {
 public:
  explicit SkitServer(const std::string& config_yaml) {
    const std::string config = dir_.file("skit.yaml");
    write_file(config, config_yaml);
    const std::string repo = kRepo.string();
    int err[2];
    if (::pipe2(err, O_CLOEXEC) != 0) {
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // a crashed test leaves no server behind
      const int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(err[1], 2);
      if (::chdir(repo.c_str()) != 0) {
        ::_exit(126);
      }
      ::execl(SKIT_BINARY, SKIT_BINARY, "serve", "--config", config.c_str(), "--listen",
              "127.0.0.1:0", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(err[1]);
    reader_ = std::thread([this, fd = err[0]] {
      char buf[4096];
      ssize_t n = 0;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        std::lock_guard lock(mutex_);
        log_.append(buf, static_cast<std::size_t>(n));
        cv_.notify_all();
      }
      ::close(fd);
      std::lock_guard lock(mutex_);
      eof_ = true;
      cv_.notify_all();
    });
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, 30s, [&] {
      grpc_port_ = port_after("skit serve: grpc listening on 127.0.0.1:");
      http_port_ = port_after("skit serve: listening on http://127.0.0.1:");
      return eof_ || (grpc_port_ > 0 && http_port_ > 0);
    });
  }
  SkitServer(const SkitServer&) = delete;
  SkitServer& operator=(const SkitServer&) = delete;
  ~SkitServer() { stop(); }

  [[nodiscard]] bool up() const { return grpc_port_ > 0 && http_port_ > 0; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int http_port() const { return http_port_; }
  [[nodiscard]] int grpc_port() const { return grpc_port_; }
  std::string log() {
    std::lock_guard lock(mutex_);
    return log_;
  }

  /// SIGTERM, then the exit code (SIGKILL and -1 past `timeout`).
  int stop(std::chrono::milliseconds timeout = 30s) {
    if (pid_ <= 0 || reaped_) {
      return exit_code_;
    }
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        status = -1;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    reaped_ = true;
    exit_code_ = status == -1 ? -1
                              : (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    if (reader_.joinable()) {
      reader_.join();
    }
    return exit_code_;
  }

 private:
  int port_after(const std::string& prefix) const {
    const auto at = log_.find(prefix);
    if (at == std::string::npos) {
      return 0;
    }
    const auto end = log_.find('\n', at);
    if (end == std::string::npos) {
      return 0;
    }
    return std::atoi(log_.substr(at + prefix.size(), end - at - prefix.size()).c_str());
  }

  TempDir dir_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  int grpc_port_ = 0;
  int http_port_ = 0;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string log_;
  bool eof_ = false;
};

// ---------------------------------------------------------------------------------------------
// Process accounting

inline std::size_t count_dir(const std::string& path) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(path, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}
inline std::size_t thread_count(pid_t pid) { return count_dir("/proc/" + std::to_string(pid) + "/task"); }
inline std::size_t fd_count(pid_t pid) { return count_dir("/proc/" + std::to_string(pid) + "/fd"); }
inline long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct HttpResponse {
  int status = 0;  // 0: no response (see error)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string error;

  [[nodiscard]] json body_json() const { return json::parse(body, nullptr, false); }
  [[nodiscard]] std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
  [[nodiscard]] std::string describe() const {
    return "HTTP " + std::to_string(status) + (error.empty() ? "" : " (" + error + ")") + ": " +
           body.substr(0, 2000);
  }
};

/// One request on a fresh connection.
inline HttpResponse http_call(int port, http::verb method, const std::string& target,
                              const std::string& token = kOperatorToken,
                              const std::string& body = "",
                              const std::map<std::string, std::string>& headers = {}) {
  HttpResponse out;
  try {
    net::io_context ioc;
    tcp::socket socket(ioc);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    if (!token.empty()) {
      req.set(http::field::authorization, "Bearer " + token);
    }
    for (const auto& [k, v] : headers) {
      req.set(k, v);
    }
    if (!body.empty() || method == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 << 20);
    http::read(socket, buffer, parser);
    const auto& res = parser.get();
    out.status = res.result_int();
    out.body = res.body();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (char& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      out.headers[name] = std::string(f.value());
    }
    beast::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// WebSocket

/// A client of GET /api/v1/control: the handshake is synchronous; then an io_context thread
/// reads every message (responses by correlation id, events in order) and writes what
/// send() queues. A `silent` client never reads after the handshake (the slow client).
class WsClient {
 public:
  struct Options {
    std::string token = kOperatorToken;
    std::string origin;
    int receive_buffer = 0;  // SO_RCVBUF before connecting; 0: the default
    bool silent = false;     // never read (a stuck client)
  };

  WsClient(int port, Options options) : ws_(ioc_) {
    try {
      auto& socket = ws_.next_layer();
      socket.open(tcp::v4());
      if (options.receive_buffer > 0) {
        socket.set_option(net::socket_base::receive_buffer_size(options.receive_buffer));
      }
      socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
      ws_.set_option(websocket::stream_base::decorator([options](websocket::request_type& req) {
        if (!options.token.empty()) {
          req.set(http::field::authorization, "Bearer " + options.token);
        }
        if (!options.origin.empty()) {
          req.set(http::field::origin, options.origin);
        }
      }));
      ws_.read_message_max(64 << 20);
      websocket::response_type res;
      beast::error_code ec;
      ws_.handshake(res, "127.0.0.1:" + std::to_string(port), "/api/v1/control", ec);
      handshake_status_ = res.result_int();
      if (ec) {
        error_ = ec.message();
        return;
      }
      open_ = true;
    } catch (const std::exception& e) {
      error_ = e.what();
      return;
    }
    if (!options.silent) {
      do_read();
      thread_ = std::thread([this] { ioc_.run(); });
    }
  }
  explicit WsClient(int port) : WsClient(port, Options{}) {}
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;
  ~WsClient() { close(); }

  [[nodiscard]] bool open() const { return open_; }
  [[nodiscard]] int handshake_status() const { return handshake_status_; }
  [[nodiscard]] const std::string& error() const { return error_; }

  /// Sends a raw text message.
  void send_text(std::string text) {
    net::post(ioc_, [this, text = std::move(text)]() mutable {
      outbox_.push_back(std::move(text));
      if (outbox_.size() == 1) {
        do_write();
      }
    });
  }

  /// Sends {type: request, correlation_id, payload}; returns the correlation id.
  std::string send_request(const json& payload) {
    const std::string id = "req-" + std::to_string(++next_id_);
    send_text(json{{"type", "request"}, {"correlation_id", id}, {"payload", payload}}.dump());
    return id;
  }

  /// The response envelope with `correlation_id` (null past the timeout).
  json wait_response(const std::string& correlation_id, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lock(mutex_);
    json out;
    cv_.wait_for(lock, timeout, [&] {
      for (auto it = responses_.begin(); it != responses_.end(); ++it) {
        if (it->value("correlation_id", "") == correlation_id) {
          out = *it;
          responses_.erase(it);
          return true;
        }
      }
      return closed_;
    });
    return out;
  }

  /// Sends a request and returns its response's payload (null on timeout).
  json request(const json& payload, std::chrono::milliseconds timeout = 20s) {
    const json envelope = wait_response(send_request(payload), timeout);
    return envelope.is_object() ? envelope.value("payload", json()) : json();
  }

  /// The next response that has no (or an unknown) correlation id.
  json wait_any_response(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    json out;
    cv_.wait_for(lock, timeout, [&] {
      if (!responses_.empty()) {
        out = responses_.front();
        responses_.pop_front();
        return true;
      }
      return closed_;
    });
    return out;
  }

  /// The first event payload received so far or within `timeout` that `pred` accepts.
  json wait_event(const std::function<bool(const json&)>& pred,
                  std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    json out;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& e : events_) {
        if (pred(e)) {
          out = e;
          return true;
        }
      }
      return closed_;
    });
    return out;
  }

  std::vector<json> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::size_t event_count() {
    std::lock_guard lock(mutex_);
    return events_.size();
  }
  /// Every envelope received, in order (type, correlation_id, payload).
  std::vector<json> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

  /// Waits until the server closes the connection; its close code (0: none or timeout).
  int wait_closed(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return closed_; });
    return closed_ ? close_code_ : 0;
  }

  /// A normal close (or a hard one when the server does not answer).
  void close() {
    if (thread_.joinable()) {
      net::post(ioc_, [this] {
        if (!closed_local_) {
          closed_local_ = true;
          ws_.async_close(websocket::close_code::normal, [this](beast::error_code) {
            beast::error_code ec;
            ws_.next_layer().close(ec);
          });
        }
      });
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      while (!ioc_.stopped() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
      }
      ioc_.stop();
      thread_.join();
    } else if (open_) {
      beast::error_code ec;
      ws_.next_layer().close(ec);
    }
    open_ = false;
  }

  /// Drops the TCP connection without a close frame (a client that vanishes).
  void abort() {
    if (thread_.joinable()) {
      net::post(ioc_, [this] {
        beast::error_code ec;
        ws_.next_layer().close(ec);
      });
      thread_.join();
    } else {
      beast::error_code ec;
      ws_.next_layer().close(ec);
    }
    open_ = false;
  }

 private:
  void do_read() {
    ws_.async_read(in_, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        std::lock_guard lock(mutex_);
        closed_ = true;
        close_code_ = ws_.reason().code;
        cv_.notify_all();
        return;
      }
      json message = json::parse(beast::buffers_to_string(in_.data()), nullptr, false);
      in_.consume(in_.size());
      {
        std::lock_guard lock(mutex_);
        received_.push_back(message);
        if (message.is_object() && message.value("type", "") == "event") {
          events_.push_back(message.value("payload", json()));
        } else {
          responses_.push_back(message);
        }
      }
      cv_.notify_all();
      do_read();
    });
  }

  void do_write() {
    ws_.text(true);
    ws_.async_write(net::buffer(outbox_.front()), [this](beast::error_code ec, std::size_t) {
      outbox_.pop_front();
      if (!ec && !outbox_.empty()) {
        do_write();
      }
    });
  }

  net::io_context ioc_;
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer in_;
  std::deque<std::string> outbox_;
  std::thread thread_;
  bool open_ = false;
  bool closed_local_ = false;
  int handshake_status_ = 0;
  std::string error_;
  std::atomic<int> next_id_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<json> responses_;
  std::vector<json> events_;
  std::vector<json> received_;
  bool closed_ = false;
  int close_code_ = 0;
};

inline bool is_uuid_v4(const std::string& s) {
  static const std::regex re("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(s, re);
}

inline bool is_rfc3339(const std::string& s) {
  static const std::regex re(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$)");
  return std::regex_match(s, re);
}

/// A dynamic pipeline that reads speech.ogg, decodes it, applies a gain and discards it; `gain`
/// (line 16) is the param a test may break.
inline std::string decode_pipeline(const std::string& gain = "1.0") {
  return "mode: dynamic\n"                       // 1
         "nodes:\n"                              // 2
         "  src:\n"                              // 3
         "    kind: core::file_reader\n"         // 4
         "    params:\n"                         // 5
         "      path: samples/audio/speech.ogg\n"  // 6
         "  demux:\n"                            // 7
         "    kind: containers::ogg::demuxer\n"  // 8
         "    needs: src\n"                      // 9
         "  decode:\n"                           // 10
         "    kind: audio::opus::decoder\n"      // 11
         "    needs: demux\n"                    // 12
         "  loud:\n"                             // 13
         "    kind: audio::gain\n"               // 14
         "    params:\n"                         // 15
         "      gain: " + gain + "\n"            // 16
         "    needs: decode\n"                   // 17
         "  sink:\n"                             // 18
         "    kind: core::sink\n"                // 19
         "    needs: loud\n";                    // 20
}

}  // namespace skit::testing
