// SPDX-License-Identifier: MPL-2.0
#include "script_fetch.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>

namespace skit::nodes::script {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool valid_header_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                                       std::string_view::npos;
  });
}

bool has_line_break(std::string_view v) { return v.find_first_of("\r\n") != std::string_view::npos; }

// Requests in flight in this worker, across its script nodes.
class InflightLimit {
 public:
  bool acquire(std::uint32_t limit, std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, wait, [&] { return inflight_ < limit; })) {
      return false;
    }
    ++inflight_;
    return true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      --inflight_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint32_t inflight_ = 0;
};
InflightLimit g_inflight;

struct Transfer {
  const UrlRule* rule = nullptr;
  std::string refused;  // why a connection was refused by the address rule
  std::string body;
  std::uint64_t max_bytes = 0;
  bool too_big = false;
};

curl_socket_t open_socket(void* clientp, curlsocktype /*purpose*/, curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(clientp);
  Status s = UrlPolicy::check_address(*t->rule, &address->addr);
  if (!s.is_ok()) {
    t->refused = s.message();
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  const std::size_t bytes = size * n;
  if (t->body.size() + bytes > t->max_bytes) {
    t->too_big = true;
    return 0;  // aborts the transfer
  }
  t->body.append(data, bytes);
  return bytes;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

void init_fetch_library() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Result<Fetcher> Fetcher::make(const ScriptPolicy& policy, const Json& headers_param) {
  Fetcher f;
  auto allow = UrlPolicy::make(policy.fetch_allowlist);
  if (!allow) {
    return Status(ErrorCode::kInvalidArgument,
                  "script.global_fetch_allowlist: " + allow.status().message());
  }
  f.allowlist_ = std::move(allow).value();
  f.timeout_ms_ = policy.fetch_timeout_ms;
  f.max_response_bytes_ = policy.fetch_max_response_bytes;
  f.max_inflight_ = std::max<std::uint32_t>(policy.fetch_max_inflight, 1);
  if (headers_param.is_null()) {
    return f;
  }
  std::size_t i = 0;
  for (const auto& h : headers_param) {
    const std::string where = "headers[" + std::to_string(i++) + "]";
    const std::string name = h.value("secret", "");
    const std::string header = h.value("header", "");
    const std::string tmpl = h.value("template", "{}");
    auto it = policy.secrets.find(name);
    if (it == policy.secrets.end()) {
      return Status(ErrorCode::kInvalidParam,
                    where + ": secret '" + name + "' is not defined in the server's script.secrets",
                    {.param = "headers"});
    }
    const char* value = it->second.env.empty() ? nullptr : std::getenv(it->second.env.c_str());  // NOLINT
    if (value == nullptr) {
      return Status(ErrorCode::kFailedPrecondition,
                    where + ": secret '" + name + "' has no value (environment variable '" +
                        it->second.env + "' is not set for the server)",
                    {.param = "headers"});
    }
    std::string rendered = tmpl;
    const auto pos = rendered.find("{}");
    if (pos == std::string::npos) {
      return Status(ErrorCode::kInvalidParam, where + ": template must contain {}",
                    {.param = "headers"});
    }
    rendered.replace(pos, 2, value);
    if (has_line_break(rendered)) {
      return Status(ErrorCode::kInvalidParam,
                    where + ": the value of secret '" + name + "' contains a line break",
                    {.param = "headers"});
    }
    f.secrets_.push_back({header, name, std::move(rendered), it->second.allowed_fetch_urls});
  }
  return f;
}

Result<FetchAnswer> Fetcher::fetch(const FetchRequest& request) const {
  auto url = parse_http_url(request.url);
  if (!url) {
    return Status(ErrorCode::kInvalidArgument, "fetch: " + url.status().message());
  }
  std::string method = request.method;
  std::transform(method.begin(), method.end(), method.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  auto rule = allowlist_.admit(method, *url);
  if (!rule) {
    return Status(ErrorCode::kPermissionDenied, "fetch refused: " + rule.status().message());
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  const auto add_header = [&](const std::string& line) {
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  };
  for (const auto& [name, value] : request.headers) {
    if (!valid_header_name(name) || has_line_break(value)) {
      return Status(ErrorCode::kInvalidArgument, "fetch: bad header '" + name + "'");
    }
    const bool overridden = std::any_of(secrets_.begin(), secrets_.end(), [&](const SecretHeader& s) {
      return lower(s.header) == lower(name);
    });
    if (!overridden) {
      add_header(name + ": " + value);
    }
  }
  for (const auto& s : secrets_) {
    std::vector<UrlRule> scope;
    for (const auto& pattern : s.allowed_fetch_urls) {
      scope.push_back({.url = pattern});
    }
    auto scoped = UrlPolicy::make(std::move(scope));
    if (scoped && scoped->matches(*url)) {
      add_header(s.header + ": " + s.value);
    }
  }
  if (!g_inflight.acquire(max_inflight_, std::chrono::seconds(5))) {
    return Status(ErrorCode::kResourceExhausted,
                  "fetch: " + std::to_string(max_inflight_) + " requests already in flight");
  }
  struct Release {
    ~Release() { g_inflight.release(); }
  } release;

  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    return Status(ErrorCode::kInternal, "fetch: curl_easy_init failed");
  }
  Transfer t;
  t.rule = *rule;
  t.max_bytes = max_response_bytes_;
  char errbuf[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through an environment proxy
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<std::uint32_t>(timeout_ms_, 5000)));
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "skit-script/1");
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (request.body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body->size()));
    if (method == "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "GET");
    }
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  const CURLcode rc = curl_easy_perform(c);
  if (!t.refused.empty()) {
    return Status(ErrorCode::kPermissionDenied, "fetch refused: " + t.refused);
  }
  if (t.too_big) {
    return Status(ErrorCode::kResourceExhausted,
                  "fetch: the response is larger than " + std::to_string(max_response_bytes_) + " bytes");
  }
  if (rc != CURLE_OK) {
    return Status(ErrorCode::kUnavailable, std::string("fetch ") + url->host + ": " +
                                               (errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc)));
  }
  FetchAnswer answer;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer.status);
  answer.body = std::move(t.body);
  return answer;
}

}  // namespace skit::nodes::script
