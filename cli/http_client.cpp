// SPDX-License-Identifier: MPL-2.0
#include "http_client.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <random>

#ifndef SKIT_VERSION
#define SKIT_VERSION "0.0.0"
#endif

namespace skit::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;

Result<ServerUrl> parse_server_url(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "--server must be an http:// URL (got '" + url + "')");
  }
  std::string rest = url.substr(kScheme.size());
  ServerUrl out;
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    out.base = rest.substr(slash);
    while (!out.base.empty() && out.base.back() == '/') {
      out.base.pop_back();
    }
    rest = rest.substr(0, slash);
  }
  out.port = "80";
  if (!rest.empty() && rest.front() == '[') {  // [::1]:4545
    const auto close = rest.find(']');
    out.host = close == std::string::npos ? "" : rest.substr(1, close - 1);
    if (close != std::string::npos && close + 1 < rest.size() && rest[close + 1] == ':') {
      out.port = rest.substr(close + 2);
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    out.host = rest.substr(0, colon);
    out.port = rest.substr(colon + 1);
  } else {
    out.host = rest;
  }
  if (out.host.empty() || out.port.empty() ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument, "bad --server URL '" + url + "'");
  }
  return out;
}

namespace {

Result<tcp::socket> connect(net::io_context& io, const ServerUrl& url) {
  beast::error_code ec;
  tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) {
    return Status(ErrorCode::kUnavailable, "cannot resolve " + url.host + ": " + ec.message());
  }
  tcp::socket socket(io);
  net::connect(socket, endpoints, ec);
  if (ec) {
    return Status(ErrorCode::kUnavailable,
                  "cannot reach the server at " + url.host + ":" + url.port + ": " + ec.message());
  }
  return socket;
}

template <typename Fields>
void collect(const Fields& fields, HttpResult& out) {
  for (const auto& f : fields) {
    std::string name(f.name_string());
    for (char& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    out.headers[name] = std::string(f.value());
  }
}

Status io_error(const char* what, const beast::error_code& ec) {
  return Status(ErrorCode::kUnavailable, std::string(what) + ": " + ec.message());
}

}  // namespace

Result<HttpResult> HttpClient::request(const std::string& method, const std::string& path,
                                       const std::optional<json>& body) {
  net::io_context io;
  auto socket = connect(io, url_);
  if (!socket) {
    return socket.status();
  }
  http::request<http::string_body> req{http::string_to_verb(method), url_.base + path, 11};
  req.set(http::field::host, url_.host);
  req.set(http::field::user_agent, "skit-client/" SKIT_VERSION);
  if (!token_.empty()) {
    req.set(http::field::authorization, "Bearer " + token_);
  }
  if (body) {
    req.set(http::field::content_type, "application/json");
    req.body() = body->dump();
  }
  req.prepare_payload();
  beast::error_code ec;
  http::write(*socket, req, ec);
  if (ec) {
    return io_error("sending the request", ec);
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256ULL << 20);
  http::read(*socket, buffer, parser, ec);
  if (ec) {
    return io_error("reading the response", ec);
  }
  HttpResult out;
  out.status = parser.get().result_int();
  collect(parser.get(), out);
  out.body = std::move(parser.get().body());
  return out;
}

Result<HttpResult> HttpClient::process(const std::string& yaml, int media_fd,
                                       const std::function<Status(std::string_view)>& out,
                                       const std::function<void(const HttpResult&)>& on_head) {
  net::io_context io;
  auto socket = connect(io, url_);
  if (!socket) {
    return socket.status();
  }
  std::mt19937_64 rng(std::random_device{}());
  const std::string boundary = "skit-" + std::to_string(rng());
  const std::string head_part = "--" + boundary +
                                "\r\nContent-Disposition: form-data; name=\"config\"; "
                                "filename=\"pipeline.yml\"\r\nContent-Type: application/yaml\r\n\r\n" +
                                yaml + "\r\n";
  const std::string media_part =
      media_fd >= 0 ? "--" + boundary +
                          "\r\nContent-Disposition: form-data; name=\"media\"; filename=\"media\"\r\n"
                          "Content-Type: application/octet-stream\r\n\r\n"
                    : std::string();
  const std::string tail = (media_fd >= 0 ? "\r\n--" : "--") + boundary + "--\r\n";
  http::request<http::empty_body> req{http::verb::post, url_.base + "/api/v1/process", 11};
  req.set(http::field::host, url_.host);
  req.set(http::field::user_agent, "skit-client/" SKIT_VERSION);
  req.set(http::field::content_type, "multipart/form-data; boundary=" + boundary);
  req.set(http::field::te, "trailers");
  if (!token_.empty()) {
    req.set(http::field::authorization, "Bearer " + token_);
  }
  struct stat st {};
  const bool sized = media_fd < 0 || (::fstat(media_fd, &st) == 0 && S_ISREG(st.st_mode));
  if (sized) {
    const std::uint64_t media_bytes = media_fd >= 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    req.content_length(head_part.size() + media_part.size() + media_bytes + tail.size());
  } else {
    req.chunked(true);
  }
  beast::error_code ec;
  http::request_serializer<http::empty_body> sr{req};
  http::write_header(*socket, sr, ec);
  auto send = [&](std::string_view bytes) {
    if (ec || bytes.empty()) {
      return;
    }
    if (sized) {
      net::write(*socket, net::buffer(bytes.data(), bytes.size()), ec);
    } else {
      net::write(*socket, http::make_chunk(net::buffer(bytes.data(), bytes.size())), ec);
    }
  };
  send(head_part);
  send(media_part);
  if (media_fd >= 0) {
    std::vector<char> chunk(64 * 1024);
    while (!ec) {
      const ssize_t n = ::read(media_fd, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      send(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    }
  }
  send(tail);
  if (!sized && !ec) {
    net::write(*socket, http::make_chunk_last(), ec);
  }
  // A server that refuses the request early answers before reading the whole body: read the
  // answer whatever the upload's fate.
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  beast::error_code rec;
  http::read_header(*socket, buffer, parser, rec);
  if (rec) {
    return ec ? io_error("sending the upload", ec) : io_error("reading the response", rec);
  }
  HttpResult result;
  result.status = parser.get().result_int();
  collect(parser.get(), result);
  on_head(result);
  std::vector<char> chunk(64 * 1024);
  Status written;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    http::read(*socket, buffer, parser, rec);
    if (rec == http::error::need_buffer) {
      rec = {};
    }
    if (rec) {
      break;
    }
    const std::size_t got = chunk.size() - parser.get().body().size;
    if (result.status == 200 && written.is_ok()) {
      written = out(std::string_view(chunk.data(), got));
    } else {
      result.body.append(chunk.data(), got);
    }
  }
  collect(parser.get(), result);  // trailers (X-Skit-Error) join the fields once read
  if (!written.is_ok()) {
    return written;
  }
  if (rec && !parser.is_done()) {
    const auto it = result.headers.find("x-skit-error");
    return Status(ErrorCode::kUnavailable,
                  it != result.headers.end() ? it->second
                                             : "the response was cut off: " + rec.message());
  }
  return result;
}

Status HttpClient::control(const std::string& first,
                           const std::function<bool(const json&)>& on_message,
                           const std::atomic<bool>& cancel) {
  net::io_context io;
  auto socket = connect(io, url_);
  if (!socket) {
    return socket.status();
  }
  websocket::stream<tcp::socket> ws(std::move(socket).value());
  const std::string token = token_;
  ws.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
    req.set(http::field::user_agent, "skit-client/" SKIT_VERSION);
    if (!token.empty()) {
      req.set(http::field::authorization, "Bearer " + token);
    }
  }));
  beast::error_code ec;
  websocket::response_type res;
  ws.handshake(res, url_.host + ":" + url_.port, url_.base + "/api/v1/control", ec);
  if (ec) {
    return Status(res.result_int() == 401   ? ErrorCode::kPermissionDenied
                  : res.result_int() == 403 ? ErrorCode::kPermissionDenied
                                            : ErrorCode::kUnavailable,
                  "the WebSocket control plane refused the connection: " +
                      (res.result_int() != 0 ? "HTTP " + std::to_string(res.result_int()) + " " +
                                                   std::string(res.body())
                                             : ec.message()));
  }
  if (!first.empty()) {
    ws.write(net::buffer(first), ec);
    if (ec) {
      return io_error("sending", ec);
    }
  }
  // Each read runs on the io_context in short turns, so that `cancel` (Ctrl-C) is seen
  // without a message arriving.
  beast::flat_buffer buffer;
  while (!cancel.load()) {
    bool done = false;
    beast::error_code rec;
    ws.async_read(buffer, [&](beast::error_code e, std::size_t) {
      rec = e;
      done = true;
    });
    while (!done) {
      io.restart();
      io.run_for(std::chrono::milliseconds(200));
      if (!done && cancel.load()) {
        beast::get_lowest_layer(ws).cancel();
      }
    }
    if (rec == net::error::operation_aborted) {
      break;
    }
    if (rec) {
      return rec == websocket::error::closed ? Status::ok() : io_error("reading", rec);
    }
    const json message = json::parse(beast::buffers_to_string(buffer.data()), nullptr, false);
    buffer.consume(buffer.size());
    if (!message.is_discarded() && !on_message(message)) {
      break;
    }
  }
  ws.close(websocket::close_code::normal, ec);
  return Status::ok();
}

}  // namespace skit::cli
