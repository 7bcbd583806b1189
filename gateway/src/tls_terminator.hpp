// SPDX-License-Identifier: MPL-2.0
// TLS for the HTTP/WebSocket listener (server.tls): each accepted TCP connection is handed to
// a pump thread that runs the TLS session (OpenSSL) and relays the plaintext over a Unix
// socket pair, whose other end the unchanged HTTP server serves as if it were the client's
// socket. So every route, body reader, WebSocket and linger close works the same over TLS,
// and the server's certificate can be swapped (SIGHUP) without touching a live connection:
// a connection keeps the context it started with.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "skit/core/status.hpp"

namespace skit::gateway {

class TlsTerminator {
 public:
  /// Loads the PEM certificate chain and private key; errors name the file and what is wrong.
  static Result<std::unique_ptr<TlsTerminator>> create(std::string cert_path, std::string key_path);
  TlsTerminator(const TlsTerminator&) = delete;
  TlsTerminator& operator=(const TlsTerminator&) = delete;
  ~TlsTerminator();

  /// Reads the certificate and key again (after SIGHUP). On an error the context in use
  /// stays, and the error says why; new connections get the new one, open ones keep theirs.
  Status reload();

  /// Takes over the accepted TCP connection `tcp_fd` (closed in every case) and returns the
  /// descriptor of the plaintext end for the HTTP server, or an error (no descriptors left).
  Result<int> wrap(int tcp_fd);

  /// Ends every connection's pump and waits for them; after this, wrap() refuses.
  void stop();

  /// The SHA-256 fingerprint of the certificate in use ("AB:CD:..."), for the log.
  [[nodiscard]] std::string fingerprint() const;

  struct Context;  // OpenSSL's SSL_CTX, shared by the connections that started with it

 private:
  TlsTerminator(std::string cert_path, std::string key_path, std::shared_ptr<Context> context);
  void reap();

  std::string cert_path_;
  std::string key_path_;
  mutable std::mutex mutex_;
  std::shared_ptr<Context> context_;
  struct Pump {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Pump> pumps_;
  std::atomic<bool> stopping_{false};
};

}  // namespace skit::gateway
