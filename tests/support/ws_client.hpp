// SPDX-License-Identifier: MPL-2.0
// A WebSocket client of `skit serve`'s control plane (GET /api/v1/control) on Boost.Beast, for
// the end-to-end tests. Header-only.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "http_client.hpp"

namespace skit::testing {

namespace websocket = beast::websocket;
using nlohmann::json;


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

}  // namespace skit::testing
