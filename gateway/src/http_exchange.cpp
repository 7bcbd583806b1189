// SPDX-License-Identifier: MPL-2.0
#include "http_exchange.hpp"

#include <boost/beast/http/write.hpp>

#ifndef SKIT_VERSION
#define SKIT_VERSION "0.0.0"
#endif

namespace skit::gateway {

namespace http = boost::beast::http;

void set_common_headers(http::fields& headers) {
  headers.set(http::field::server, "skit/" SKIT_VERSION);
  headers.set("X-Content-Type-Options", "nosniff");
  headers.set("Referrer-Policy", "no-referrer");
  headers.set("X-Frame-Options", "SAMEORIGIN");
}

void send_reply(boost::asio::ip::tcp::socket& socket, unsigned version, HttpReply reply,
                bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
  set_common_headers(res);
  res.set(http::field::content_type, reply.content_type);
  for (const auto& [k, v] : reply.headers) {
    res.set(k, v);
  }
  res.keep_alive(keep_alive);
  res.body() = std::move(reply.body);
  res.prepare_payload();
  http::write(socket, res);
}

HttpExchange::HttpExchange(boost::asio::ip::tcp::socket& socket,
                           boost::beast::flat_buffer& buffer, HttpHeadParser& parser,
                           std::string path, std::string query, Caller caller,
                           std::vector<std::string> params, Hooks hooks)
    : socket_(socket),
      buffer_(buffer),
      parser_(parser),
      head_(parser.get()),
      path_(std::move(path)),
      query_(std::move(query)),
      caller_(std::move(caller)),
      params_(std::move(params)),
      hooks_(std::move(hooks)),
      has_body_(parser.content_length().value_or(0) > 0 || parser.chunked()),
      content_length_(parser.content_length() ? std::optional<std::uint64_t>(*parser.content_length())
                                              : std::nullopt) {}

BodyPull& HttpExchange::body(std::uint64_t limit, std::string too_large, std::string what) {
  if (!body_) {
    body_.emplace(socket_, buffer_, parser_, limit, std::move(too_large), std::move(what));
  }
  return *body_;
}

std::optional<std::string> HttpExchange::read_body(std::uint64_t limit, HttpReply& error,
                                                   std::string_view limit_note) {
  if (content_length_ && *content_length_ > limit) {
    error = HttpReply::text(413, "the body is " + std::to_string(*content_length_) +
                                     " bytes; at most " + std::to_string(limit) +
                                     std::string(limit_note));
    return std::nullopt;
  }
  std::string text;
  if (!has_body_) {
    return text;
  }
  BodyPull& pull = body(limit);
  char chunk[16 * 1024];
  while (true) {
    auto n = pull(chunk);
    if (!n) {
      error = HttpReply::text(pull.exceeded() ? 413 : 400, n.status().message());
      return std::nullopt;
    }
    if (*n == 0) {
      return text;
    }
    text.append(chunk, *n);
  }
}

bool HttpExchange::reusable() const {
  return head_.keep_alive() && (!has_body_ || (body_ && body_->complete()));
}

void HttpExchange::send(HttpReply reply, bool keep_alive) {
  send_reply(socket_, head_.version(), std::move(reply), keep_alive);
}

void HttpExchange::answered(unsigned status) {
  if (!answered_) {
    answered_ = status;
    if (hooks_.answered) {
      hooks_.answered(status);
    }
  }
}

void HttpExchange::handing_over() {
  if (hooks_.handing_over) {
    hooks_.handing_over();
  }
}

}  // namespace skit::gateway
