// SPDX-License-Identifier: MPL-2.0
#include "worker_events.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

namespace skit::worker {

namespace {
v1::NodeState to_proto(NodeState s) {
  switch (s) {
    case NodeState::kInitializing:
      return v1::NODE_STATE_INITIALIZING;
    case NodeState::kReady:
      return v1::NODE_STATE_READY;
    case NodeState::kRunning:
      return v1::NODE_STATE_RUNNING;
    case NodeState::kStopped:
      return v1::NODE_STATE_STOPPED;
    case NodeState::kFailed:
      return v1::NODE_STATE_FAILED;
  }
  return v1::NODE_STATE_UNSPECIFIED;
}
}  // namespace

void fill_stats(v1::NodeStats& out, const std::string& node_id, const NodeStats& stats) {
  out.set_node_id(node_id);
  out.set_packets_in(stats.packets_in);
  out.set_packets_out(stats.packets_out);
  out.set_bytes_in(stats.bytes_in);
  out.set_bytes_out(stats.bytes_out);
  out.set_dropped(stats.dropped);
  out.set_media_time_us(stats.media_time_us);
  out.set_telemetry_dropped(stats.telemetry_dropped);
}

void EventQueue::post(const std::string& node_id, NodeState state, const std::string& message,
                      ErrorCode error, const NodeStats& stats) {
  v1::WorkerMessage m;
  auto& e = *m.mutable_state();
  e.set_node_id(node_id);
  e.set_state(to_proto(state));
  e.set_message(message);
  e.set_error_code(static_cast<std::uint32_t>(error));
  fill_stats(*e.mutable_stats(), node_id, stats);
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(m));
}

EventQueue::EventQueue(std::string endpoint)
    : endpoint_(std::move(endpoint)), wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

void EventQueue::replied(const std::string& node_id, std::uint64_t request_id,
                         const NodeReply& reply) {
  v1::WorkerMessage m;
  auto& r = *m.mutable_reply();
  r.set_node_id(node_id);
  r.set_request_id(request_id);
  r.set_status(reply.status);
  r.set_content_type(reply.content_type);
  r.set_body(reply.body);
  r.set_created_resource(reply.created_resource);
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(m));
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void EventQueue::clear_wake() const {
  std::uint64_t count = 0;
  [[maybe_unused]] const auto n = ::read(wake_fd_.get(), &count, sizeof count);
}

void EventQueue::tuned(const std::string& node_id, std::uint64_t op_id, const Status& status) {
  if (op_id == 0) {
    return;
  }
  v1::WorkerMessage m;
  auto& t = *m.mutable_tuned();
  t.set_node_id(node_id);
  t.set_op_id(op_id);
  t.set_ok(status.is_ok());
  t.set_message(status.is_ok() ? "" : status.to_string());
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(m));
}

bool EventQueue::telemetry(const std::string& node_id, std::string_view event_type,
                           const Json& data, std::int64_t timestamp_us,
                           std::int64_t emitted_at_us) {
  {
    std::lock_guard lock(mutex_);
    if (queued_telemetry_ >= kMaxQueuedTelemetry) {
      return false;
    }
    ++queued_telemetry_;
  }
  v1::WorkerMessage m;
  auto& t = *m.mutable_telemetry();
  t.set_node_id(node_id);
  t.set_event_type(std::string(event_type));
  t.set_data_json(data.dump(-1, ' ', false, Json::error_handler_t::replace));
  t.set_timestamp_us(timestamp_us);
  t.set_emitted_at_us(emitted_at_us);
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(m));
  return true;
}

std::deque<v1::WorkerMessage> EventQueue::drain() {
  std::lock_guard lock(mutex_);
  queued_telemetry_ = 0;
  return std::exchange(queue_, {});
}

}  // namespace skit::worker
