// SPDX-License-Identifier: MPL-2.0
#include "planner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <set>

#include "../orchestration.hpp"
#include "skit/ipc/doorbell.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/slot_pool.hpp"

namespace skit::supervisor::sessions {

LiveNode& Planner::add_node(Session& s, const std::string& id, const std::string& kind,
                            const Json& params, const Json& worker_params,
                            const NodeDescriptor* descriptor) {
  LiveNode n;
  n.id = id;
  n.kind = kind;
  n.params = params;
  n.worker_params = worker_params;
  n.descriptor = descriptor;
  n.doorbell = ipc::doorbell_endpoint(core_.run_id + "-s" + std::to_string(s.number),
                                      "n" + std::to_string(s.next_doorbell++));
  const std::uint32_t ring_slots = orchestration::ring_slots(core_.config.ring_capacity);
  const std::uint32_t slot_count = orchestration::pool_slots(ring_slots, 0, /*live=*/true);
  for (std::size_t k = 0; k < descriptor->outputs.size(); ++k) {
    const std::size_t max_bytes = std::max<std::size_t>(64, descriptor->max_packet_bytes(params));
    const std::uint32_t index = s.next_pool++;
    auto segment = ipc::SharedSegment::create(
        core_.segment_name(s, "p" + std::to_string(index)),
        ipc::SlotPool::bytes_for(slot_count, static_cast<std::uint32_t>(max_bytes)));
    if (!segment) {
      spdlog::error("session {}: pool for {}: {}", s.name, id, segment.status().to_string());
      continue;
    }
    ipc::SlotPool::init(segment->data(), segment->size(), slot_count,
                        static_cast<std::uint32_t>(max_bytes), n.doorbell);
    s.pools.emplace(index, std::move(segment).value());
    n.pools.push_back(index);
  }
  s.order.push_back(id);
  return s.nodes.emplace(id, std::move(n)).first->second;
}

std::uint32_t Planner::add_worker_slot(Session& s) {
  LiveWorker w;
  w.slot = s.next_worker++;
  return s.workers.emplace(w.slot, std::move(w)).first->first;
}

Status Planner::add_connection(Session& s, const std::string& from_node,
                               const std::string& from_pin, const std::string& to_node,
                               const std::string& to_pin, ConnectionMode mode) {
  const std::uint32_t ring_slots = orchestration::ring_slots(core_.config.ring_capacity);
  const std::string name = core_.segment_name(s, "r" + std::to_string(s.next_ring++));
  auto segment = ipc::SharedSegment::create(name, ipc::Ring::bytes_for(ring_slots));
  if (!segment) {
    return segment.status();
  }
  ipc::Ring::init(segment->data(), segment->size(), ring_slots, mode,
                  s.nodes.at(from_node).doorbell, s.nodes.at(to_node).doorbell);
  s.rings.emplace(name, std::move(segment).value());
  s.connections.push_back(LiveConnection{from_node, from_pin, to_node, to_pin, mode, name});
  return Status::ok();
}

void Planner::attach(Session& s, Rewires& rewires, const LiveConnection& c) {
  add_change(s, rewires, c.from_node, v1::RingChange::ATTACH_OUTPUT, c.from_pin, c.ring);
  add_change(s, rewires, c.to_node, v1::RingChange::ATTACH_INPUT, c.to_pin, c.ring);
}

std::vector<LiveConnection>::iterator Planner::find_connection(Session& s, const std::string& fn,
                                                               const std::string& fp,
                                                               const std::string& tn,
                                                               const std::string& tp) {
  return std::find_if(s.connections.begin(), s.connections.end(), [&](const LiveConnection& c) {
    return c.from_node == fn && c.from_pin == fp && c.to_node == tn && c.to_pin == tp;
  });
}

void Planner::add_change(Session& s, Rewires& rewires, const std::string& node_id,
                         v1::RingChange::Type type, const std::string& pin,
                         const std::string& ring, bool drop, std::uint32_t grace_ms) {
  const LiveNode& n = s.nodes.at(node_id);
  const LiveWorker& w = s.workers.at(n.worker);
  if (!w.live()) {
    return;  // its Assign (at the next hello) is built from the model
  }
  auto* c = rewires[n.worker].add_changes();
  c->set_type(type);
  c->set_node_id(node_id);
  c->set_pin(pin);
  c->set_ring_segment(ring);
  c->set_drop(drop);
  c->set_grace_ms(grace_ms);
}

void Planner::disconnect(Session& s, Rewires& rewires, std::vector<LiveConnection>::iterator it,
                         bool consumer_removed) {
  LiveConnection c = *it;
  s.connections.erase(it);
  const LiveWorker& consumer = s.workers.at(s.nodes.at(c.to_node).worker);
  if (!consumer.live() && !consumer.process.running()) {
    // Nobody reads this ring any more (its consumer is down or restarting without it): a
    // producer blocked on it must reach a packet boundary to apply its detach.
    drain_ring(s, c.ring);
  }
  if (!c.severed) {
    const bool producer_live = s.workers.at(s.nodes.at(c.from_node).worker).live();
    add_change(s, rewires, c.from_node, v1::RingChange::DETACH_OUTPUT, c.from_pin, c.ring);
    if (!consumer_removed || !producer_live) {
      add_change(s, rewires, c.to_node, v1::RingChange::DETACH_INPUT, c.to_pin, c.ring,
                 c.mode == ConnectionMode::kBestEffort, producer_live ? 2000 : 0);
    }
  }
  retire_ring(s, c.ring, rewires, {c.from_node, c.to_node});
  SessionEvent e;
  e.kind = SessionEvent::Kind::kConnectionRemoved;
  e.connection = view_of(c);
  core_.emit(s, std::move(e));
}

void Planner::retire_ring(Session& s, const std::string& ring, Rewires& rewires,
                          const std::vector<std::string>& ends) {
  auto node = s.rings.extract(ring);
  if (node.empty()) {
    return;
  }
  RetiredSegment r;
  r.segment = std::make_unique<ipc::SharedSegment>(std::move(node.mapped()));
  r.not_before = Clock::now() + milliseconds(100);
  for (const auto& id : ends) {
    auto n = s.nodes.find(id);
    if (n == s.nodes.end()) {
      continue;
    }
    LiveWorker& w = s.workers.at(n->second.worker);
    if (w.live()) {
      // The ack of the Rewire about to be sent (sent_seq + 1) means the ring was mapped.
      const std::uint64_t seq = rewires.count(w.slot) != 0 ? w.sent_seq + 1 : w.sent_seq;
      r.waits.emplace_back(w.gid, seq);
    }
  }
  s.retired.push_back(std::move(r));
}

void Planner::remove_node(Session& s, Rewires& rewires, const std::string& node_id) {
  for (auto it = s.connections.begin(); it != s.connections.end();) {
    if (it->from_node == node_id || it->to_node == node_id) {
      const bool consumer_removed = it->to_node == node_id;
      disconnect(s, rewires, it, consumer_removed);
      it = s.connections.begin();
    } else {
      ++it;
    }
  }
  LiveNode& n = s.nodes.at(node_id);
  LiveWorker& w = s.workers.at(n.worker);
  if (w.live()) {
    auto* c = rewires[n.worker].add_changes();
    c->set_type(v1::RingChange::RETIRE);
    c->set_node_id(node_id);
  }
  std::erase(w.nodes, node_id);
  if (w.nodes.empty()) {
    w.retiring = true;
    w.retire_deadline = Clock::now() + std::chrono::seconds(3);
    w.restart_at.reset();
    if (!w.hello && w.process.running()) {
      w.process.kill(SIGKILL);  // never assigned: nothing to drain
    }
  }
  // Its pools may still back packets downstream (forwarded payloads): unlink them later.
  for (auto index : n.pools) {
    auto pool = s.pools.extract(index);
    if (!pool.empty()) {
      RetiredSegment r;
      r.segment = std::make_unique<ipc::SharedSegment>(std::move(pool.mapped()));
      r.not_before = Clock::now() + std::chrono::seconds(2);
      s.retired.push_back(std::move(r));
    }
  }
  std::erase(s.order, node_id);
  s.nodes.erase(node_id);
  SessionEvent e;
  e.kind = SessionEvent::Kind::kNodeRemoved;
  e.node_id = node_id;
  core_.emit(s, std::move(e));
}

void Planner::sever_node(Session& s, const std::string& id, bool consumer_gone,
                         Rewires& rewires) {
  for (auto& c : s.connections) {
    if (c.severed || (c.from_node != id && c.to_node != id)) {
      continue;
    }
    c.severed = true;
    if (c.to_node == id) {
      // Its producer may be blocked on the full ring: empty it so that the producer gets
      // back to a packet boundary, where it applies the detach.
      if (consumer_gone) {
        drain_ring(s, c.ring);
      }
      add_change(s, rewires, c.from_node, v1::RingChange::DETACH_OUTPUT, c.from_pin, c.ring);
    } else {
      add_change(s, rewires, c.to_node, v1::RingChange::DETACH_INPUT, c.to_pin, c.ring, true, 0);
    }
  }
}

void Planner::reset_internal_rings(Session& s, const LiveWorker& w) {
  const std::set<std::string> mine(w.nodes.begin(), w.nodes.end());
  for (const auto& c : s.connections) {
    if (mine.count(c.from_node) != 0 && mine.count(c.to_node) != 0) {
      drain_ring(s, c.ring);
    }
  }
}

void Planner::send(Session& s, Rewires& rewires) {
  for (auto& [slot, rewire] : rewires) {
    LiveWorker& w = s.workers.at(slot);
    if (!w.live() || rewire.changes_size() == 0) {
      continue;
    }
    rewire.set_seq(++w.sent_seq);
    v1::SupervisorMessage msg;
    *msg.mutable_rewire() = std::move(rewire);
    core_.send(w, msg);
  }
}

}  // namespace skit::supervisor::sessions
