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

#include "skit/core/status.hpp"

namespace skit::gateway {

class BodyPull {
 public:
  using HeadParser = boost::beast::http::request_parser<boost::beast::http::empty_body>;

  BodyPull(boost::asio::ip::tcp::socket& socket, boost::beast::flat_buffer& buffer,
           HeadParser& head, std::uint64_t limit)
      : socket_(socket), buffer_(buffer), head_(head), limit_(limit) {}

  /// The next body bytes into `out`; 0 at the end.
  Result<std::size_t> operator()(std::span<char> out) {
    namespace http = boost::beast::http;
    if (!body_) {
      const auto& req = head_.get();
      if (req.version() >= 11 && boost::beast::iequals(req[http::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        boost::system::error_code ec;
        boost::asio::write(socket_, boost::asio::buffer(kContinue.data(), kContinue.size()), ec);
      }
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
      return Status(ErrorCode::kResourceExhausted,
                    "the body exceeds " + std::to_string(limit_) + " bytes");
    }
    if (ec) {
      failed_ = true;
      return Status(ErrorCode::kCancelled, "reading the body failed: " + ec.message());
    }
    return out.size() - body_->get().body().size;
  }

  /// The whole body was read (the connection can serve another request).
  [[nodiscard]] bool complete() const { return body_ && body_->is_done() && !failed_; }

 private:
  boost::asio::ip::tcp::socket& socket_;
  boost::beast::flat_buffer& buffer_;
  HeadParser& head_;
  std::uint64_t limit_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::buffer_body>> body_;
  bool failed_ = false;
};

}  // namespace skit::gateway
