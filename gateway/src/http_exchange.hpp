// SPDX-License-Identifier: MPL-2.0
// One HTTP request as a route's handler sees it, past the server's guards (Origin, token):
// its head, path and route parameters, the caller's role, the body on demand, and the way to
// answer (a complete HttpReply that the server sends, or the connection taken over for a
// stream or a WebSocket).
#pragma once

#include <ostream>  // before Beast: verb.hpp streams without including it

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "body_pull.hpp"
#include "http_reply.hpp"
#include "authorization.hpp"
#include "skit/gateway/config.hpp"

namespace skit::gateway {

using HttpHead = boost::beast::http::request<boost::beast::http::empty_body>;
using HttpHeadParser = boost::beast::http::request_parser<boost::beast::http::empty_body>;

/// The headers every answer carries: Server, X-Content-Type-Options, Referrer-Policy,
/// X-Frame-Options.
void set_common_headers(boost::beast::http::fields& headers);

/// Sends a complete reply with the common headers (HTTP `version` of the request).
void send_reply(boost::asio::ip::tcp::socket& socket, unsigned version, HttpReply reply,
                bool keep_alive);

class HttpExchange {
 public:
  /// What the server does when a handler answers by itself (metrics) or hands the socket
  /// over (it is no longer the server's to close).
  struct Hooks {
    std::function<void(unsigned status)> answered;
    std::function<void()> handing_over;
  };

  HttpExchange(boost::asio::ip::tcp::socket& socket, boost::beast::flat_buffer& buffer,
               HttpHeadParser& parser, std::string path, std::string query, Caller caller,
               std::vector<std::string> params, Hooks hooks);

  /// The request head (a copy: the body reader takes the parser over).
  [[nodiscard]] const HttpHead& head() const { return head_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& query() const { return query_; }
  [[nodiscard]] Role role() const { return caller_.role; }
  /// Who sent it (the token's name and role; the admin without auth).
  [[nodiscard]] const Caller& caller() const { return caller_; }
  /// The route template's parameters, in order ("{id}": percent-decoded).
  [[nodiscard]] const std::string& param(std::size_t i) const { return params_.at(i); }
  [[nodiscard]] bool has_body() const { return has_body_; }
  [[nodiscard]] std::optional<std::uint64_t> content_length() const { return content_length_; }
  [[nodiscard]] std::string header(boost::beast::http::field f) const {
    return std::string(head_[f]);
  }

  boost::asio::ip::tcp::socket& socket() { return socket_; }
  boost::beast::flat_buffer& buffer() { return buffer_; }

  /// The body in pieces, at most `limit` bytes (the first call fixes the limit and messages;
  /// see BodyPull).
  BodyPull& body(std::uint64_t limit, std::string too_large = {}, std::string what = "the body");
  /// The whole body as text, at most `limit` bytes; else nothing, and `error` the answer
  /// (413 past the limit, with `limit_note` after the size; 400 for a read that failed).
  std::optional<std::string> read_body(std::uint64_t limit, HttpReply& error,
                                       std::string_view limit_note = {});

  /// The connection can serve another request after the answer: the client wants it and the
  /// body, if any, was read whole.
  [[nodiscard]] bool reusable() const;

  /// Sends `reply` by the handler itself (for answers that must leave before the handler
  /// goes on, or that the server would not send, e.g. on a socket about to be taken over).
  void send(HttpReply reply, bool keep_alive);
  /// The handler has answered by itself with `status` (streamed, or switched protocols): the
  /// server sends nothing and closes the connection after it.
  void answered(unsigned status);
  [[nodiscard]] std::optional<unsigned> answered_status() const { return answered_; }
  /// The socket is being handed over (a WebSocket): from now on its owner closes it.
  void handing_over();

 private:
  boost::asio::ip::tcp::socket& socket_;
  boost::beast::flat_buffer& buffer_;
  HttpHeadParser& parser_;
  HttpHead head_;
  std::string path_;
  std::string query_;
  Caller caller_;
  std::vector<std::string> params_;
  Hooks hooks_;
  bool has_body_ = false;
  std::optional<std::uint64_t> content_length_;
  std::optional<BodyPull> body_;
  std::optional<unsigned> answered_;
};

}  // namespace skit::gateway
