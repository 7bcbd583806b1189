// SPDX-License-Identifier: MPL-2.0
// The HTTP server core on Boost.Beast: accepts connections (at most limits.max_connections,
// one thread each), reads each request head, runs the guards that come before any body byte
// is read (the Origin guard, then the bearer token or login cookie), and dispatches through
// the route table (routes.cpp) to the handler of the route's family. On shutdown it cancels
// running pipelines, closes idle and WebSocket connections, and joins every connection
// thread before it returns, so that nothing they use (the engine, the session manager) is
// destroyed under them.
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "authorization.hpp"
#include "http_routes.hpp"
#include "listen_address.hpp"
#include "routes.hpp"
#include "skit/gateway/server.hpp"
#include "tls_terminator.hpp"

namespace skit::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

/// "http://localhost:*" matches "http://localhost:5173"; otherwise exact.
bool origin_allowed(const std::vector<std::string>& allowed, std::string_view origin) {
  for (const auto& pattern : allowed) {
    if (pattern == "*" || pattern == origin) {
      return true;
    }
    if (pattern.size() > 2 && pattern.substr(pattern.size() - 2) == ":*") {
      const std::string prefix = pattern.substr(0, pattern.size() - 1);  // "http://localhost:"
      if (origin.substr(0, prefix.size()) == prefix && origin.size() > prefix.size() &&
          origin.substr(prefix.size()).find_first_not_of("0123456789") == std::string_view::npos) {
        return true;
      }
    }
  }
  return false;
}

/// The page that sent the request claims this server's own origin (Origin is http(s):// plus
/// the Host it asked for): the web UI opened at whatever name the server has.
bool same_origin(std::string_view origin, std::string_view host) {
  if (host.empty()) {
    return false;
  }
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (origin.size() == scheme.size() + host.size() && origin.substr(0, scheme.size()) == scheme &&
        origin.substr(scheme.size()) == host) {
      return true;
    }
  }
  return false;
}

/// `path` without `server.base_path` ("/skit/api/v1/x" -> "/api/v1/x", "/skit" -> "/"):
/// behind a proxy that keeps its prefix, the whole server answers under it too.
std::string strip_base_path(const std::string& base, std::string path) {
  if (base.empty() || path.rfind(base, 0) != 0) {
    return path;
  }
  if (path.size() == base.size()) {
    return "/";
  }
  return path[base.size()] == '/' ? path.substr(base.size()) : path;
}

/// Closes the way HTTP servers must when a response may have left before the request body
/// was read (401, 403, 413, 503, a bad config with its media still coming): closing a socket
/// with unread bytes makes the kernel send RST, which can destroy the response before the
/// client reads it (curl: "Send failure: Broken pipe", "Empty reply from server"). So send
/// FIN after the response, then read and discard what the client still sends until it
/// closes: at most 5 s in all and 1 s of silence, through a fixed buffer.
void linger_close(tcp::socket& socket, std::chrono::milliseconds total = std::chrono::seconds(5)) {
  beast::error_code ec;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    return;
  }
  const int fd = socket.native_handle();
  const auto deadline = Clock::now() + total;
  char discard[16 * 1024];
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000))) <= 0) {
      return;
    }
    const ssize_t n = ::recv(fd, discard, sizeof discard, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      return;
    }
  }
}

class HttpServer {
 public:
  HttpServer(const ServerConfig& config, supervisor::Engine& engine,
             supervisor::SessionManager& sessions)
      : config_(config),
        ui_files_(resolve_ui_dir(config), config.base_path + "/"),
        context_{config,    engine,         sessions,  control_sockets_, metrics_,
                 outcomes_, oneshots_,      browsers_, ui_files_,
                 [this] { return connections(); }} {
    if (ui_files_.available()) {
      spdlog::info("serving the web UI from {}", ui_files_.root().string());
    } else {
      spdlog::info("no web UI build found (paths.ui_dir, or ui/dist after scripts/build_ui.sh)");
    }
  }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer() { join_all(); }

  /// Serves `socket` on a thread of its own (or refuses it past limits.max_connections).
  void accept(tcp::socket socket) {
    reap();
    const bool over = connections() >= config_.max_connections;
    if (over && rejecting_.load() >= 64) {
      return;  // past 64 refusals at once the connection is just closed
    }
    std::lock_guard lock(mutex_);
    const std::uint64_t id = next_id_++;
    Connection& c = connections_[id];
    c.fd = socket.native_handle();
    c.rejecting = over;
    (over ? rejecting_ : active_)++;
    c.thread = std::thread([this, id, over, s = std::make_unique<tcp::socket>(std::move(socket))] {
      if (over) {
        reject(*s);
      } else {
        serve(*s, id);
      }
      finish(id, *s);
    });
  }

  [[nodiscard]] std::size_t connections() const { return active_.load(); }

  /// Stops the server's work and waits for every connection thread: running pipelines are
  /// cancelled, idle keep-alive and WebSocket connections closed; what is still open after
  /// `grace` is shut down (its reads and writes fail).
  void drain(std::chrono::milliseconds grace) {
    oneshots_.stop_all();
    close_idle();
    control_sockets_.close_all();
    const auto deadline = Clock::now() + grace;
    while ((active_.load() > 0 || rejecting_.load() > 0) && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      oneshots_.stop_all();
      close_idle();
    }
    std::size_t open = 0;
    {
      std::lock_guard lock(mutex_);
      for (auto& [id, c] : connections_) {
        if (c.fd >= 0 && !c.done) {
          ::shutdown(c.fd, SHUT_RDWR);
          ++open;
        }
      }
    }
    if (open > 0) {
      spdlog::warn("HTTP: {} connection(s) still open after {} ms: shut down", open,
                   grace.count());
    }
    join_all();
  }

 private:
  struct Connection {
    std::thread thread;
    int fd = -1;             // -1 once handed over (a WebSocket closes its own)
    bool idle = false;       // waiting for a request head
    bool rejecting = false;  // a 503 over limits.max_connections
    bool done = false;       // the thread has ended (to be joined)
  };

  /// A connection over limits.max_connections: 503 from a short-lived thread (the accept loop
  /// must not wait for it) that then lingers like every close, so the client reads the 503
  /// instead of a reset.
  void reject(tcp::socket& s) {
    HttpReply r = HttpReply::text(503, "too many connections (limits.max_connections is " +
                                           std::to_string(config_.max_connections) + ")");
    r.headers.emplace_back("Retry-After", "1");
    try {
      send_reply(s, 11, std::move(r), false);
    } catch (const std::exception&) {
    }
    linger_close(s, std::chrono::seconds(1));
  }

  void serve(tcp::socket& socket, std::uint64_t id) {
    // Bound how long a silent client can hold a thread.
    timeval tv{};
    tv.tv_sec = std::max<long>(1, static_cast<long>(config_.request_timeout.count() / 1000));
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    beast::flat_buffer buffer;
    try {
      while (serve_one(socket, buffer, id)) {
      }
    } catch (const std::exception& e) {
      spdlog::debug("connection ended: {}", e.what());
    }
    if (socket.is_open()) {
      linger_close(socket);
    }
  }

  /// The thread's end: the socket is closed under the lock, so that drain() never shuts down
  /// a descriptor number that another connection has been given since.
  void finish(std::uint64_t id, tcp::socket& socket) {
    std::lock_guard lock(mutex_);
    beast::error_code ec;
    socket.close(ec);
    Connection& c = connections_.at(id);
    c.done = true;
    c.fd = -1;
    (c.rejecting ? rejecting_ : active_)--;
  }

  void set_idle(std::uint64_t id, bool idle) {
    std::lock_guard lock(mutex_);
    connections_.at(id).idle = idle;
  }

  void hand_over(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    connections_.at(id).fd = -1;
  }

  /// Ends the connections that wait for their next request (keep-alive): they have nothing
  /// to finish, and would otherwise hold the shutdown until its deadline.
  void close_idle() {
    std::lock_guard lock(mutex_);
    for (auto& [id, c] : connections_) {
      if (c.idle && c.fd >= 0 && !c.done) {
        ::shutdown(c.fd, SHUT_RD);
      }
    }
  }

  /// Joins the threads that have ended.
  void reap() {
    std::list<std::thread> ended;
    {
      std::lock_guard lock(mutex_);
      for (auto it = connections_.begin(); it != connections_.end();) {
        if (it->second.done) {
          ended.push_back(std::move(it->second.thread));
          it = connections_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& t : ended) {
      t.join();
    }
  }

  void join_all() {
    std::list<std::thread> all;
    {
      std::lock_guard lock(mutex_);
      for (auto& [id, c] : connections_) {
        all.push_back(std::move(c.thread));
      }
    }
    for (auto& t : all) {
      if (t.joinable()) {
        t.join();
      }
    }
    std::lock_guard lock(mutex_);
    connections_.clear();
  }

  /// Reads and answers one request; false when the connection must close.
  bool serve_one(tcp::socket& socket, beast::flat_buffer& buffer, std::uint64_t id) {
    HttpHeadParser parser;
    parser.header_limit(config_.max_header_bytes);
    // No body limit on the header parser: with one, Beast fails read_header itself on a large
    // Content-Length and the client got no response at all. The handlers answer 413 after
    // the guards; their body readers enforce the limit on chunked uploads. (Not boost::none:
    // Boost 1.74 compares a Content-Length against an empty optional as larger.)
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec;
    set_idle(id, true);
    http::read_header(socket, buffer, parser, ec);
    set_idle(id, false);
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      return false;
    }
    if (ec == http::error::header_limit) {
      send_reply(socket, 11,
                 HttpReply::text(431, "request headers exceed limits.max_header_bytes"), false);
      return false;
    }
    if (ec) {
      return false;
    }
    const auto t0 = Clock::now();
    // The head lives in the parser until a handler's body reader takes the parser over.
    const HttpHead& req = parser.get();
    const unsigned version = req.version();
    const std::string target(req.target());
    const auto query_at = target.find('?');
    const std::string path = strip_base_path(config_.base_path, target.substr(0, query_at));
    const std::string query = query_at == std::string::npos ? "" : target.substr(query_at + 1);
    RouteMatch match = match_route(path);
    // Metrics are labelled by route template only (or "other"): a label per raw path would
    // let any client grow /metrics.
    const std::string_view label = route_label(match.route);
    bool recorded = false;
    const auto record = [&](unsigned status) {
      if (!recorded) {
        recorded = true;
        metrics_.record(label, status, std::chrono::duration<double>(Clock::now() - t0).count());
      }
    };
    const bool has_body = parser.content_length().value_or(0) > 0 || parser.chunked();
    const bool keep_alive = req.keep_alive() && !has_body;
    const auto answer = [&](HttpReply reply, bool keep) {
      const unsigned status = reply.status;
      send_reply(socket, version, std::move(reply), keep);
      record(status);
      return keep;
    };

    // Guards that run before a single body byte is read.
    const auto method = req.method();
    const bool mutating = method == http::verb::post || method == http::verb::put ||
                          method == http::verb::patch || method == http::verb::delete_;
    const bool upgrade = beast::iequals(req[http::field::upgrade], "websocket");
    const std::string origin(req[http::field::origin]);
    // The API and WebRTC signalling (a WHIP offer publishes into a session).
    const bool guarded = path.rfind("/api/", 0) == 0 || path.rfind("/whip/", 0) == 0 ||
                         path.rfind("/whep/", 0) == 0;
    if (((guarded && mutating) || upgrade) &&
        req.count(http::field::origin) > 0 && !origin_allowed(config_.allowed_origins, origin) &&
        // The web UI at whatever name the server has; only with authentication on: without
        // tokens, a DNS-rebound name would pass too (its requests carry no login cookie,
        // since cookies follow the name).
        !(same_origin(origin, std::string(req[http::field::host])) && !config_.tokens.empty())) {
      return answer(HttpReply::text(403, "origin '" + origin +
                                             "' is not allowed (server.cors.allowed_origins)"),
                    false);
    }
    Caller caller;  // without auth: the admin
    if (!config_.tokens.empty() && (match.route == nullptr || !match.route->open)) {
      // A bearer token (API clients) or the browser login cookie (auth_cookie.hpp).
      const std::string auth(req[http::field::authorization]);
      const TokenConfig* who =
          identify(config_, browsers_, auth, std::string(req[http::field::cookie])).token;
      if (who == nullptr) {
        HttpReply r = HttpReply::text(
            401, auth.empty() ? "authentication required: send Authorization: Bearer <token>"
                              : "invalid token");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return answer(std::move(r), keep_alive);
      }
      caller = Caller{who->name, who->role};
    }

    if (match.route == nullptr) {
      return answer(HttpReply::text(404, "no route for " + std::string(req.method_string()) +
                                             " " + path),
                    keep_alive);
    }
    const Route& route = *match.route;
    if (!route_allows(route, method)) {
      HttpReply r = HttpReply::text(405, std::string(req.method_string()) + " is not allowed on " +
                                             std::string(route.path) +
                                             " (allowed: " + allow_header(route) + ")");
      r.headers.emplace_back("Allow", allow_header(route));
      return answer(std::move(r), keep_alive);
    }
    HttpExchange exchange(socket, buffer, parser, path, query, caller, std::move(match.params),
                          {.answered = record, .handing_over = [&] { hand_over(id); }});
    HttpReply reply = route.handler(context_, exchange);
    if (exchange.answered_status()) {
      return false;  // streamed or taken over: the connection ends with it
    }
    if (method == http::verb::head) {
      reply.body.clear();
    }
    return answer(std::move(reply), exchange.reusable());
  }

  const ServerConfig& config_;
  StaticFiles ui_files_;
  ControlSockets control_sockets_;
  HttpMetrics metrics_;
  RequestOutcomes outcomes_;
  OneshotRuns oneshots_;
  BrowserSessions browsers_;  // browser logins (auth_cookie.cpp)
  HttpContext context_;
  std::atomic<std::size_t> active_{0};
  std::atomic<std::size_t> rejecting_{0};
  std::mutex mutex_;
  std::map<std::uint64_t, Connection> connections_;
  std::uint64_t next_id_ = 0;
};

/// SIGHUP: the certificate and key are read again; a bad pair leaves the one in use.
void reload_certificate(TlsTerminator* tls, const ServerConfig& config) {
  if (tls == nullptr) {
    spdlog::info("SIGHUP: nothing to reload (server.tls is off)");
    return;
  }
  if (Status s = tls->reload(); !s.is_ok()) {
    spdlog::error("TLS: reload failed, the certificate in use stays: {}", s.message());
    return;
  }
  spdlog::info("TLS: certificate reloaded from {} (sha256 {})", config.cert_path, tls->fingerprint());
}

}  // namespace

Status check_listen_policy(const ServerConfig& config) {
  if (auto ep = parse_endpoint(config.listen); !ep) {
    return ep.status();
  }
  return check_loopback_policy(config, config.listen, "listen on");
}

int serve_http(const ServerConfig& config, supervisor::Engine& engine,
               supervisor::SessionManager& sessions, const std::atomic<bool>& stop,
               const std::atomic<unsigned>* reloads,
               const std::function<void(unsigned short)>& on_listening) {
  auto ep = parse_endpoint(config.listen);
  if (!ep) {
    spdlog::error("{}", ep.status().message());
    return 2;
  }
  std::unique_ptr<TlsTerminator> tls;
  if (config.tls) {
    auto created = TlsTerminator::create(config.cert_path, config.key_path);
    if (!created) {
      spdlog::error("{}", created.status().message());
      return 2;
    }
    tls = std::move(*created);
    spdlog::info("TLS on: certificate {} (sha256 {})", config.cert_path, tls->fingerprint());
  }
  unsigned reloads_seen = reloads != nullptr ? reloads->load() : 0;
  net::io_context io;
  tcp::acceptor acceptor(io);
  beast::error_code ec;
  const tcp::endpoint endpoint(net::ip::make_address(ep->host, ec), ep->port);
  if (ec) {
    spdlog::error("bad listen address {}: {}", config.listen, ec.message());
    return 2;
  }
  acceptor.open(endpoint.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  acceptor.bind(endpoint, ec);
  if (ec) {
    spdlog::error("cannot listen on {}: {}", config.listen, ec.message());
    return 2;
  }
  acceptor.listen();
  const unsigned short port = acceptor.local_endpoint().port();
  spdlog::info("HTTP listening on {}:{}", ep->host, port);
  if (on_listening) {
    on_listening(port);
  }
  HttpServer server(config, engine, sessions);
  acceptor.non_blocking(true);
  while (!stop.load()) {
    if (reloads != nullptr && reloads->load() != reloads_seen) {
      reloads_seen = reloads->load();
      reload_certificate(tls.get(), config);
    }
    tcp::socket socket(io);
    acceptor.accept(socket, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      pollfd p{acceptor.native_handle(), POLLIN, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    if (ec) {
      continue;
    }
    if (tls) {
      // The HTTP server serves the plaintext end of the connection's TLS pump.
      auto plain = tls->wrap(socket.release());
      if (!plain) {
        spdlog::warn("{}", plain.status().message());
        continue;
      }
      socket.assign(tcp::v4(), *plain, ec);
      if (ec) {
        ::close(*plain);
        continue;
      }
    }
    socket.non_blocking(false);
    server.accept(std::move(socket));
  }
  spdlog::info("HTTP shutting down: cancelling running pipelines");
  acceptor.close();
  server.drain(std::chrono::seconds(10));
  if (tls) {
    tls->stop();
  }
  return 0;
}

}  // namespace skit::gateway
