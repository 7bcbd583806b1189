// SPDX-License-Identifier: MPL-2.0
// The HTTP gateway on Boost.Beast: one thread per connection (bounded), StreamKit's paths and
// shapes, auth and the Origin guard before any body byte is read, the oneshot endpoint
// streaming its upload into the pipeline and the pipeline's output back as it is produced,
// the session REST endpoints, and the WebSocket control plane (control_socket.cpp) on the
// connection that asked for the upgrade.
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <filesystem>
#include <limits>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "body_pull.hpp"
#include "byte_queue.hpp"
#include "control_plane.hpp"
#include "control_socket.hpp"
#include "multipart.hpp"
#include "request_outcomes.hpp"
#include "routes.hpp"
#include "skit/gateway/session_json.hpp"
#include "skit/core/packet_type.hpp"
#include "skit/core/registry.hpp"
#include "skit/gateway/server.hpp"
#include "ui_routes.hpp"

#ifndef SKIT_VERSION
#define SKIT_VERSION "0.0.0"
#endif

namespace skit::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Endpoint {
  std::string host;
  unsigned short port = 0;
};

Result<Endpoint> parse_endpoint(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Status(ErrorCode::kInvalidArgument, "listen address must be HOST:PORT, got '" + listen + "'");
  }
  Endpoint e;
  e.host = listen.substr(0, colon);
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') {
    e.host = e.host.substr(1, e.host.size() - 2);
  }
  if (e.host == "localhost") {
    e.host = "127.0.0.1";
  }
  try {
    e.port = static_cast<unsigned short>(std::stoi(listen.substr(colon + 1)));
  } catch (const std::exception&) {
    return Status(ErrorCode::kInvalidArgument, "bad port in '" + listen + "'");
  }
  return e;
}

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

/// "http://localhost:*" matches "http://localhost:5173"; otherwise exact.
bool origin_allowed(const std::vector<std::string>& allowed, std::string_view origin) {
  for (const auto& pattern : allowed) {
    if (pattern == "*" || pattern == origin) {
      return true;
    }
    if (pattern.size() > 2 && pattern.substr(pattern.size() - 2) == ":*") {
      const std::string prefix = pattern.substr(0, pattern.size() - 1);  // "http://localhost:"
      if (origin.substr(0, prefix.size()) == prefix &&
          origin.size() > prefix.size() &&
          origin.substr(prefix.size()).find_first_not_of("0123456789") == std::string_view::npos) {
        return true;
      }
    }
  }
  return false;
}

http::status status_for(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidParam:
    case ErrorCode::kUnknownKind:
    case ErrorCode::kPinTypeMismatch:
    case ErrorCode::kGraphError: return http::status::bad_request;
    case ErrorCode::kCorruptMedia: return http::status::unprocessable_entity;
    case ErrorCode::kNotFound: return http::status::not_found;
    case ErrorCode::kPermissionDenied: return http::status::forbidden;
    case ErrorCode::kResourceExhausted: return http::status::service_unavailable;
    case ErrorCode::kAlreadyExists: return http::status::conflict;
    case ErrorCode::kDeadlineExceeded: return http::status::gateway_timeout;
    case ErrorCode::kCancelled: return http::status::bad_request;
    default: return http::status::internal_server_error;
  }
}

/// The status of a session API error: as status_for, except that the session limits are
/// 429 (StreamKit's answer to max_concurrent_sessions) rather than 503.
http::status session_status_for(const Status& s) {
  return s.code() == ErrorCode::kResourceExhausted ? http::status::too_many_requests
                                                   : status_for(s);
}

/// "%2F" -> "/" in a path segment; malformed escapes stay as they are.
std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

/// Request counters and durations for /metrics.
class HttpMetrics {
 public:
  void record(const std::string& route, unsigned status, double seconds) {
    std::lock_guard lock(mutex_);
    ++requests_[{route, status}];
    auto& d = durations_[route];
    d.first += seconds;
    d.second += 1;
  }
  std::string render(const supervisor::EngineStats& e, std::size_t connections,
                     const supervisor::SessionManagerStats& sessions,
                     const ControlSockets& control) {
    std::ostringstream out;
    std::lock_guard lock(mutex_);
    out << "# HELP skit_http_requests_total HTTP requests by route and status.\n"
           "# TYPE skit_http_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      out << "skit_http_requests_total{route=\"" << key.first << "\",code=\"" << key.second
          << "\"} " << n << '\n';
    }
    out << "# HELP skit_http_request_duration_seconds Time to serve requests by route.\n"
           "# TYPE skit_http_request_duration_seconds summary\n";
    for (const auto& [route, d] : durations_) {
      out << "skit_http_request_duration_seconds_sum{route=\"" << route << "\"} " << d.first << '\n'
          << "skit_http_request_duration_seconds_count{route=\"" << route << "\"} " << d.second
          << '\n';
    }
    out << "# HELP skit_http_connections Open HTTP connections.\n# TYPE skit_http_connections gauge\n"
        << "skit_http_connections " << connections << '\n'
        << "# HELP skit_oneshot_active Oneshot pipelines running.\n# TYPE skit_oneshot_active gauge\n"
        << "skit_oneshot_active " << e.active_oneshots << '\n'
        << "# HELP skit_oneshots_total Oneshot pipelines by result.\n# TYPE skit_oneshots_total counter\n"
        << "skit_oneshots_total{result=\"ok\"} " << e.oneshots_succeeded << '\n'
        << "skit_oneshots_total{result=\"error\"} " << e.oneshots_failed << '\n'
        << "skit_oneshots_total{result=\"rejected\"} " << e.oneshots_rejected << '\n'
        << "# HELP skit_oneshot_duration_seconds_total Wall time of finished oneshot pipelines.\n"
           "# TYPE skit_oneshot_duration_seconds_total counter\n"
        << "skit_oneshot_duration_seconds_total " << e.run_seconds_total << '\n'
        << "# HELP skit_workers_started_total Worker processes started.\n# TYPE skit_workers_started_total counter\n"
        << "skit_workers_started_total " << e.workers_started << '\n'
        << "# HELP skit_packets_total Packets produced by nodes of finished pipelines.\n# TYPE skit_packets_total counter\n"
        << "skit_packets_total " << e.packets << '\n'
        << "# HELP skit_dropped_packets_total Best-effort drops.\n# TYPE skit_dropped_packets_total counter\n"
        << "skit_dropped_packets_total " << e.dropped << '\n'
        << "# HELP skit_worker_restarts_total Worker restarts (session workers that crashed or hung).\n"
           "# TYPE skit_worker_restarts_total counter\n"
        << "skit_worker_restarts_total " << sessions.worker_restarts << '\n'
        << "# HELP skit_sessions_active Dynamic sessions.\n# TYPE skit_sessions_active gauge\n"
        << "skit_sessions_active " << sessions.sessions << '\n'
        << "# HELP skit_sessions_created_total Sessions created.\n# TYPE skit_sessions_created_total counter\n"
        << "skit_sessions_created_total " << sessions.sessions_created << '\n'
        << "# HELP skit_sessions_destroyed_total Sessions destroyed (by a client, the idle timeout or the shutdown).\n"
           "# TYPE skit_sessions_destroyed_total counter\n"
        << "skit_sessions_destroyed_total " << sessions.sessions_destroyed << '\n'
        << "# HELP skit_session_nodes Nodes of all sessions.\n# TYPE skit_session_nodes gauge\n"
        << "skit_session_nodes " << sessions.nodes << '\n'
        << "# HELP skit_session_workers Worker processes of all sessions.\n# TYPE skit_session_workers gauge\n"
        << "skit_session_workers " << sessions.workers << '\n'
        << "# HELP skit_session_worker_crashes_total Session workers that crashed, hung or passed their memory limit.\n"
           "# TYPE skit_session_worker_crashes_total counter\n"
        << "skit_session_worker_crashes_total " << sessions.worker_crashes << '\n'
        << "# HELP skit_session_nodes_failed_total Session nodes failed for good (restart limit).\n"
           "# TYPE skit_session_nodes_failed_total counter\n"
        << "skit_session_nodes_failed_total " << sessions.nodes_failed << '\n'
        << "# HELP skit_session_events_dropped_total Session events dropped for subscribers that lagged.\n"
           "# TYPE skit_session_events_dropped_total counter\n"
        << "skit_session_events_dropped_total " << sessions.events_dropped << '\n'
        << "# HELP skit_websocket_connections Open WebSocket control connections.\n"
           "# TYPE skit_websocket_connections gauge\n"
        << "skit_websocket_connections " << control.active() << '\n'
        << "# HELP skit_websocket_events_sent_total Session events sent to WebSocket clients.\n"
           "# TYPE skit_websocket_events_sent_total counter\n"
        << "skit_websocket_events_sent_total " << control.events_sent() << '\n';
    return out.str();
  }

 private:
  std::mutex mutex_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::string, std::pair<double, std::uint64_t>> durations_;
};



/// Shared by the connection threads (each holds a reference until its last instruction), so
/// that neither it nor the io_context its sockets belong to is destroyed under a thread that
/// is still tearing down its socket when the server returns.
class Gateway : public std::enable_shared_from_this<Gateway> {
 public:
  Gateway(const ServerConfig& config, supervisor::Engine& engine,
          supervisor::SessionManager& sessions, std::shared_ptr<net::io_context> io)
      : config_(config), engine_(engine), sessions_(sessions), io_(std::move(io)) {}

  void handle(tcp::socket socket) {
    ++connections_;
    // Bound how long a silent client can hold a thread.
    timeval tv{};
    tv.tv_sec = std::max<long>(1, static_cast<long>(config_.request_timeout.count() / 1000));
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    beast::flat_buffer buffer;
    try {
      while (serve_one(socket, buffer)) {
      }
    } catch (const std::exception& e) {
      spdlog::debug("connection ended: {}", e.what());
    }
    linger_close(socket);
    --connections_;
  }

  [[nodiscard]] std::size_t connections() const { return connections_.load(); }
  [[nodiscard]] std::size_t rejecting() const { return rejecting_.load(); }

  /// A connection over limits.max_connections: 503 from a short-lived thread (the accept loop
  /// must not wait for it) that then lingers like every close, so the client reads the 503
  /// instead of a reset. Past 64 such threads at once the connection is just closed.
  void reject(tcp::socket socket) {
    if (rejecting_.load() >= 64) {
      return;
    }
    ++rejecting_;
    std::thread([this, self = shared_from_this(),
                 owned = std::make_unique<tcp::socket>(std::move(socket))]() mutable {
      tcp::socket& s = *owned;
      Reply r = text(http::status::service_unavailable,
                     "too many connections (limits.max_connections is " +
                         std::to_string(config_.max_connections) + ")");
      r.headers.emplace_back("Retry-After", "1");
      try {
        send(s, Request{}, std::move(r), false);
      } catch (const std::exception&) {
      }
      linger_close(s, std::chrono::seconds(1));
      beast::error_code ec;
      s.close(ec);
      owned.reset();
      --rejecting_;
    }).detach();
  }

  /// Closes the WebSocket control connections (and refuses new ones).
  void close_control_sockets() { control_sockets_.close_all(); }

  void cancel_all() {
    std::lock_guard lock(cancels_mutex_);
    for (auto* c : cancels_) {
      c->store(true);
    }
  }

  /// Ends the connections that wait for their next request (keep-alive): they have nothing
  /// to finish, and would otherwise hold the shutdown until its deadline.
  void close_idle() {
    std::lock_guard lock(idle_mutex_);
    for (const int fd : idle_) {
      ::shutdown(fd, SHUT_RD);
    }
  }

 private:
  using Request = http::request<http::empty_body>;

  /// Closes the way HTTP servers must when a response may have left before the request body
  /// was read (401, 403, 413, 503, a bad config with its media still coming): closing a socket
  /// with unread bytes makes the kernel send RST, which can destroy the response before the
  /// client reads it (curl: "Send failure: Broken pipe", "Empty reply from server"). So send
  /// FIN after the response, then read and discard what the client still sends until it
  /// closes: at most 5 s in all and 1 s of silence, through a fixed buffer.
  static void linger_close(tcp::socket& socket,
                           std::chrono::milliseconds total = std::chrono::seconds(5)) {
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

  struct Reply {
    http::status status = http::status::ok;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
  };

  static Reply text(http::status status, std::string message) {
    return Reply{status, std::move(message) + "\n", "text/plain; charset=utf-8", {}};
  }
  static Reply json_reply(const json& body, http::status status = http::status::ok) {
    return Reply{status, body.dump(), "application/json", {}};
  }

  void send(tcp::socket& socket, const Request& req, Reply reply, bool keep_alive) {
    http::response<http::string_body> res{reply.status, req.version()};
    res.set(http::field::server, "skit/" SKIT_VERSION);
    res.set(http::field::content_type, reply.content_type);
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.set("X-Frame-Options", "SAMEORIGIN");
    for (const auto& [k, v] : reply.headers) {
      res.set(k, v);
    }
    res.keep_alive(keep_alive);
    res.body() = std::move(reply.body);
    res.prepare_payload();
    http::write(socket, res);
  }

  /// Reads and answers one request; false when the connection must close.
  bool serve_one(tcp::socket& socket, beast::flat_buffer& buffer) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(config_.max_header_bytes);
    // No body limit on the header parser: with one, Beast fails read_header itself on a large
    // Content-Length and the client got no response at all. process() answers 413 after the
    // auth and Origin guards; its body parser enforces the limit on chunked uploads. (Not
    // boost::none: Boost 1.74 compares a Content-Length against an empty optional as larger.)
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec;
    {
      std::lock_guard lock(idle_mutex_);
      idle_.insert(socket.native_handle());
    }
    http::read_header(socket, buffer, parser, ec);
    {
      std::lock_guard lock(idle_mutex_);
      idle_.erase(socket.native_handle());
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset) {
      return false;
    }
    if (ec == http::error::header_limit) {
      Request dummy;
      send(socket, dummy, text(http::status::request_header_fields_too_large,
                               "request headers exceed limits.max_header_bytes"), false);
      return false;
    }
    if (ec) {
      return false;
    }
    const auto t0 = Clock::now();
    Request& req = parser.get();
    const std::string target(req.target());
    const std::string path = UiRoutes::strip_base_path(config_, target.substr(0, target.find('?')));
    // Metrics are labelled by route template only (or "other"): a label per raw path would let
    // any client grow /metrics. The web UI's families (ui_routes.cpp) name their own.
    const bool ui_owned = UiRoutes::owns(path);
    const Route* matched = ui_owned ? nullptr : match_route(path);
    const std::string route = ui_owned ? UiRoutes::route_of(path) : std::string(route_label(matched));
    const bool has_body = parser.content_length().value_or(0) > 0 || parser.chunked();
    bool keep_alive = req.keep_alive() && !has_body;

    Reply reply;
    bool streamed = false;
    const auto finish = [&](unsigned status) {
      metrics_.record(route, status,
                      std::chrono::duration<double>(Clock::now() - t0).count());
    };

    // Guards that run before a single body byte is read.
    const bool api = path.rfind("/api/", 0) == 0;
    const auto method = req.method();
    const bool mutating = method == http::verb::post || method == http::verb::put ||
                          method == http::verb::patch || method == http::verb::delete_;
    const bool upgrade = beast::iequals(req[http::field::upgrade], "websocket");
    if (((api && mutating) || upgrade) && req.count(http::field::origin) > 0 &&
        !origin_allowed(config_.allowed_origins, std::string(req[http::field::origin])) &&
        !(UiRoutes::same_origin(std::string(req[http::field::origin]), std::string(req[http::field::host])) &&
          !config_.tokens.empty())) {
      reply = text(http::status::forbidden, "origin '" + std::string(req[http::field::origin]) +
                                                "' is not allowed (server.cors.allowed_origins)");
      send(socket, req, std::move(reply), false);
      finish(403);
      return false;
    }
    Role role = Role::kAdmin;
    if (!config_.tokens.empty() && path != "/healthz" && path != "/health" &&
        !UiRoutes::open_without_token(path)) {
      // A bearer token (API clients) or the browser login cookie (ui_routes.cpp).
      const std::string auth(req[http::field::authorization]);
      const TokenConfig* who =
          identify(config_, browsers_, auth, std::string(req[http::field::cookie])).token;
      if (who == nullptr) {
        reply = text(http::status::unauthorized,
                     auth.empty() ? "authentication required: send Authorization: Bearer <token>"
                                  : "invalid token");
        reply.headers.emplace_back("WWW-Authenticate", "Bearer");
        send(socket, req, std::move(reply), !has_body && keep_alive);
        finish(401);
        return !has_body && keep_alive;
      }
      role = who->role;
    }

    if (ui_owned) {
      // Samples, assets, validate, browser login and the web UI's files (ui_routes.cpp).
      const Request head = req;  // `req` lives in the parser, which the body reader takes
      BodyPull body(socket, buffer, parser, config_.max_body_bytes);
      const std::string cookie(head[http::field::cookie]);
      const std::string authorization(head[http::field::authorization]);
      const std::string method_name(head.method_string());
      const std::string content_type(head[http::field::content_type]);
      const auto query_at = target.find('?');
      UiRequest ui{method_name, path,
                   query_at == std::string::npos ? std::string_view() : std::string_view(target).substr(query_at + 1),
                   role, authorization, cookie, content_type, std::nullopt, nullptr};
      if (const auto length = parser.content_length()) {
        ui.content_length = *length;
      }
      if (has_body) {
        ui.pull = std::ref(body);
      }
      HttpReply r = ui_routes_.handle(ui);
      const unsigned code = r.status;
      keep_alive = head.keep_alive() && (!has_body || body.complete());
      Reply out{static_cast<http::status>(r.status), std::move(r.body), std::move(r.content_type),
                std::move(r.headers)};
      if (method == http::verb::head) {
        out.body.clear();
      }
      send(socket, head, std::move(out), keep_alive);
      finish(code);
      return keep_alive;
    } else if (matched == nullptr) {
      reply = text(http::status::not_found, "no route for " + std::string(req.method_string()) +
                                                " " + path);
    } else if (!route_allows(*matched, method)) {
      reply = text(http::status::method_not_allowed,
                   std::string(req.method_string()) + " is not allowed on " +
                       std::string(matched->path) + " (allowed: " + allow_header(*matched) + ")");
      reply.headers.emplace_back("Allow", allow_header(*matched));
    } else if (method == http::verb::get && (path == "/healthz" || path == "/health")) {
      const auto sessions = sessions_.stats();
      reply = json_reply({{"status", "ok"},
                          {"version", SKIT_VERSION},
                          {"active_oneshots", engine_.stats().active_oneshots},
                          {"sessions", sessions.sessions},
                          {"session_workers", sessions.workers},
                          {"websocket_connections", control_sockets_.active()}});
    } else if (method == http::verb::get && path == "/metrics") {
      reply = Reply{http::status::ok,
                    metrics_.render(engine_.stats(), connections_.load(), sessions_.stats(),
                                    control_sockets_),
                    "text/plain; version=0.0.4", {}};
    } else if (method == http::verb::get && path == "/api/v1/config") {
      reply = json_reply({{"version", SKIT_VERSION},
                          {"limits", {{"max_body_bytes", config_.max_body_bytes},
                                      {"max_concurrent_oneshots", engine_.config().max_concurrent_oneshots},
                                      {"max_sessions", sessions_.config().max_sessions},
                                      {"max_nodes_per_session", sessions_.config().max_nodes_per_session}}},
                          {"placement", supervisor::placement_name(engine_.config().placement)}});
    } else if (method == http::verb::get && path == "/api/v1/permissions") {
      reply = json_reply({{"role", role_name(role)}, {"permissions", permissions_of(role)}});
    } else if (method == http::verb::get && path == "/api/v1/schema/nodes") {
      json kinds = json::array();
      for (const auto* d : NodeRegistry::builtin().all()) {
        kinds.push_back(d->to_json());
      }
      reply = json_reply(kinds);
    } else if (method == http::verb::get && path == "/api/v1/schema/packets") {
      reply = json_reply(packet_schema_json());
    } else if (path == "/api/v1/control") {
      if (!upgrade) {
        reply = text(http::status::upgrade_required,
                     "GET /api/v1/control is a WebSocket endpoint (send Upgrade: websocket)");
        reply.headers.emplace_back("Upgrade", "websocket");
      } else if (method != http::verb::get) {
        reply = text(http::status::method_not_allowed, "the WebSocket upgrade must be a GET");
      } else {
        finish(101);
        if (!serve_control_socket(socket, req, role, config_, sessions_, control_sockets_)) {
          reply = text(http::status::service_unavailable, "the server is stopping");
          send(socket, req, std::move(reply), false);
        }
        return false;
      }
    } else if (path == "/api/v1/sessions" || path.rfind("/api/v1/sessions/", 0) == 0) {
      const bool create = method == http::verb::post && path == "/api/v1/sessions";
      if (create && role != Role::kViewer) {
        // The body is read here: the connection may stay open afterwards.
        const Request head = req;  // `req` lives in the parser, which the body reader takes
        auto body = read_json_body(socket, std::move(parser), buffer, reply);
        if (!body) {
          const unsigned code = static_cast<unsigned>(reply.status);
          send(socket, head, std::move(reply), false);
          finish(code);
          return false;
        }
        reply = create_session(*body);
        const unsigned code = static_cast<unsigned>(reply.status);
        send(socket, head, std::move(reply), head.keep_alive());
        finish(code);
        return head.keep_alive();
      } else {
        reply = sessions_route(method, path, role);
      }
    } else if (method == http::verb::get && path.rfind("/api/v1/process/", 0) == 0) {
      const std::string id = path.substr(std::string("/api/v1/process/").size());
      auto outcome = outcomes_.find(id);
      reply = outcome ? json_reply(*outcome)
                      : text(http::status::not_found,
                             "no recent request '" + id + "' (the server keeps the last 1024)");
    } else if (method == http::verb::post && path == "/api/v1/process") {
      if (role == Role::kViewer) {
        reply = text(http::status::forbidden, "role 'viewer' may not run pipelines (needs operator)");
      } else {
        streamed = true;
        const unsigned code = process(socket, std::move(parser), buffer);
        finish(code);
        return false;  // the body was consumed as a stream: close, simplest and safe
      }
    } else {
      reply = text(http::status::not_found, "no route for " + std::string(req.method_string()) +
                                                " " + path);
    }
    (void)streamed;
    const unsigned code = static_cast<unsigned>(reply.status);
    send(socket, req, std::move(reply), keep_alive);
    finish(code);
    return keep_alive;
  }

  /// Reads a small JSON request body (POST /api/v1/sessions): at most the config limit plus
  /// room for JSON's escaping. On failure `error` holds the answer (the body may be unread).
  std::optional<json> read_json_body(tcp::socket& socket,
                                     http::request_parser<http::empty_body>&& header_parser,
                                     beast::flat_buffer& buffer, Reply& error) {
    const std::uint64_t limit = 2 * config_.max_config_bytes + 64 * 1024;
    if (auto length = header_parser.content_length(); length && *length > limit) {
      error = text(http::status::payload_too_large,
                   "the body is " + std::to_string(*length) + " bytes; at most " +
                       std::to_string(limit) + " (limits.max_config_bytes of YAML)");
      return std::nullopt;
    }
    const Request& head = header_parser.get();
    if (head.version() >= 11 && beast::iequals(head[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      beast::error_code ec;
      net::write(socket, net::buffer(kContinue.data(), kContinue.size()), ec);
    }
    http::request_parser<http::string_body> body(std::move(header_parser));
    body.body_limit(limit);
    beast::error_code ec;
    http::read(socket, buffer, body, ec);
    if (ec == http::error::body_limit) {
      error = text(http::status::payload_too_large,
                   "the body exceeds " + std::to_string(limit) + " bytes");
      return std::nullopt;
    }
    if (ec) {
      error = text(http::status::bad_request, "reading the body failed: " + ec.message());
      return std::nullopt;
    }
    json parsed = json::parse(body.get().body(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      error = text(http::status::bad_request,
                   "expected a JSON object {\"name\"?: string, \"yaml\": string}");
      return std::nullopt;
    }
    return parsed;
  }

  static Reply session_error(const Status& s) {
    return text(session_status_for(s), error_text(s));
  }

  /// POST /api/v1/sessions: {name?, yaml} -> {session_id, name, created_at}.
  Reply create_session(const json& body) {
    std::optional<std::string> name;
    std::string yaml;
    if (const auto it = body.find("name"); it != body.end() && !it->is_null()) {
      if (!it->is_string()) {
        return text(http::status::bad_request, "'name' must be a string");
      }
      name = it->get<std::string>();
    }
    if (const auto it = body.find("yaml"); it != body.end() && !it->is_null()) {
      if (!it->is_string()) {
        return text(http::status::bad_request, "'yaml' must be a string (the pipeline YAML)");
      }
      yaml = it->get<std::string>();
    }
    if (yaml.size() > config_.max_config_bytes) {
      return text(http::status::payload_too_large,
                  "'yaml' is " + std::to_string(yaml.size()) + " bytes; limits.max_config_bytes is " +
                      std::to_string(config_.max_config_bytes));
    }
    auto info = gateway::create_session(sessions_, name, yaml);
    if (!info) {
      return session_error(info.status());
    }
    return json_reply(
        {{"session_id", info->id}, {"name", info->name}, {"created_at", info->created_at}});
  }

  /// GET /api/v1/sessions, GET /api/v1/sessions/{id}/pipeline, DELETE /api/v1/sessions/{id}.
  Reply sessions_route(http::verb method, const std::string& path, Role role) {
    static const std::string kPrefix = "/api/v1/sessions";
    const std::string rest = path.substr(kPrefix.size());  // "", "/{id}", "/{id}/pipeline"
    if (rest.empty() || rest == "/") {
      if (method == http::verb::get) {
        json list = json::array();
        for (const auto& s : sessions_.list_sessions()) {
          list.push_back(session_info_json(s));
        }
        return json_reply(list);
      }
      if (method == http::verb::post) {
        return text(http::status::forbidden, "role '" + std::string(role_name(role)) +
                                                 "' may not create sessions (needs operator)");
      }
      return text(http::status::method_not_allowed, "GET or POST " + kPrefix);
    }
    std::string id = rest.substr(1);
    bool pipeline = false;
    if (const auto slash = id.find('/'); slash != std::string::npos) {
      if (id.substr(slash) != "/pipeline") {
        return text(http::status::not_found, "no route for " + path);
      }
      id = id.substr(0, slash);
      pipeline = true;
    }
    id = percent_decode(id);
    if (pipeline) {
      if (method != http::verb::get) {
        return text(http::status::method_not_allowed, "GET " + kPrefix + "/{id}/pipeline");
      }
      auto p = sessions_.pipeline(id);
      return p ? json_reply(pipeline_json(*p)) : session_error(p.status());
    }
    if (method != http::verb::delete_) {
      return text(http::status::method_not_allowed,
                  "DELETE " + kPrefix + "/{id} (the pipeline: GET " + kPrefix + "/{id}/pipeline)");
    }
    if (role == Role::kViewer) {
      return text(http::status::forbidden, "role 'viewer' may not destroy sessions (needs operator)");
    }
    auto info = sessions_.destroy_session(id);
    return info ? json_reply({{"session_id", info->id}}) : session_error(info.status());
  }

  static json error_json(const std::vector<Status>& errors) {
    json list = json::array();
    for (const auto& e : errors) {
      json item{{"message", e.message()}, {"code", error_code_name(e.code())}};
      if (e.where().line > 0) {
        item["line"] = e.where().line;
        item["column"] = e.where().column;
      }
      if (!e.where().node_id.empty()) item["node"] = e.where().node_id;
      if (!e.where().param.empty()) item["param"] = e.where().param;
      list.push_back(item);
    }
    return list;
  }

  /// POST /api/v1/process. Returns the status code sent.
  unsigned process(tcp::socket& socket, http::request_parser<http::empty_body>&& header_parser,
                   beast::flat_buffer& buffer) {
    const Request req = header_parser.get();
    // Every answer carries the request's id; its outcome stays queryable for a while
    // (GET /api/v1/process/{id}), for clients that cannot read trailers.
    const std::string request_id = outcomes_.begin();
    auto fail = [&](http::status status, std::string message, std::vector<Status> errors = {}) {
      outcomes_.finish(request_id, static_cast<unsigned>(status),
                       errors.empty() ? Status(ErrorCode::kInvalidArgument, message) : errors.front(),
                       0, 0);
      Reply r = text(status, std::move(message));
      r.headers.emplace_back("X-Skit-Request-Id", request_id);
      if (!errors.empty()) {
        // Plain text like StreamKit, one problem per line, each with its place.
        std::string body;
        for (const auto& e : errors) {
          body += e.to_string() + "\n";
        }
        r.body = body;
      }
      if (status == http::status::service_unavailable) {
        r.headers.emplace_back("Retry-After", "1");
      }
      send(socket, req, std::move(r), false);
      return static_cast<unsigned>(status);
    };
    if (auto length = header_parser.content_length(); length && *length > config_.max_body_bytes) {
      return fail(http::status::payload_too_large,
                  "the upload is " + std::to_string(*length) + " bytes; limits.max_body_bytes is " +
                      std::to_string(config_.max_body_bytes));
    }
    const std::string boundary = MultipartReader::boundary_of(std::string(req[http::field::content_type]));
    if (boundary.empty()) {
      return fail(http::status::bad_request,
                  "expected a multipart/form-data body with a 'config' part (and optional 'media')");
    }
    // The request is accepted as far as its head goes: a client that sent
    // `Expect: 100-continue` (curl does above 1 MiB and for chunked uploads) waits for this
    // before sending the body; without it curl stalls a second on every large upload.
    if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      beast::error_code ec;
      net::write(socket, net::buffer(kContinue.data(), kContinue.size()), ec);
    }
    http::request_parser<http::buffer_body> body(std::move(header_parser));
    body.body_limit(config_.max_body_bytes);
    Status body_error;
    auto pull = [&](std::span<char> out) -> Result<std::size_t> {
      if (body.is_done()) {
        return std::size_t{0};
      }
      body.get().body().data = out.data();
      body.get().body().size = out.size();
      beast::error_code ec;
      http::read(socket, buffer, body, ec);
      if (ec == http::error::need_buffer) {
        ec = {};
      }
      if (ec == http::error::body_limit) {
        body_error = Status(ErrorCode::kResourceExhausted,
                            "the upload exceeds limits.max_body_bytes (" +
                                std::to_string(config_.max_body_bytes) + " bytes)");
        return body_error;
      }
      if (ec) {
        return Status(ErrorCode::kCancelled, "reading the upload failed: " + ec.message());
      }
      return out.size() - body.get().body().size;
    };
    MultipartReader parts(pull, boundary);
    auto first = parts.next_part();
    if (!first || !*first) {
      return fail(body_error.is_ok() ? http::status::bad_request : http::status::payload_too_large,
                  first ? "missing the 'config' part" : first.status().message());
    }
    if ((*first)->name != "config") {
      return fail(http::status::bad_request, "the first multipart part must be 'config' (got '" +
                                                 (*first)->name + "')");
    }
    std::string yaml;
    char chunk[64 * 1024];
    while (true) {
      auto n = parts.read(chunk);
      if (!n) {
        return fail(body_error.is_ok() ? http::status::bad_request : http::status::payload_too_large,
                    n.status().message());
      }
      if (*n == 0) {
        break;
      }
      yaml.append(chunk, *n);
      if (yaml.size() > config_.max_config_bytes) {
        return fail(http::status::payload_too_large, "the 'config' part exceeds limits.max_config_bytes");
      }
    }
    auto second = parts.next_part();
    if (!second) {
      return fail(body_error.is_ok() ? http::status::bad_request : http::status::payload_too_large,
                  second.status().message());
    }
    const bool has_media = second->has_value();
    if (has_media && (*second)->name != "media") {
      return fail(http::status::bad_request,
                  "unexpected multipart part '" + (*second)->name + "' (expected 'media')");
    }
    auto compiled = engine_.compile_oneshot(yaml, has_media);
    if (!compiled.ok()) {
      const Status& e = compiled.errors.front();
      return fail(e.code() == ErrorCode::kPermissionDenied ? http::status::forbidden
                                                           : http::status::bad_request,
                  "", compiled.errors);
    }

    // Run: this thread pumps the upload, a runner thread runs the pipeline, a writer thread
    // streams the response.
    ByteQueue upload(1 << 20);
    ByteQueue output(1 << 20);
    QueueSource source(upload);
    QueueSink sink(output);
    std::atomic<bool> cancel{false};
    // Set before the upload is failed and the run cancelled, so the runner, which ends only
    // after seeing one of those, reads it and answers 413 instead of the run's own error
    // (the cancellation, or http_input's read error).
    std::atomic<bool> too_large{false};
    {
      std::lock_guard lock(cancels_mutex_);
      cancels_.insert(&cancel);
    }
    supervisor::RunReport report;
    std::atomic<bool> run_done{false};
    std::thread runner([&] {
      report = engine_.run_oneshot(compiled.pipeline, has_media ? &source : nullptr, &sink, &cancel);
      output.close(too_large.load() ? Status(ErrorCode::kResourceExhausted,
                                             "the upload exceeds limits.max_body_bytes (" +
                                                 std::to_string(config_.max_body_bytes) + " bytes)")
                                    : report.status);
      upload.abort();  // stop pumping if the pipeline ended before the upload did
      run_done.store(true);
    });
    unsigned code = 200;
    std::uint64_t bytes_out = 0;
    std::thread writer([&] {
      code = write_response(socket, req, request_id, output, sink, cancel, too_large, bytes_out);
    });
    std::uint64_t bytes_in = 0;
    if (has_media) {
      while (!cancel.load()) {
        auto n = parts.read(chunk);
        if (!n) {
          if (!body_error.is_ok()) {
            too_large.store(true);
          }
          upload.close(n.status());
          if (!body_error.is_ok()) {
            cancel.store(true);
          }
          break;
        }
        if (*n == 0) {
          upload.close();
          break;
        }
        bytes_in += *n;
        if (!upload.push(std::string(chunk, *n))) {
          break;
        }
      }
    }
    // The whole request is in: until the run ends, watch the connection, so a client that
    // goes away cancels its pipeline now. Otherwise only the next response write notices,
    // and a pipeline with sparse output (paced, or a muxer that writes at the end) ran to
    // its end for nobody, holding a max_concurrent_oneshots slot and its workers.
    while (!run_done.load() && !cancel.load()) {
      pollfd p{socket.native_handle(), POLLRDHUP, 0};
      if (::poll(&p, 1, 20) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
        spdlog::info("the client closed the connection: cancelling its pipeline");
        cancel.store(true);
      }
    }
    runner.join();
    writer.join();
    {
      std::lock_guard lock(cancels_mutex_);
      cancels_.erase(&cancel);
    }
    outcomes_.finish(request_id, code, output.status(), bytes_in, bytes_out);
    return code;
  }

  /// Streams the pipeline's output as a chunked response; an error before the first byte
  /// becomes a proper error response instead. A failure after it: with `TE: trailers` in the
  /// request, the body ends properly with an X-Skit-Error trailer (announced in `Trailer:`);
  /// otherwise without its last chunk, so that the client sees a truncated body rather than a
  /// silent success.
  unsigned write_response(tcp::socket& socket, const Request& req, const std::string& request_id,
                          ByteQueue& output, QueueSink& sink, std::atomic<bool>& cancel,
                          const std::atomic<bool>& too_large, std::uint64_t& bytes_out) {
    std::optional<std::string> first = output.pop();
    if (!first) {
      Status s = output.status();
      if (!s.is_ok()) {
        Reply r = text(too_large.load() ? http::status::payload_too_large : status_for(s),
                       s.to_string());
        r.headers.emplace_back("X-Skit-Request-Id", request_id);
        if (r.status == http::status::service_unavailable) {
          r.headers.emplace_back("Retry-After", "1");
        }
        const unsigned code = static_cast<unsigned>(r.status);
        beast::error_code ec;
        try {
          send(socket, req, std::move(r), false);
        } catch (const std::exception&) {
        }
        return code;
      }
    }
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "skit/" SKIT_VERSION);
    const std::string ct = sink.content_type();
    res.set(http::field::content_type, ct);
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Skit-Request-Id", request_id);
    const bool trailers = beast::iequals(req[http::field::te], "trailers") ||
                          req[http::field::te].find("trailers") != beast::string_view::npos;
    if (trailers) {
      res.set(http::field::trailer, "X-Skit-Error");
    }
    res.set("Referrer-Policy", "no-referrer");
    res.set("X-Frame-Options", "SAMEORIGIN");
    res.chunked(true);
    res.keep_alive(false);
    http::response_serializer<http::empty_body> sr{res};
    beast::error_code ec;
    http::write_header(socket, sr, ec);
    auto write_chunk = [&](const std::string& data) {
      if (!ec && !data.empty()) {
        net::write(socket, http::make_chunk(net::buffer(data)), ec);
        bytes_out += ec ? 0 : data.size();
      }
    };
    if (first) {
      write_chunk(*first);
    }
    while (!ec) {
      auto next = output.pop();
      if (!next) {
        break;
      }
      write_chunk(*next);
    }
    if (ec) {
      cancel.store(true);  // the client went away: stop the pipeline
      output.abort();
      return 200;
    }
    const Status s = output.status();
    if (s.is_ok()) {
      net::write(socket, http::make_chunk_last(), ec);
    } else {
      spdlog::warn("oneshot {} failed after its response started: {}", request_id, s.to_string());
      if (trailers) {
        http::fields trailer;
        std::string reason = std::string(error_code_name(s.code())) + ": " + s.to_string();
        for (char& c : reason) {
          c = c == '\n' || c == '\r' ? ' ' : c;  // one header line
        }
        trailer.set("X-Skit-Error", reason);
        net::write(socket, http::make_chunk_last(trailer), ec);
      }
    }
    return 200;
  }

  const ServerConfig& config_;
  supervisor::Engine& engine_;
  supervisor::SessionManager& sessions_;
  std::shared_ptr<net::io_context> io_;  // of every connection's socket
  ControlSockets control_sockets_;
  HttpMetrics metrics_;
  RequestOutcomes outcomes_;
  BrowserSessions browsers_;                           // browser logins (auth_cookie.cpp)
  UiRoutes ui_routes_{config_, engine_, browsers_};    // ui_routes.cpp
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> rejecting_{0};
  std::mutex cancels_mutex_;
  std::set<std::atomic<bool>*> cancels_;
  std::mutex idle_mutex_;
  std::set<int> idle_;  // sockets waiting for a request head (open while in the set)
};

}  // namespace

Status check_listen_policy(const ServerConfig& config) {
  auto ep = parse_endpoint(config.listen);
  if (!ep) {
    return ep.status();
  }
  if (config.tokens.empty() && !config.allow_insecure_non_loopback && !is_loopback(ep->host)) {
    return Status(ErrorCode::kInvalidArgument,
                  "refusing to listen on " + config.listen +
                      " without authentication: listen on 127.0.0.1, configure auth.tokens, or "
                      "set server.allow_insecure_non_loopback: true");
  }
  return Status::ok();
}

int serve_http(const ServerConfig& config, supervisor::Engine& engine,
               supervisor::SessionManager& sessions, const std::atomic<bool>& stop,
               std::function<void(unsigned short)> on_listening) {
  auto ep = parse_endpoint(config.listen);
  if (!ep) {
    spdlog::error("{}", ep.status().message());
    return 2;
  }
  auto io = std::make_shared<net::io_context>();
  tcp::acceptor acceptor(*io);
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
  const auto gateway = std::make_shared<Gateway>(config, engine, sessions, io);
  std::vector<std::thread> threads;
  std::mutex threads_mutex;
  acceptor.non_blocking(true);
  while (!stop.load()) {
    tcp::socket socket(*io);
    acceptor.accept(socket, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      pollfd p{acceptor.native_handle(), POLLIN, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    if (ec) {
      continue;
    }
    socket.non_blocking(false);
    if (gateway->connections() >= config.max_connections) {
      gateway->reject(std::move(socket));
      continue;
    }
    std::thread([gateway, s = std::make_unique<tcp::socket>(std::move(socket))]() mutable {
      gateway->handle(std::move(*s));
      s.reset();  // before the last reference to the gateway (and its io_context) may go
    }).detach();
  }
  spdlog::info("HTTP shutting down: cancelling running pipelines");
  acceptor.close();
  gateway->cancel_all();
  gateway->close_idle();
  gateway->close_control_sockets();
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while ((gateway->connections() > 0 || gateway->rejecting() > 0) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gateway->cancel_all();
    gateway->close_idle();
  }
  return 0;
}

}  // namespace skit::gateway
