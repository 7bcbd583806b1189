// SPDX-License-Identifier: MPL-2.0
#include "model.hpp"

#include <unistd.h>

#include <atomic>

#include "skit/core/ids.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/slot_pool.hpp"

namespace skit::supervisor::sessions {

Core::Core(SessionConfig c)
    : config(std::move(c)),
      events(config.event_queue_capacity == 0 ? 1024 : config.event_queue_capacity) {
  static std::atomic<std::uint32_t> counter{0};
  run_id = std::to_string(::getpid()) + "-m" + std::to_string(counter.fetch_add(1));
  if (config.event_queue_capacity == 0) {
    config.event_queue_capacity = 1024;
  }
  control = std::make_unique<zmq::socket_t>(ipc::zmq_context(), zmq::socket_type::router);
  control->set(zmq::sockopt::linger, 0);
  control->set(zmq::sockopt::router_handover, 1);
  control_endpoint = "ipc://@skit-" + run_id + "-control";
  control->bind(control_endpoint);
}

Session* Core::find(std::string_view id_or_name) {
  for (auto& s : sessions) {
    if (!s->destroying && (s->id == id_or_name || s->name == id_or_name)) {
      return s.get();
    }
  }
  return nullptr;
}

Session* Core::find_by_id(const std::string& id) {
  for (auto& s : sessions) {
    if (s->id == id) {
      return s.get();
    }
  }
  return nullptr;
}

std::string Core::segment_name(const Session& s, const std::string& what) const {
  return "skit-" + run_id + "-s" + std::to_string(s.number) + "-" + what;
}

void Core::send(const LiveWorker& w, const v1::SupervisorMessage& msg) {
  const std::string identity = "w" + std::to_string(w.gid);
  const std::string payload = msg.SerializeAsString();
  control->send(zmq::buffer(identity), zmq::send_flags::sndmore);
  control->send(zmq::buffer(payload), zmq::send_flags::dontwait);
}

NodeView Core::view_of(const Session& s, const LiveNode& n) const {
  NodeView v;
  v.id = n.id;
  v.kind = n.kind;
  v.params = n.shown_params();
  v.status = NodeStatus{n.state, n.reason, n.details};
  v.stats = n.stats;
  v.running_seconds = std::chrono::duration<double>(Clock::now() - n.started_at).count();
  const auto w = s.workers.find(n.worker);
  v.worker_pid = w != s.workers.end() && w->second.process.running() ? w->second.process.pid() : 0;
  v.restarts = n.restarts;
  return v;
}

void Core::set_state(Session& s, LiveNode& n, LiveState state, const std::string& reason,
                     Json details) {
  if (n.state == state && n.reason == reason) {
    return;
  }
  n.state = state;
  n.reason = reason;
  n.details = std::move(details);
  // Beyond StreamKit: the node's worker and its restarts, so that a client sees a restarted
  // worker as it happens without reading the pipeline again.
  const NodeView view = view_of(s, n);
  SessionEvent e;
  e.kind = SessionEvent::Kind::kNodeStateChanged;
  e.node_id = n.id;
  e.status = view.status;
  e.worker_pid = view.worker_pid;
  e.restarts = n.restarts;
  emit(s, std::move(e));
}

void Core::emit(const Session& s, SessionEvent event, bool coalesce_stats) {
  event.session_id = s.id;
  event.owner = s.owner;
  if (event.timestamp.empty()) {
    event.timestamp = rfc3339_now();
  }
  events.emit(event, coalesce_stats);
}

void drain_ring(Session& s, const std::string& name) {
  auto seg = s.rings.find(name);
  if (seg == s.rings.end()) {
    return;
  }
  auto ring = ipc::Ring::attach(seg->second.data(), seg->second.size());
  if (!ring) {
    return;
  }
  ipc::SlotDescriptor d;
  while (ring->try_pop(d)) {
    if (d.slot == ipc::kNoSlot) {
      continue;
    }
    auto pool_seg = s.pools.find(d.pool);
    if (pool_seg == s.pools.end()) {
      continue;
    }
    auto pool = ipc::SlotPool::attach(pool_seg->second.data(), pool_seg->second.size());
    if (pool && d.slot < pool->slot_count() && pool->refcount(d.slot) > 0) {
      (void)pool->release(d.slot);
    }
  }
  ring->set_consumer_waiting(false);
  // A producer sleeping on the full ring retries within its idle wait (100 ms).
}

ConnectionView view_of(const LiveConnection& c) {
  return ConnectionView{c.from_node, c.from_pin, c.to_node, c.to_pin, c.mode};
}

}  // namespace skit::supervisor::sessions
