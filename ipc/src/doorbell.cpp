// SPDX-License-Identifier: MPL-2.0
#include "skit/ipc/doorbell.hpp"

#include <mutex>
#include <set>
#include <zmq.hpp>

namespace skit::ipc {

namespace {
/// Doorbells bound in this process: ringing them goes through inproc://, which skips
/// ZeroMQ's I/O thread and the Unix socket (one eventfd write instead of several syscalls
/// and two context switches).
std::mutex g_local_mutex;
std::set<std::string, std::less<>> g_local;

std::string inproc_of(std::string_view endpoint) {
  constexpr std::string_view kIpc = "ipc://@";
  if (endpoint.substr(0, kIpc.size()) != kIpc) {
    return {};
  }
  return "inproc://" + std::string(endpoint.substr(kIpc.size()));
}
}  // namespace

zmq::context_t& zmq_context() {
  static zmq::context_t context(1);
  return context;
}

std::string doorbell_endpoint(std::string_view run_id, std::string_view name) {
  std::string out = "ipc://@skit-";
  out += run_id;
  out += '-';
  out += name;
  return out;
}

bool valid_doorbell_endpoint(std::string_view endpoint) {
  if (endpoint.empty()) {
    return true;
  }
  constexpr std::string_view kPrefix = "ipc://@";
  if (endpoint.size() <= kPrefix.size() || endpoint.substr(0, kPrefix.size()) != kPrefix) {
    return false;
  }
  for (const char c : endpoint.substr(kPrefix.size())) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

Doorbell::Doorbell(std::string endpoint) : endpoint_(std::move(endpoint)) {}
Doorbell::Doorbell(Doorbell&&) noexcept = default;
Doorbell& Doorbell::operator=(Doorbell&&) noexcept = default;
Doorbell::~Doorbell() {
  if (pull_) {
    std::lock_guard lock(g_local_mutex);
    g_local.erase(endpoint_);
  }
}

void Doorbell::bind() {
  if (pull_) {
    return;
  }
  pull_ = std::make_unique<zmq::socket_t>(zmq_context(), zmq::socket_type::pull);
  pull_->set(zmq::sockopt::linger, 0);
  pull_->bind(endpoint_);
  if (const std::string local = inproc_of(endpoint_); !local.empty()) {
    pull_->bind(local);
    std::lock_guard lock(g_local_mutex);
    g_local.insert(endpoint_);
  }
}

bool Doorbell::connect(std::string_view endpoint) {
  if (push_.find(endpoint) != push_.end()) {
    return true;
  }
  if (endpoint.empty() || !valid_doorbell_endpoint(endpoint)) {
    return false;
  }
  try {
    auto socket = std::make_unique<zmq::socket_t>(zmq_context(), zmq::socket_type::push);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::sndhwm, 64);  // a doorbell backlog carries no information
    // Peers often bind a moment after we connect (workers start after the supervisor's own
    // nodes): retry fast at first instead of ZeroMQ's default 100 ms.
    socket->set(zmq::sockopt::reconnect_ivl, 2);
    socket->set(zmq::sockopt::reconnect_ivl_max, 100);
    bool local = false;
    {
      std::lock_guard lock(g_local_mutex);
      local = g_local.find(endpoint) != g_local.end();
    }
    socket->connect(local ? inproc_of(endpoint) : std::string(endpoint));
    push_.emplace(std::string(endpoint), std::move(socket));
    return true;
  } catch (const zmq::error_t&) {
    return false;  // out of sockets or file descriptors: a doorbell is only a wake-up hint
  }
}

void Doorbell::ring(std::string_view endpoint) {
  auto it = push_.find(endpoint);
  if (it == push_.end()) {
    if (!connect(endpoint)) {
      return;
    }
    it = push_.find(endpoint);
  }
  const std::byte bell{1};
  // Never block: if the peer's queue is full it will wake anyway.
  try {
    (void)it->second->send(zmq::const_buffer(&bell, 1), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    return;
  }
  ++rings_sent_;
}

void* Doorbell::handle() const { return pull_ ? pull_->handle() : nullptr; }

bool Doorbell::wait(std::chrono::microseconds timeout) {
  zmq::pollitem_t item{pull_->handle(), 0, ZMQ_POLLIN, 0};
  // Round up: a sub-millisecond timeout must still sleep, not turn into a busy poll.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout);
  int rc = 0;
  try {
    rc = zmq::poll(&item, 1, ms);
  } catch (const zmq::error_t&) {
    return false;  // EINTR
  }
  if (rc <= 0) {
    return false;
  }
  zmq::message_t msg;
  while (pull_->recv(msg, zmq::recv_flags::dontwait)) {
  }
  return true;
}

}  // namespace skit::ipc
