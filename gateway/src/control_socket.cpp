// SPDX-License-Identifier: MPL-2.0
#include "control_socket.hpp"

#include "skit/gateway/session_json.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <deque>
#include <thread>

#include "control_plane.hpp"

#ifndef SKIT_VERSION
#define SKIT_VERSION "0.0.0"
#endif

namespace skit::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;

namespace {

/// Responses queued for a client that does not read them before its requests stop being
/// read (then TCP pushes back on the client).
constexpr std::size_t kMaxQueuedResponses = 8;
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
/// A ping after half of it without a byte from the client; the connection closes after it.
constexpr auto kIdleTimeout = std::chrono::seconds(30);
/// How long a closing client gets to answer the close frame.
constexpr auto kCloseGrace = std::chrono::seconds(2);

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

class ControlSocket {
 public:
  ControlSocket(const Caller& caller, const ServerConfig& config, supervisor::SessionManager& sessions,
                ControlSockets& registry)
      : ws_(ioc_),
        close_timer_(ioc_),
        plane_(sessions, caller, config.max_config_bytes),
        caller_(caller),
        sessions_(sessions),
        registry_(registry) {}
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;
  ~ControlSocket() {
    stop_pump();
    if (pump_.joinable()) {
      pump_.join();
    }
  }

  /// Takes the connection over from `socket` and serves it until it ends.
  void run(tcp::socket& socket, const http::request<http::empty_body>& request) {
    beast::error_code ec;
    const auto protocol = socket.local_endpoint(ec).protocol();
    const int fd = ec ? -1 : socket.release(ec);
    if (ec || fd < 0) {
      return;
    }
    ws_.next_layer().assign(protocol, fd, ec);
    if (ec) {
      ::close(fd);
      return;
    }
    ws_.set_option(websocket::stream_base::timeout{kHandshakeTimeout, kIdleTimeout,
                                                   /*keep_alive_pings=*/true});
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "skit/" SKIT_VERSION);
    }));
    ws_.read_message_max(kMaxControlMessageBytes);
    // Subscribed before the upgrade is answered: a client that has its 101 sees every event
    // caused from then on (they wait in the subscription until the handshake is done).
    subscription_ = sessions_.subscribe();
    ws_.async_accept(request, [this](beast::error_code e) { on_accept(e); });
    ioc_.run();
    stop_pump();
    if (pump_.joinable()) {
      pump_.join();
    }
  }

  /// From any thread: close with "going away" (the server is stopping).
  void close_async() {
    net::post(ioc_, [this] { begin_close(); });
  }

 private:
  struct Outgoing {
    std::string text;
    bool event = false;
  };

  void on_accept(beast::error_code ec) {
    if (ec) {
      spdlog::debug("control socket: handshake failed: {}", ec.message());
      die();
      return;
    }
    open_ = true;
    if (closing_) {
      closing_ = false;
      begin_close();
      return;
    }
    pump_ = std::thread([this] { pump(); });
    do_read();
  }

  /// The event thread: one event at a time from the bounded subscription to the socket.
  void pump() {
    while (true) {
      {
        std::unique_lock lock(pump_mutex_);
        pump_cv_.wait(lock, [&] { return pump_stop_ || !event_queued_; });
        if (pump_stop_) {
          return;
        }
      }
      auto event = subscription_->next(std::chrono::milliseconds(500));
      if (!event) {
        if (subscription_->closed()) {
          return;
        }
        continue;
      }
      if (!may_access_session(caller_, event->owner)) {
        continue;  // another token's session: not this client's to see
      }
      std::string text = dump(json{{"type", "event"}, {"payload", event_json(*event)}});
      {
        std::lock_guard lock(pump_mutex_);
        if (pump_stop_) {
          return;
        }
        event_queued_ = true;
      }
      net::post(ioc_, [this, text = std::move(text)]() mutable { send(std::move(text), true); });
    }
  }

  void stop_pump() {
    {
      std::lock_guard lock(pump_mutex_);
      pump_stop_ = true;
    }
    pump_cv_.notify_all();
    if (subscription_) {
      subscription_->close();
    }
  }

  void do_read() {
    reading_ = true;
    ws_.async_read(in_, [this](beast::error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (ec) {
      if (ec != websocket::error::closed && ec != net::error::operation_aborted) {
        spdlog::debug("control socket: {}", ec.message());
      }
      die();
      return;
    }
    const std::string text = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    std::optional<json> response;
    try {
      response = plane_.handle(text);
    } catch (const std::exception& e) {  // a bug, or out of memory: this request fails alone
      spdlog::error("control socket: request failed: {}", e.what());
      response = json{{"type", "response"},
                      {"payload", {{"action", "error"}, {"message", std::string("internal error: ") + e.what()}}}};
    }
    if (response) {
      send(dump(*response), false);
    }
    if (!closing_ && !dead_ && outbox_.size() < kMaxQueuedResponses) {
      do_read();
    }
  }

  void send(std::string text, bool event) {
    if (dead_) {
      return;
    }
    outbox_.push_back({std::move(text), event});
    if (!writing_) {
      do_write();
    }
  }

  void do_write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(outbox_.front().text),
                    [this](beast::error_code ec, std::size_t) { on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (ec) {
      spdlog::debug("control socket: write failed: {}", ec.message());
      die();
      return;
    }
    const bool event = outbox_.front().event;
    outbox_.pop_front();
    if (event) {
      registry_.count_event();
      {
        std::lock_guard lock(pump_mutex_);
        event_queued_ = false;
      }
      pump_cv_.notify_all();
    }
    if (!outbox_.empty()) {
      do_write();
    }
    if (!reading_ && !closing_ && !dead_ && outbox_.size() < kMaxQueuedResponses) {
      do_read();
    }
  }

  void begin_close() {
    if (closing_ || dead_) {
      return;
    }
    closing_ = true;
    stop_pump();
    if (!open_) {
      return;  // the handshake ends it (on_accept)
    }
    close_timer_.expires_after(kCloseGrace);
    close_timer_.async_wait([this](beast::error_code ec) {
      if (!ec) {
        die();
      }
    });
    ws_.async_close(websocket::close_reason(websocket::close_code::going_away, "server stopping"),
                    [this](beast::error_code) { die(); });
  }

  /// Ends everything at once: the event thread, the socket, the io_context (handlers still
  /// queued are dropped with it).
  void die() {
    if (dead_) {
      return;
    }
    dead_ = true;
    stop_pump();
    beast::error_code ec;
    ws_.next_layer().shutdown(tcp::socket::shutdown_both, ec);
    ws_.next_layer().close(ec);
    ioc_.stop();
  }

  net::io_context ioc_{1};
  websocket::stream<tcp::socket> ws_;
  net::steady_timer close_timer_;
  beast::flat_buffer in_;
  std::deque<Outgoing> outbox_;
  bool open_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool dead_ = false;
  ControlPlane plane_;
  Caller caller_;  // whose events it may receive
  supervisor::SessionManager& sessions_;
  ControlSockets& registry_;
  std::shared_ptr<supervisor::EventSubscription> subscription_;
  std::thread pump_;
  std::mutex pump_mutex_;
  std::condition_variable pump_cv_;
  bool pump_stop_ = false;
  bool event_queued_ = false;  // an event is in the outbox: the pump waits
};

void ControlSockets::close_all() {
  std::lock_guard lock(mutex_);
  closing_ = true;
  for (auto* s : sockets_) {
    s->close_async();
  }
}

std::size_t ControlSockets::active() const {
  std::lock_guard lock(mutex_);
  return sockets_.size();
}

std::uint64_t ControlSockets::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::uint64_t ControlSockets::events_sent() const {
  std::lock_guard lock(mutex_);
  return events_sent_;
}

bool ControlSockets::add(ControlSocket* socket) {
  std::lock_guard lock(mutex_);
  if (closing_) {
    return false;
  }
  sockets_.insert(socket);
  ++total_;
  return true;
}

void ControlSockets::remove(ControlSocket* socket) {
  std::lock_guard lock(mutex_);
  sockets_.erase(socket);
}

void ControlSockets::count_event() {
  std::lock_guard lock(mutex_);
  ++events_sent_;
}

bool serve_control_socket(tcp::socket& socket, const http::request<http::empty_body>& request,
                          const Caller& caller, const ServerConfig& config,
                          supervisor::SessionManager& sessions, ControlSockets& registry) {
  ControlSocket control(caller, config, sessions, registry);
  if (!registry.add(&control)) {
    return false;
  }
  spdlog::debug("control socket opened (role {})", role_name(caller.role));
  control.run(socket, request);
  registry.remove(&control);
  spdlog::debug("control socket closed");
  return true;
}

}  // namespace skit::gateway
