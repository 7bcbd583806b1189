// SPDX-License-Identifier: MPL-2.0
#include "tls_terminator.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

namespace skit::gateway {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr int kStopCheckMs = 250;  // how often an idle pump looks at the stop flag
constexpr std::size_t kChunk = 16 * 1024;  // one TLS record's worth of plaintext

/// The queued OpenSSL errors as one line ("" when there are none).
std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    std::array<char, 256> text{};
    ERR_error_string_n(e, text.data(), text.size());
    if (!out.empty()) {
      out += "; ";
    }
    out += text.data();
  }
  return out;
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

/// Browsers offer h2 first; the server speaks HTTP/1.1 (and WebSocket over it).
int select_http11(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                  const unsigned char* in, unsigned int inlen, void* /*arg*/) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no ALPN agreement: carry on without one
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

/// Owns a descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

struct TlsTerminator::Context {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx;
  std::string fingerprint;
};

namespace {

Result<std::shared_ptr<TlsTerminator::Context>> load_context(const std::string& cert_path,
                                                             const std::string& key_path) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    return Status(ErrorCode::kInternal, "TLS: cannot create a context: " + openssl_errors());
  }
  // TLS 1.2 and 1.3 only; no renegotiation (a client-driven CPU sink); no session tickets
  // keyed by a process-lifetime secret that a reload would not rotate.
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_http11, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_path.c_str()) != 1) {
    return Status(ErrorCode::kInvalidArgument, "server.cert_path " + cert_path +
                                                   ": not a readable PEM certificate chain (" +
                                                   openssl_errors() + ")");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status(ErrorCode::kInvalidArgument,
                  "server.key_path " + key_path + ": not a readable PEM private key (" +
                      openssl_errors() + ")");
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return Status(ErrorCode::kInvalidArgument, "server.key_path " + key_path +
                                                   " is not the key of the certificate in " +
                                                   cert_path + " (" + openssl_errors() + ")");
  }
  auto context = std::make_shared<TlsTerminator::Context>();
  if (X509* cert = SSL_CTX_get0_certificate(ctx.get()); cert != nullptr) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    if (X509_digest(cert, EVP_sha256(), md.data(), &len) == 1) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      for (unsigned int i = 0; i < len; ++i) {
        if (i > 0) {
          context->fingerprint += ':';
        }
        context->fingerprint += kHex[md[i] >> 4];
        context->fingerprint += kHex[md[i] & 15];
      }
    }
  }
  context->ctx = std::move(ctx);
  return context;
}

/// One connection: TLS on `net`, plaintext on `app` (the HTTP server's end of the pair).
class TlsConnection {
 public:
  TlsConnection(Fd net, Fd app, std::shared_ptr<TlsTerminator::Context> context,
       const std::atomic<bool>& stopping)
      : net_(std::move(net)), app_(std::move(app)), context_(std::move(context)),
        stopping_(stopping) {}

  void run() {
    set_nonblocking(net_.get());
    set_nonblocking(app_.get());
    ssl_.reset(SSL_new(context_->ctx.get()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), net_.get()) != 1) {
      spdlog::warn("TLS: cannot set up a connection: {}", openssl_errors());
      return;
    }
    if (!handshake()) {
      return;
    }
    relay();
  }

 private:
  enum class Io { kDone, kWantRead, kWantWrite, kClosed, kFailed };

  /// What an SSL_* call's result asks for next.
  Io classify(int rc) {
    switch (SSL_get_error(ssl_.get(), rc)) {
      case SSL_ERROR_WANT_READ:
        return Io::kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return Io::kWantWrite;
      case SSL_ERROR_ZERO_RETURN:
        return Io::kClosed;
      case SSL_ERROR_SYSCALL:
        // EOF without close_notify (a client that just closes): the end of its data.
        return ERR_peek_error() == 0 ? Io::kClosed : Io::kFailed;
      default:
        return Io::kFailed;
    }
  }

  /// Waits for `events` on the network side (or the stop flag), at most until `deadline`.
  bool wait_net(short events, Clock::time_point deadline) {
    while (!stopping_.load()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        return false;
      }
      pollfd p{net_.get(), events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, kStopCheckMs)));
      if (n > 0) {
        return true;
      }
      if (n < 0 && errno != EINTR) {
        return false;
      }
    }
    return false;
  }

  bool handshake() {
    const auto deadline = Clock::now() + kHandshakeTimeout;
    while (true) {
      ERR_clear_error();
      const int rc = SSL_accept(ssl_.get());
      if (rc == 1) {
        return true;
      }
      const Io io = classify(rc);
      if (io == Io::kWantRead || io == Io::kWantWrite) {
        if (!wait_net(io == Io::kWantRead ? POLLIN : POLLOUT, deadline)) {
          spdlog::debug("TLS: handshake timed out or stopped");
          return false;
        }
        continue;
      }
      const unsigned long e = ERR_peek_error();
      if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST) {
        // Plain HTTP sent to the TLS port: say so in plain HTTP, as a browser would show it.
        const std::string body =
            "this port speaks HTTPS (server.tls): use https:// instead of http://\n";
        const std::string reply =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        [[maybe_unused]] const ssize_t n = ::send(net_.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
        ::shutdown(net_.get(), SHUT_WR);
        spdlog::info("TLS: a plain HTTP request on the TLS port was refused");
      } else if (io == Io::kClosed) {
        spdlog::debug("TLS: the client closed during the handshake");
      } else {
        spdlog::info("TLS: handshake failed: {}", openssl_errors());
      }
      ERR_clear_error();
      return false;
    }
  }

  /// Moves bytes both ways until both directions have ended (or an error, or stop).
  void relay() {
    std::vector<char> to_app(kChunk);  // decrypted, not yet written to the app
    std::size_t to_app_at = 0;
    std::size_t to_app_end = 0;
    std::vector<char> to_net(kChunk);  // from the app, not yet accepted by SSL_write
    std::size_t to_net_len = 0;
    bool net_eof = false;        // the client sent close_notify or closed
    bool app_eof = false;        // the app shut its sending side
    bool shutdown_sent = false;  // our close_notify is out
    bool net_hup = false;        // poll said the socket hung up
    bool app_hup = false;
    while (!stopping_.load()) {
      bool progress = false;
      short net_events = 0;
      short app_events = 0;
      // Client -> app.
      if (!net_eof && to_app_at == to_app_end) {
        ERR_clear_error();
        const int n = SSL_read(ssl_.get(), to_app.data(), static_cast<int>(to_app.size()));
        if (n > 0) {
          to_app_at = 0;
          to_app_end = static_cast<std::size_t>(n);
          progress = true;
        } else {
          switch (classify(n)) {
            case Io::kWantRead: net_events |= POLLIN; break;
            case Io::kWantWrite: net_events |= POLLOUT; break;
            case Io::kClosed:
              net_eof = true;
              ::shutdown(app_.get(), SHUT_WR);  // the app reads EOF, as from a TCP client
              progress = true;
              break;
            default:
              spdlog::debug("TLS: read failed: {}", openssl_errors());
              return;
          }
        }
      }
      if (to_app_at < to_app_end) {
        const ssize_t n = ::send(app_.get(), to_app.data() + to_app_at, to_app_end - to_app_at,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          to_app_at += static_cast<std::size_t>(n);
          progress = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          app_events |= POLLOUT;
        } else if (errno != EINTR) {
          return;  // the app has closed its end: the connection is over
        }
      }
      // App -> client.
      if (!app_eof && to_net_len == 0) {
        const ssize_t n = ::recv(app_.get(), to_net.data(), to_net.size(), MSG_DONTWAIT);
        if (n > 0) {
          to_net_len = static_cast<std::size_t>(n);
          progress = true;
        } else if (n == 0) {
          app_eof = true;
          progress = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          app_events |= POLLIN;
        } else if (errno != EINTR) {
          app_eof = true;
          progress = true;
        }
      }
      if (to_net_len > 0) {
        ERR_clear_error();
        const int n = SSL_write(ssl_.get(), to_net.data(), static_cast<int>(to_net_len));
        if (n > 0) {
          // Partial writes are on: keep the rest at the front for the next call.
          std::memmove(to_net.data(), to_net.data() + n, to_net_len - static_cast<std::size_t>(n));
          to_net_len -= static_cast<std::size_t>(n);
          progress = true;
        } else {
          switch (classify(n)) {
            case Io::kWantRead: net_events |= POLLIN; break;
            case Io::kWantWrite: net_events |= POLLOUT; break;
            default:
              return;  // the client is gone
          }
        }
      }
      // The app is done sending: close_notify, then FIN, while the client may still send
      // (the server's linger close reads what the client has left).
      if (app_eof && to_net_len == 0 && !shutdown_sent) {
        ERR_clear_error();
        const int rc = SSL_shutdown(ssl_.get());
        if (rc >= 0) {
          shutdown_sent = true;
          ::shutdown(net_.get(), SHUT_WR);
          progress = true;
        } else {
          const Io io = classify(rc);
          if (io == Io::kWantWrite) {
            net_events |= POLLOUT;
          } else if (io == Io::kWantRead) {
            net_events |= POLLIN;
          } else {
            return;
          }
        }
      }
      if (net_eof && shutdown_sent && to_app_at == to_app_end) {
        return;
      }
      if (progress) {
        continue;
      }
      // A side that has hung up and of which nothing is asked stays out of the poll, or its
      // POLLHUP would wake it at once, round after round.
      std::array<pollfd, 2> p{pollfd{net_hup && net_events == 0 ? -1 : net_.get(), net_events, 0},
                              pollfd{app_hup && app_events == 0 ? -1 : app_.get(), app_events, 0}};
      if (::poll(p.data(), p.size(), kStopCheckMs) < 0 && errno != EINTR) {
        return;
      }
      if (((p[0].revents | p[1].revents) & (POLLERR | POLLNVAL)) != 0) {
        return;
      }
      net_hup = net_hup || (p[0].revents & POLLHUP) != 0;
      app_hup = app_hup || (p[1].revents & POLLHUP) != 0;
    }
  }

  Fd net_;
  Fd app_;
  std::shared_ptr<TlsTerminator::Context> context_;
  const std::atomic<bool>& stopping_;
  std::unique_ptr<SSL, SslFree> ssl_;
};

}  // namespace

TlsTerminator::TlsTerminator(std::string cert_path, std::string key_path,
                             std::shared_ptr<Context> context)
    : cert_path_(std::move(cert_path)), key_path_(std::move(key_path)),
      context_(std::move(context)) {}

TlsTerminator::~TlsTerminator() { stop(); }

Result<std::unique_ptr<TlsTerminator>> TlsTerminator::create(std::string cert_path,
                                                             std::string key_path) {
  auto context = load_context(cert_path, key_path);
  if (!context) {
    return context.status();
  }
  return std::unique_ptr<TlsTerminator>(
      new TlsTerminator(std::move(cert_path), std::move(key_path), std::move(*context)));
}

Status TlsTerminator::reload() {
  auto context = load_context(cert_path_, key_path_);
  if (!context) {
    return context.status();
  }
  std::lock_guard lock(mutex_);
  context_ = std::move(*context);
  return Status::ok();
}

std::string TlsTerminator::fingerprint() const {
  std::lock_guard lock(mutex_);
  return context_->fingerprint;
}

Result<int> TlsTerminator::wrap(int tcp_fd) {
  Fd net(tcp_fd);
  reap();
  std::array<int, 2> pair{-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.data()) != 0) {
    return Status(ErrorCode::kResourceExhausted,
                  std::string("TLS: no socket pair for a connection: ") + std::strerror(errno));
  }
  Fd app(pair[1]);
  std::lock_guard lock(mutex_);
  if (stopping_.load()) {
    ::close(pair[0]);
    return Status(ErrorCode::kUnavailable, "TLS: the server is stopping");
  }
  Pump& slot = pumps_.emplace_back();
  slot.thread = std::thread([&slot, pump = std::make_shared<TlsConnection>(std::move(net), std::move(app),
                                                                  context_, stopping_)] {
    pump->run();
    slot.done.store(true);
  });
  return pair[0];
}

void TlsTerminator::reap() {
  std::list<Pump> ended;
  {
    std::lock_guard lock(mutex_);
    for (auto it = pumps_.begin(); it != pumps_.end();) {
      auto next = std::next(it);
      if (it->done.load()) {
        ended.splice(ended.end(), pumps_, it);
      }
      it = next;
    }
  }
  for (auto& p : ended) {
    p.thread.join();
  }
}

void TlsTerminator::stop() {
  std::list<Pump> all;
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true);
    all.splice(all.end(), pumps_);
  }
  for (auto& p : all) {
    if (p.thread.joinable()) {
      p.thread.join();
    }
  }
}

}  // namespace skit::gateway
