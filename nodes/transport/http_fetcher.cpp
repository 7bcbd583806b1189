// SPDX-License-Identifier: MPL-2.0
// transport::http::fetcher downloads a URL and streams the body as Binary packets (StreamKit's
// node of that name): http and https only, redirects never followed, the URL on
// security.allowed_fetch_urls (checked by the supervisor with the node's place, and again
// here), and every address a connection would go to checked after DNS resolution, so that a
// host name cannot lead the download to a loopback, private or link-local service.
#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "skit/core/registry.hpp"
#include "skit/core/url_policy.hpp"

namespace skit::nodes {

namespace {

struct CurlEasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};

/// The URL as errors show it: without the query, which may carry a token.
std::string shown(const ParsedUrl& url) {
  return url.scheme + "://" + url.host + ":" + std::to_string(url.port) + url.path;
}

}  // namespace

struct HttpFetcherParams {
  std::string url;
  std::int64_t chunk_size = 8192;

  static void describe(ParamSchemaBuilder<HttpFetcherParams>& b) {
    b.field("url", &HttpFetcherParams::url,
            "http(s) URL to download (security.allowed_fetch_urls; redirects are not followed).")
        .required()
        .fetch_url();
    b.field("chunk_size", &HttpFetcherParams::chunk_size, "Bytes per packet.")
        .range(1, 16 * 1024 * 1024);
  }
};

class HttpFetcherNode final : public NodeWithParams<HttpFetcherParams> {
 public:
  static constexpr std::string_view kKind = "transport::http::fetcher";
  static constexpr std::string_view kSummary =
      "Downloads a URL (http/https, on security.allowed_fetch_urls, no redirects, no private "
      "addresses unless allowed) and emits the body as Binary packets.";
  static constexpr std::string_view kCategory = "transport";
  static constexpr bool kNeedsNetwork = true;
  static std::vector<InputPinSpec> inputs() { return {}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::binary()}}; }
  static std::size_t max_packet_bytes(const Params& p) {
    return static_cast<std::size_t>(p.chunk_size);
  }

  using NodeWithParams::NodeWithParams;

  // Before the sandbox: libcurl's global set-up reads TLS configuration files.
  Status prepare(NodeContext& /*ctx*/) override {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    auto url = parse_http_url(params().url);
    if (!url) {
      return Status(ErrorCode::kInvalidParam, "url: " + url.status().message());
    }
    url_ = std::move(url).value();
    auto policy = fetch_policy_from_environment();
    if (!policy) {
      return policy.status();
    }
    auto rule = policy->admit("GET", url_);
    if (!rule) {
      return rule.status();
    }
    rule_ = **rule;
    easy_.reset(curl_easy_init());
    multi_.reset(curl_multi_init());
    if (!easy_ || !multi_) {
      return Status(ErrorCode::kInternal, "curl initialisation failed");
    }
    CURL* c = easy_.get();
    curl_easy_setopt(c, CURLOPT_URL, params().url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer_.data());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through an environment proxy
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    // A download may be long; one that stalls (under 1 byte/s for 30 s) is not.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, &HttpFetcherNode::open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, this);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &HttpFetcherNode::on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "skit-fetcher/1");
    curl_multi_add_handle(multi_.get(), c);
    return Status::ok();
  }

  Result<Produced> produce(NodeContext& ctx) override {
    const auto chunk = static_cast<std::size_t>(params().chunk_size);
    while (pending_.size() - offset_ < chunk && !done_) {
      SKIT_RETURN_IF_ERROR(step());
    }
    if (!failure_.is_ok()) {
      return failure_;
    }
    const std::size_t available = pending_.size() - offset_;
    if (available > 0) {
      const std::size_t n = std::min(chunk, available);
      auto& out = ctx.output(0);
      auto buffer = out.loan(n);
      if (!buffer) {
        return buffer.status();
      }
      std::memcpy(buffer->data(), pending_.data() + offset_, n);
      offset_ += n;
      if (offset_ == pending_.size()) {
        pending_.clear();
        offset_ = 0;
      }
      SKIT_RETURN_IF_ERROR(out.publish(n, PacketHeader{.kind = PacketKind::kBinary}));
      return Produced::kMore;
    }
    SKIT_RETURN_IF_ERROR(outcome());
    ctx.log().info("fetched {} bytes from {}", received_, shown(url_));
    return Produced::kDone;
  }

  Status finish(NodeContext& /*ctx*/) override {
    if (multi_ && easy_) {
      curl_multi_remove_handle(multi_.get(), easy_.get());
    }
    easy_.reset();
    multi_.reset();
    return Status::ok();
  }

 private:
  // One turn of the transfer: data arrives through on_body().
  Status step() {
    int running = 0;
    const CURLMcode mc = curl_multi_perform(multi_.get(), &running);
    if (mc != CURLM_OK) {
      return Status(ErrorCode::kInternal, std::string("curl: ") + curl_multi_strerror(mc));
    }
    if (running == 0) {
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
        if (msg->msg == CURLMSG_DONE) {
          result_ = msg->data.result;
        }
      }
      done_ = true;
      return Status::ok();
    }
    curl_multi_poll(multi_.get(), nullptr, 0, 200, nullptr);
    return Status::ok();
  }

  // How the transfer ended, once every byte has been passed on.
  Status outcome() const {
    if (!refused_.empty()) {
      return Status(ErrorCode::kPermissionDenied, "fetch of " + shown(url_) + " refused: " + refused_);
    }
    if (!failure_.is_ok()) {
      return failure_;
    }
    long code = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &code);
    if (result_ != CURLE_OK) {
      return Status(ErrorCode::kUnavailable,
                    "fetch of " + shown(url_) + " failed: " +
                        (error_buffer_[0] != '\0' ? error_buffer_.data() : curl_easy_strerror(result_)));
    }
    return status_error(code);
  }

  // Anything but a 2xx answer fails the node; a redirect says where it pointed.
  Status status_error(long code) const {
    if (code >= 200 && code < 300) {
      return Status::ok();
    }
    if (code >= 300 && code < 400) {
      char* location = nullptr;
      curl_easy_getinfo(easy_.get(), CURLINFO_REDIRECT_URL, &location);
      return Status(ErrorCode::kPermissionDenied,
                    "fetch of " + shown(url_) + ": HTTP " + std::to_string(code) +
                        " redirect not followed" +
                        (location != nullptr ? std::string(" (to ") + location + ")" : "") +
                        "; give the final URL");
    }
    return Status(ErrorCode::kUnavailable,
                  "fetch of " + shown(url_) + ": HTTP " + std::to_string(code));
  }

  static curl_socket_t open_socket(void* self, curlsocktype /*purpose*/, curl_sockaddr* address) {
    auto* node = static_cast<HttpFetcherNode*>(self);
    const Status s = UrlPolicy::check_address(node->rule_, &address->addr);
    if (!s.is_ok()) {
      node->refused_ = s.message();
      return CURL_SOCKET_BAD;
    }
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* self) {
    auto* node = static_cast<HttpFetcherNode*>(self);
    if (node->received_ == 0) {
      long code = 0;
      curl_easy_getinfo(node->easy_.get(), CURLINFO_RESPONSE_CODE, &code);
      node->failure_ = node->status_error(code);
      if (!node->failure_.is_ok()) {
        return 0;  // an error page is not the media: abort
      }
    }
    const std::size_t bytes = size * n;
    const auto* first = reinterpret_cast<const std::byte*>(data);
    node->pending_.insert(node->pending_.end(), first, first + bytes);
    node->received_ += bytes;
    return bytes;
  }

  ParsedUrl url_;
  UrlRule rule_;
  std::unique_ptr<CURL, CurlEasyDeleter> easy_;
  std::unique_ptr<CURLM, CurlMultiDeleter> multi_;
  std::array<char, CURL_ERROR_SIZE> error_buffer_{};
  std::vector<std::byte> pending_;
  std::size_t offset_ = 0;
  std::uint64_t received_ = 0;
  bool done_ = false;
  CURLcode result_ = CURLE_OK;
  std::string refused_;
  Status failure_ = Status::ok();
};
SKIT_REGISTER_NODE(HttpFetcherNode);

}  // namespace skit::nodes
