// SPDX-License-Identifier: MPL-2.0
// Doorbells over ZeroMQ: a sleeping thread owns one bound PULL socket and is woken by a
// one-byte message. Only the empty->non-empty and full->not-full edges ring a doorbell.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace skit::ipc {

/// The process-wide ZeroMQ context (one I/O thread).
zmq::context_t& zmq_context();

/// Doorbell endpoint names: abstract-namespace ipc sockets leave no files behind.
std::string doorbell_endpoint(std::string_view run_id, std::string_view name);
/// Whether `endpoint` looks like one doorbell_endpoint() makes ("ipc://@" and a name of
/// letters, digits, '.', '_' and '-'), or is empty (no doorbell). Endpoints read from shared
/// memory are checked with it: a peer may have written anything there.
bool valid_doorbell_endpoint(std::string_view endpoint);

/// One thread's doorbell: it can sleep on its own endpoint and ring others'.
/// Not thread-safe: each thread owns its Doorbell.
class Doorbell {
 public:
  explicit Doorbell(std::string endpoint);
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;
  Doorbell(Doorbell&&) noexcept;
  Doorbell& operator=(Doorbell&&) noexcept;
  ~Doorbell();

  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }
  /// Binds the receiving socket (before the sandbox engages).
  void bind();
  /// Wakes whoever sleeps on `endpoint` (connects on first use, never blocks). An empty or
  /// invalid endpoint rings nobody.
  void ring(std::string_view endpoint);
  /// Opens the sending socket to `endpoint` now, so no socket is created later. False (and
  /// no socket) for an empty or invalid endpoint; never throws.
  bool connect(std::string_view endpoint);
  /// Sleeps until rung or until the timeout; drains pending rings. True if rung.
  bool wait(std::chrono::microseconds timeout);
  /// The receiving socket, to poll it together with other sockets (zmq_pollitem_t::socket).
  [[nodiscard]] void* handle() const;
  /// Number of doorbells this thread has sent (to check that busy paths send none).
  [[nodiscard]] std::uint64_t rings_sent() const { return rings_sent_; }

 private:
  std::string endpoint_;
  std::unique_ptr<zmq::socket_t> pull_;
  std::map<std::string, std::unique_ptr<zmq::socket_t>, std::less<>> push_;
  std::uint64_t rings_sent_ = 0;
};

}  // namespace skit::ipc
