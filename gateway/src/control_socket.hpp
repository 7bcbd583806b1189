// SPDX-License-Identifier: MPL-2.0
// GET /api/v1/control: StreamKit's WebSocket control plane on Boost.Beast. Each client is
// served by its HTTP connection thread, which runs the socket asynchronously on an
// io_context of its own (reads, writes, keep-alive pings, close), plus one thread that
// carries the client's session events from its bounded EventSubscription to the socket, one
// at a time. Nothing else buffers events: a client that reads slowly loses the oldest ones
// (counted by the session manager) and never slows a session or another client.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <cstdint>
#include <mutex>
#include <set>

#include "authorization.hpp"
#include "skit/gateway/config.hpp"
#include "skit/supervisor/sessions.hpp"

namespace skit::gateway {

class ControlSocket;

/// The open control sockets, for /metrics and the shutdown.
class ControlSockets {
 public:
  /// Asks every client to close (close frame "going away"); each connection ends within a
  /// couple of seconds even if its client does not answer. New ones are refused from now on.
  void close_all();
  [[nodiscard]] std::size_t active() const;
  [[nodiscard]] std::uint64_t total() const;
  [[nodiscard]] std::uint64_t events_sent() const;

  // For ControlSocket.
  bool add(ControlSocket* socket);
  void remove(ControlSocket* socket);
  void count_event();

 private:
  mutable std::mutex mutex_;
  std::set<ControlSocket*> sockets_;
  bool closing_ = false;
  std::uint64_t total_ = 0;
  std::uint64_t events_sent_ = 0;
};

/// Serves one WebSocket client whose upgrade request (already past the Origin guard and the
/// token check) is `request`, until it goes away; returns with nothing left behind (its
/// thread, subscription and socket are gone). False, with the socket untouched, when the
/// server is stopping.
bool serve_control_socket(boost::asio::ip::tcp::socket& socket,
                          const boost::beast::http::request<boost::beast::http::empty_body>& request,
                          const Caller& caller, const ServerConfig& config,
                          supervisor::SessionManager& sessions, ControlSockets& registry);

}  // namespace skit::gateway
