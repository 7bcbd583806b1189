// SPDX-License-Identifier: MPL-2.0
#include "fleet.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>

#include "../orchestration.hpp"
#include "skit/core/ids.hpp"

namespace skit::supervisor::sessions {

namespace {
std::uint64_t resident_bytes(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  if (!(statm >> size >> resident)) {
    return 0;
  }
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}
}  // namespace

Status WorkerFleet::spawn(Session& s, LiveWorker& w) {
  w.gid = core_.next_gid++;
  w.hello = false;
  w.started = false;
  w.exited = false;
  w.kill_reason.clear();
  w.sent_seq = 0;
  w.acked_seq = 0;
  std::vector<std::string> args = {"worker", "--control", core_.control_endpoint, "--worker-id",
                                   std::to_string(w.gid)};
  const auto t0 = Clock::now();
  auto proc = WorkerProcess::spawn(core_.config.worker_executable, args);
  const auto took = Clock::now() - t0;
  if (took > milliseconds(100)) {
    spdlog::warn("session {}: spawning a worker took {} ms", s.name,
                 std::chrono::duration_cast<milliseconds>(took).count());
  }
  if (!proc) {
    return proc.status();
  }
  w.process = std::move(proc).value();
  w.spawned_at = Clock::now();
  w.last_seen = w.spawned_at;
  core_.by_gid[w.gid] = {s.id, w.slot};
  return Status::ok();
}

v1::Assign WorkerFleet::make_assign(const Session& s, const LiveWorker& w) const {
  v1::Assign a;
  a.set_worker_id(w.gid);
  a.set_heartbeat_ms(static_cast<std::uint32_t>(core_.config.heartbeat_interval.count()));
  a.set_dynamic(true);
  a.set_pool_prefix(core_.segment_name(s, "p"));
  // The policy confined the file params (canonical checked paths) when there is one.
  bool network = false;
  for (const auto& id : w.nodes) {
    network = network || s.nodes.at(id).descriptor->needs_network;
  }
  orchestration::fill_sandbox(*a.mutable_sandbox(), core_.config.sandbox,
                              core_.config.paths.has_value(), network);
  for (const auto& id : w.nodes) {
    const LiveNode& n = s.nodes.at(id);
    std::vector<std::pair<std::string, std::string>> inputs;
    for (const auto& c : s.connections) {
      if (c.to_node == id && !c.severed) {
        inputs.emplace_back(c.to_pin, c.ring);
      }
    }
    std::vector<orchestration::OutputBinding> outputs;
    for (std::size_t k = 0; k < n.descriptor->outputs.size() && k < n.pools.size(); ++k) {
      orchestration::OutputBinding out{n.descriptor->outputs[k].name, n.pools[k], {}};
      for (const auto& c : s.connections) {
        if (c.from_node == id && c.from_pin == out.pin && !c.severed) {
          out.rings.push_back(c.ring);
        }
      }
      outputs.push_back(std::move(out));
    }
    auto* node = a.add_nodes();
    orchestration::fill_node(*node, n.id, n.kind, n.worker_params.dump(), n.doorbell,
                             std::move(inputs), outputs);
    orchestration::fill_plugin(*node, *n.descriptor);
  }
  return a;
}

void WorkerFleet::handle_message(const std::string& identity, const std::string& payload) {
  v1::WorkerMessage msg;
  if (identity.size() < 2 || identity[0] != 'w' || !msg.ParseFromString(payload)) {
    return;
  }
  const auto gid = static_cast<std::uint32_t>(std::strtoul(identity.c_str() + 1, nullptr, 10));
  auto ref = core_.by_gid.find(gid);
  if (ref == core_.by_gid.end()) {
    return;
  }
  Session* s = core_.find_by_id(ref->second.first);
  if (s == nullptr) {
    return;
  }
  auto wit = s->workers.find(ref->second.second);
  if (wit == s->workers.end() || wit->second.gid != gid) {
    return;  // an old incarnation
  }
  LiveWorker& w = wit->second;
  w.last_seen = Clock::now();
  switch (msg.body_case()) {
    case v1::WorkerMessage::kHello: {
      w.hello = true;
      v1::SupervisorMessage reply;
      *reply.mutable_assign() = make_assign(*s, w);
      core_.send(w, reply);
      break;
    }
    case v1::WorkerMessage::kReady: {
      v1::SupervisorMessage start;
      start.mutable_start();
      core_.send(w, start);
      w.started = true;
      for (const auto& id : w.nodes) {
        LiveNode& n = s->nodes.at(id);
        if (n.state != LiveState::kFailed) {
          core_.set_state(*s, n, LiveState::kReady, "");
        }
      }
      break;
    }
    case v1::WorkerMessage::kState: {
      const auto& st = msg.state();
      auto it = s->nodes.find(st.node_id());
      if (it == s->nodes.end() || it->second.worker != w.slot) {
        break;
      }
      LiveNode& n = it->second;
      n.stats = orchestration::from_proto(st.stats());
      switch (st.state()) {
        case v1::NODE_STATE_RUNNING:
          if (n.state == LiveState::kRecovering) {
            ++core_.stats.worker_restarts;
          }
          core_.set_state(*s, n, LiveState::kRunning, "");
          break;
        case v1::NODE_STATE_STOPPED:
          core_.set_state(*s, n, LiveState::kStopped,
                          st.message().empty() ? "completed" : st.message());
          break;
        case v1::NODE_STATE_FAILED: {
          ++core_.stats.nodes_failed;
          core_.set_state(*s, n, LiveState::kFailed, st.message());
          // The node's runner has ended but its worker goes on (with other nodes): the
          // session goes on without it, its producers no longer blocked on it.
          n.cut_out = true;
          Rewires rewires;
          planner_.sever_node(*s, n.id, /*consumer_gone=*/true, rewires);
          planner_.send(*s, rewires);
          break;
        }
        default:
          break;
      }
      break;
    }
    case v1::WorkerMessage::kHeartbeat:
      for (const auto& hs : msg.heartbeat().stats()) {
        auto it = s->nodes.find(hs.node_id());
        if (it == s->nodes.end() || it->second.worker != w.slot) {
          continue;
        }
        LiveNode& n = it->second;
        n.stats = orchestration::from_proto(hs);
        if (milliseconds(hs.busy_ms()) >
                orchestration::call_timeout(*n.descriptor, core_.config.node_timeout) &&
            w.kill_reason.empty()) {
          w.kill_reason = n.kind + " '" + n.id + "' was stuck in one call for " +
                          std::to_string(hs.busy_ms()) + " ms (hung); its worker was killed";
          w.process.kill(SIGKILL);
        }
        maybe_emit_stats(*s, n);
      }
      break;
    case v1::WorkerMessage::kError:
      if (!w.started) {
        std::string ids;
        for (const auto& id : w.nodes) {
          ids += (ids.empty() ? "" : ", ") + id;
        }
        w.setup_error = "node " + ids + ": " + msg.error().message();
        fail_worker(*s, w, msg.error().message());
      }
      break;
    case v1::WorkerMessage::kAck:
      w.acked_seq = std::max(w.acked_seq, msg.ack().seq());
      if (!msg.ack().error().empty()) {
        spdlog::warn("session {}: worker {}: {}", s->name, w.gid, msg.ack().error());
      }
      break;
    case v1::WorkerMessage::kTuned: {
      auto it = core_.tune_waits.find(msg.tuned().op_id());
      if (it != core_.tune_waits.end()) {
        it->second.result = msg.tuned().ok()
                                ? Status::ok()
                                : Status(ErrorCode::kInvalidParam, msg.tuned().message(),
                                         {.node_id = msg.tuned().node_id()});
        const double ms =
            std::chrono::duration<double, std::milli>(Clock::now() - it->second.sent_at).count();
        spdlog::debug("session {}: tune of {} applied in {:.2f} ms", s->name,
                      msg.tuned().node_id(), ms);
      }
      break;
    }
    case v1::WorkerMessage::kReply: {
      const auto& r = msg.reply();
      auto it = core_.request_waits.find(r.request_id());
      // Only the worker the request went to may answer it, and only for that node.
      if (it == core_.request_waits.end() || it->second.worker_gid != w.gid ||
          it->second.node_id != r.node_id() || it->second.session_id != s->id) {
        spdlog::warn("session {}: worker {} answered a request it was not sent", s->name, w.gid);
        break;
      }
      constexpr std::size_t kMaxReplyBytes = 256 * 1024;
      const bool valid = r.status() >= 200 && r.status() <= 599 && r.body().size() <= kMaxReplyBytes;
      it->second.reply = valid ? NodeReply{r.status(), r.content_type(), r.body(), r.created_resource()}
                               : NodeReply::text(502, "node '" + r.node_id() + "' sent an invalid reply");
      spdlog::debug("session {}: {} answered a request in {:.2f} ms", s->name, r.node_id(),
                    std::chrono::duration<double, std::milli>(Clock::now() - it->second.sent_at).count());
      break;
    }
    case v1::WorkerMessage::kTelemetry: {
      const auto& t = msg.telemetry();
      auto it = s->nodes.find(t.node_id());
      if (it == s->nodes.end() || it->second.worker != w.slot) {
        break;
      }
      Json data = Json::parse(t.data_json(), nullptr, /*allow_exceptions=*/false);
      if (!data.is_object()) {
        break;  // the runner only sends objects; anything else is not a telemetry event
      }
      ++core_.stats.telemetry_events;
      SessionEvent e;
      e.kind = SessionEvent::Kind::kNodeTelemetry;
      e.node_id = t.node_id();
      e.telemetry = std::move(data);
      e.timestamp_us = t.timestamp_us();
      if (t.emitted_at_us() > 0) {
        e.timestamp = rfc3339(std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::microseconds(t.emitted_at_us()))));
      }
      core_.emit(*s, std::move(e));
      break;
    }
    default:
      break;
  }
}

void WorkerFleet::maybe_emit_stats(Session& s, LiveNode& n) {
  const auto now = Clock::now();
  const bool changed = n.stats.packets_in != n.emitted_stats.packets_in ||
                       n.stats.packets_out != n.emitted_stats.packets_out ||
                       n.stats.dropped != n.emitted_stats.dropped;
  if (!changed || now - n.stats_emitted_at < std::chrono::seconds(1)) {
    return;
  }
  n.stats_emitted_at = now;
  n.emitted_stats = n.stats;
  const NodeView view = core_.view_of(s, n);
  SessionEvent e;
  e.kind = SessionEvent::Kind::kNodeStatsUpdated;
  e.node_id = n.id;
  e.stats = view.stats;
  e.running_seconds = view.running_seconds;
  e.status = view.status;
  core_.emit(s, std::move(e), /*stats=*/true);
}

void WorkerFleet::on_crash(Session& s, LiveWorker& w, const std::string& reason) {
  ++core_.stats.worker_crashes;
  const auto now = Clock::now();
  const SessionConfig& config = core_.config;
  w.crashes.push_back(now);
  while (!w.crashes.empty() && now - w.crashes.front() > config.restart_window) {
    w.crashes.pop_front();
  }
  spdlog::warn("session {}: worker {} ({}) {}", s.name, w.gid,
               w.nodes.empty() ? "" : w.nodes.front(), reason);
  if (w.crashes.size() > config.max_restarts) {
    fail_worker(s, w,
                reason + "; crashed " + std::to_string(w.crashes.size()) + " times in " +
                    std::to_string(config.restart_window.count()) + " s, not restarted");
    return;
  }
  w.backoff = w.backoff.count() == 0 ? config.backoff_initial
                                     : std::min(w.backoff * 2, config.backoff_max);
  if (w.crashes.size() == 1) {
    w.backoff = config.backoff_initial;  // a first crash in the window starts over
  }
  w.restart_at = now + w.backoff;
  for (const auto& id : w.nodes) {
    LiveNode& n = s.nodes.at(id);
    ++n.restarts;
    core_.set_state(s, n, LiveState::kRecovering, reason,
                    Json{{"attempt", w.crashes.size()},
                         {"backoff_ms", w.backoff.count()},
                         {"max_restarts", config.max_restarts}});
  }
}

void WorkerFleet::fail_worker(Session& s, LiveWorker& w, const std::string& reason) {
  w.failed = true;
  w.restart_at.reset();
  if (w.process.running()) {
    w.process.kill(SIGKILL);
  }
  Rewires rewires;
  for (const auto& id : w.nodes) {
    LiveNode& n = s.nodes.at(id);
    ++core_.stats.nodes_failed;
    core_.set_state(s, n, LiveState::kFailed, reason);
    planner_.sever_node(s, id, !w.process.running() || w.process.try_reap(), rewires);
  }
  planner_.send(s, rewires);
}

void WorkerFleet::begin_destroy(Session& s) {
  if (s.destroying) {
    return;
  }
  s.destroying = true;
  s.destroy_deadline = Clock::now() + std::chrono::seconds(2);
  for (auto& [slot, w] : s.workers) {
    w.restart_at.reset();
    if (w.process.running() && w.hello) {
      v1::SupervisorMessage msg;
      msg.mutable_stop()->set_reason("session destroyed");
      core_.send(w, msg);
    } else if (w.process.running()) {
      w.process.kill(SIGKILL);
    }
  }
}

void WorkerFleet::destroy_now(Session& s) {
  const auto t0 = Clock::now();
  for (auto& [slot, w] : s.workers) {
    w.process.terminate(0);
    core_.by_gid.erase(w.gid);
  }
  const auto t1 = Clock::now();
  s.workers.clear();
  s.retired.clear();
  s.rings.clear();
  s.pools.clear();
  if (Clock::now() - t0 > milliseconds(100)) {
    spdlog::warn("session {}: teardown took {} ms ({} ms for the workers)", s.name,
                 std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count(),
                 std::chrono::duration_cast<milliseconds>(t1 - t0).count());
  }
  s.destroyed = true;
}

void WorkerFleet::check_workers(Session& s) {
  const auto now = Clock::now();
  const SessionConfig& config = core_.config;
  for (auto& [slot, w] : s.workers) {
    if (w.process.running() && w.process.try_reap()) {
      w.exited = true;
      core_.by_gid.erase(w.gid);
      if (s.destroying || w.retiring || w.failed) {
        continue;
      }
      if (w.process.exited_cleanly() && w.kill_reason.empty()) {
        continue;  // every node finished (end of stream)
      }
      if (!w.setup_error.empty()) {
        continue;  // fail_worker() already ran
      }
      on_crash(s, w,
               w.kill_reason.empty() ? "worker " + w.process.exit_description() : w.kill_reason);
      continue;
    }
    if (!w.process.running()) {
      if (w.restart_at && now >= *w.restart_at && !s.destroying) {
        w.restart_at.reset();
        planner_.reset_internal_rings(s, w);
        Status st = spawn(s, w);
        if (!st.is_ok()) {
          fail_worker(s, w, "could not restart its worker: " + st.message());
        }
      }
      continue;
    }
    // Running.
    if (w.retiring && now >= w.retire_deadline) {
      w.process.kill(SIGKILL);
      continue;
    }
    const auto silent = now - w.last_seen;
    if (silent > config.heartbeat_timeout && w.kill_reason.empty() &&
        (w.hello || silent > config.start_timeout)) {
      w.kill_reason = "stopped answering (no heartbeat for " +
                      std::to_string(config.heartbeat_timeout.count()) +
                      " ms, hung); its worker was killed";
      w.process.kill(SIGKILL);
    }
  }
}

void WorkerFleet::check_memory(Session& s) {
  const std::uint64_t limit = core_.config.worker_memory_limit_bytes;
  if (limit == 0) {
    return;
  }
  for (auto& [slot, w] : s.workers) {
    if (!w.process.running() || !w.kill_reason.empty()) {
      continue;
    }
    const std::uint64_t rss = resident_bytes(w.process.pid());
    if (rss > limit) {
      w.kill_reason = "exceeded its memory limit (resident " + std::to_string(rss >> 20) +
                      " MiB > " + std::to_string(limit >> 20) + " MiB); its worker was killed";
      w.process.kill(SIGKILL);
    }
  }
}

void WorkerFleet::collect_retired(Session& s) {
  const auto now = Clock::now();
  std::erase_if(s.retired, [&](const RetiredSegment& r) {
    if (now < r.not_before) {
      return false;
    }
    for (const auto& [gid, seq] : r.waits) {
      auto ref = core_.by_gid.find(gid);
      if (ref == core_.by_gid.end()) {
        continue;  // that incarnation is gone
      }
      auto w = s.workers.find(ref->second.second);
      if (w != s.workers.end() && w->second.gid == gid && w->second.process.running() &&
          w->second.acked_seq < seq) {
        return false;
      }
    }
    return true;  // unlinks the name
  });
  // Workers whose nodes were all removed, once they are gone.
  for (auto it = s.workers.begin(); it != s.workers.end();) {
    if (it->second.nodes.empty() && !it->second.process.running()) {
      core_.by_gid.erase(it->second.gid);
      it = s.workers.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace skit::supervisor::sessions
