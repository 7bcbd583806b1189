// SPDX-License-Identifier: MPL-2.0
// The HTTP client of the end-to-end tests, with one response type: http_call() makes one
// request on a fresh connection (Boost.Beast, in-process: quick, for API calls), Curl runs a
// real curl process (what a user types: uploads, streaming, trailers, --path-as-is, rate
// limits), curl() runs one to the end. Header names are lower case. Header-only.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "audio_measure.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

inline const std::string kOperatorToken = "operator-token-0123456789";
inline const std::string kViewerToken = "viewer-token-0123456789ab";
inline const std::string kAdminToken = "admin-token-0123456789abc";

inline std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

struct Response {
  int status = 0;                              // 0: no HTTP response (see error)
  std::map<std::string, std::string> headers;  // of the final response; names in lower case
  std::vector<std::string> set_cookies;        // every Set-Cookie of the final response
  std::string raw_headers;  // curl: every response head it saw (interim 100 Continue included)
  std::string body;
  std::string body_path;  // curl: the file the body was written to
  int curl_exit = -1;     // curl: its exit code
  std::string error;      // the transport's complaint, if any
  double seconds = 0;

  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(lower(name));
    return it == headers.end() ? "" : it->second;
  }
  [[nodiscard]] nlohmann::json body_json() const {
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  }
  /// For assertion messages.
  [[nodiscard]] std::string describe() const {
    return "HTTP " + std::to_string(status) + (error.empty() ? "" : " (" + error + ")") + "\n" +
           raw_headers + body.substr(0, 2000);
  }
};

/// One request on a fresh connection.
inline Response http_call(int port, http::verb method, const std::string& target,
                              const std::string& token = kOperatorToken,
                              const std::string& body = "",
                              const std::map<std::string, std::string>& headers = {}) {
  Response out;
  try {
    net::io_context ioc;
    tcp::socket socket(ioc);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    if (!token.empty()) {
      req.set(http::field::authorization, "Bearer " + token);
    }
    for (const auto& [k, v] : headers) {
      req.set(k, v);
    }
    if (!body.empty() || method == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 << 20);
    http::read(socket, buffer, parser);
    const auto& res = parser.get();
    out.status = res.result_int();
    out.body = res.body();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (char& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      if (name == "set-cookie") {
        out.set_cookies.emplace_back(f.value());
      }
      out.headers[name] = std::string(f.value());
    }
    beast::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

/// A curl process started at construction; finish() waits for it and reads the response.
class Curl {
 public:
  Curl(const TempDir& dir, const std::vector<std::string>& args) {
    static std::atomic<int> counter{0};
    const std::string id = std::to_string(counter++);
    body_ = dir.file("response-" + id + ".body");
    head_ = dir.file("response-" + id + ".head");
    std::vector<std::string> argv = {
        find_tool("curl"), "-sS", "--max-time", "120", "-o", body_, "-D", head_, "-w",
        "%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    t0_ = std::chrono::steady_clock::now();
    process_ = std::make_unique<Process>(argv);
  }

  Response finish(std::chrono::milliseconds timeout = 150s) {
    process_->wait(timeout);
    Response r;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    r.curl_exit = process_->exit_code();
    r.error = process_->err();
    r.status = std::atoi(process_->out().c_str());
    r.body_path = body_;
    r.body = read_file(body_);
    r.raw_headers = read_file(head_);
    std::istringstream lines(r.raw_headers);
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (line.rfind("HTTP/", 0) == 0) {
        r.headers.clear();
        r.set_cookies.clear();
        // curl reports 000 for an upgrade it does not follow: the head says what came back.
        if (r.status == 0 || line.find(" 101 ") != std::string::npos) {
          r.status = std::atoi(line.c_str() + 9);
        }
        continue;
      }
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        const std::string name = lower(line.substr(0, colon));
        if (name == "set-cookie") {
          r.set_cookies.push_back(value);
        }
        r.headers[name] = value;
      }
    }
    return r;
  }

 private:
  std::string body_;
  std::string head_;
  std::chrono::steady_clock::time_point t0_;
  std::unique_ptr<Process> process_;
};

/// Runs curl with `args` to the end.
inline Response curl(const TempDir& dir, const std::vector<std::string>& args) {
  return Curl(dir, args).finish();
}

}  // namespace skit::testing
