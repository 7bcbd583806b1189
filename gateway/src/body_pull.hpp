// SPDX-License-Identifier: MPL-2.0
// A request body read in pieces, as MultipartReader::Pull wants it, from a connection whose
// request head has been read: answers `Expect: 100-continue` first, and enforces a limit.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <span>
#include <string>

#include "skit/core/status.hpp"

namespace skit::gateway {

/// Answers `Expect: 100-continue` (a client that sent it waits for this before its body;
/// curl does above 1 MiB and for chunked uploads, and would stall a second otherwise).
inline void send_continue_if_expected(
    boost::asio::ip::tcp::socket& socket,
    const boost::beast::http::request<boost::beast::http::empty_body>& head) {
  namespace http = boost::beast::http;
  if (head.version() >= 11 && boost::beast::iequals(head[http::field::expect], "100-continue")) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    boost::system::error_code ec;
    boost::asio::write(socket, boost::asio::buffer(kContinue.data(), kContinue.size()), ec);
  }
}

class BodyPull {
 public:
  using HeadParser = boost::beast::http::request_parser<boost::beast::http::empty_body>;

  /// `too_large`: the message past `limit` ("the body exceeds N bytes" when empty); `what`
  /// names the body in read errors ("reading the body failed: ...").
  BodyPull(boost::asio::ip::tcp::socket& socket, boost::beast::flat_buffer& buffer,
           HeadParser& head, std::uint64_t limit, std::string too_large = {},
           std::string what = "the body")
      : socket_(socket),
        buffer_(buffer),
        head_(head),
        limit_(limit),
        too_large_(too_large.empty() ? "the body exceeds " + std::to_string(limit) + " bytes"
                                     : std::move(too_large)),
        what_(std::move(what)) {}

  /// The next body bytes into `out`; 0 at the end.
  Result<std::size_t> operator()(std::span<char> out) {
    namespace http = boost::beast::http;
    if (!body_) {
      send_continue_if_expected(socket_, head_.get());
      body_.emplace(std::move(head_));
      body_->body_limit(limit_);
    }
    if (body_->is_done()) {
      return std::size_t{0};
    }
    body_->get().body().data = out.data();
    body_->get().body().size = out.size();
    boost::system::error_code ec;
    http::read(socket_, buffer_, *body_, ec);
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    if (ec == http::error::body_limit) {
      failed_ = true;
      exceeded_ = true;
      return Status(ErrorCode::kResourceExhausted, too_large_);
    }
    if (ec) {
      failed_ = true;
      return Status(ErrorCode::kCancelled, "reading " + what_ + " failed: " + ec.message());
    }
    return out.size() - body_->get().body().size;
  }

  /// The whole body was read (the connection can serve another request).
  [[nodiscard]] bool complete() const { return body_ && body_->is_done() && !failed_; }
  /// The body went past the limit.
  [[nodiscard]] bool exceeded() const { return exceeded_; }

 private:
  boost::asio::ip::tcp::socket& socket_;
  boost::beast::flat_buffer& buffer_;
  HeadParser& head_;
  std::uint64_t limit_;
  std::string too_large_;
  std::string what_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::buffer_body>> body_;
  bool failed_ = false;
  bool exceeded_ = false;
};

}  // namespace skit::gateway
