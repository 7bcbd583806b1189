// SPDX-License-Identifier: MPL-2.0
// The runner's thread and lifecycle: it drives the node (produce() for sources, process() per
// received packet), applies live changes between packets and reports state. Moving packets is
// the ports' business (input_ports, output_port).
#include "skit/runtime/node_runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "input_ports.hpp"
#include "output_port.hpp"
#include "port_context.hpp"
#include "rewiring.hpp"

namespace skit::runtime {

using Clock = std::chrono::steady_clock;

/// One received data packet or end of stream.
struct NodeRunner::Received {
  ipc::SlotDescriptor descriptor{};
  std::size_t index = 0;
  bool end = false;
};

namespace {
/// The runner whose thread this is (null on other threads): telemetry emitted on it may ring
/// the doorbell, which only its own thread may use.
thread_local const NodeRunner* current_runner = nullptr;

/// Long strings (a transcript, a plugin's debug dump) are cut, marked with an ellipsis, on a
/// UTF-8 character boundary.
void truncate_strings(Json& value, std::size_t max_bytes) {
  if (value.is_string()) {
    auto& text = value.get_ref<std::string&>();
    if (text.size() > max_bytes) {
      std::size_t cut = max_bytes;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) {
        --cut;
      }
      text.resize(cut);
      text += "\u2026";
    }
  } else if (value.is_object() || value.is_array()) {
    for (auto& item : value) {
      truncate_strings(item, max_bytes);
    }
  }
}

std::int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<spdlog::logger> node_logger(const std::string& node_id) {
  const std::string name = "node." + node_id;
  std::shared_ptr<spdlog::logger> logger = spdlog::get(name);
  return logger ? logger : spdlog::default_logger()->clone(name);
}
}  // namespace

NodeRunner::NodeRunner(RunnerSpec spec, std::unique_ptr<Node> node, PoolTable& pools,
                       EventSink& events, RunnerOptions options)
    : spec_(std::move(spec)),
      node_(std::move(node)),
      events_(events),
      context_(std::make_unique<PortContext>(spec_.doorbell, pools, options,
                                             node_logger(spec_.node_id))),
      inputs_(std::make_unique<InputPorts>(
          *context_, [this](std::size_t index, const StreamInfo& info,
                            PacketKind kind) { return on_input_format(index, info, kind); })),
      rewiring_(std::make_unique<Rewiring>(*inputs_, outputs_, context_->log())) {}

NodeRunner::~NodeRunner() {
  context_->request_stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void NodeRunner::bind_doorbell() {
  context_->doorbell().bind();
}

Status NodeRunner::attach() {
  ipc::Doorbell& doorbell = context_->doorbell();
  doorbell.bind();
  doorbell.connect(events_.wake_endpoint());
  for (const auto& in : spec_.inputs) {
    SKIT_RETURN_IF_ERROR(inputs_->open(in.pin, in.ring_segment));
  }
  for (const auto& out : spec_.outputs) {
    auto output = std::make_unique<OutputPort>(*context_, out.pin, out.passthrough);
    SKIT_RETURN_IF_ERROR(output->attach(out.pool_index, out.ring_segments));
    for (const auto& ring : output->rings()) {
      doorbell.connect(ring.consumer_doorbell());
    }
    outputs_.push_back(std::move(output));
  }
  return Status::ok();
}

Status NodeRunner::prepare() {
  Status s = node_->prepare(*this);
  if (!s.is_ok()) {
    last_error_ = s.to_string();
  }
  return s;
}

void NodeRunner::start() {
  thread_ = std::thread([this] { thread_main(); });
}

void NodeRunner::request_stop(ipc::Doorbell& from) {
  context_->request_stop();
  from.ring(spec_.doorbell);
}

void NodeRunner::tune(const Json& patch, ipc::Doorbell& from, std::uint64_t op_id) {
  Mailbox::Item item;
  item.is_tune = true;
  item.patch = patch;
  item.op_id = op_id;
  context_->mailbox().post(std::move(item));
  from.ring(spec_.doorbell);
}

void NodeRunner::request(NodeRequest request, std::uint64_t request_id, ipc::Doorbell& from) {
  Mailbox::Item item;
  item.request = std::move(request);
  item.op_id = request_id;
  context_->mailbox().post(std::move(item));
  from.ring(spec_.doorbell);
}

void NodeRunner::rewire(std::vector<RewireCommand> commands, ipc::Doorbell& from) {
  Mailbox::Item item;
  item.rewire = std::move(commands);
  context_->mailbox().post(std::move(item));
  from.ring(spec_.doorbell);
}

void NodeRunner::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

NodeStats NodeRunner::stats() const {
  return context_->counters().snapshot();
}

std::chrono::milliseconds NodeRunner::busy_for() const {
  const std::int64_t since = context_->busy_since_ns.load(std::memory_order_relaxed);
  if (since == 0) {
    return std::chrono::milliseconds(0);
  }
  return std::chrono::milliseconds((steady_now_ns() - since) / 1000000);
}

std::size_t NodeRunner::output_count() const {
  return outputs_.size();
}

OutputWriter& NodeRunner::output(std::size_t index) {
  return *outputs_.at(index);
}

std::optional<std::size_t> NodeRunner::output_index(std::string_view pin) const {
  for (std::size_t i = 0; i < spec_.outputs.size() && i < outputs_.size(); ++i) {
    if (spec_.outputs[i].pin == pin) {
      return i;
    }
  }
  return std::nullopt;
}

std::string NodeRunner::input_pin(std::size_t index) const {
  return index < inputs_->size() ? inputs_->pin(index) : std::string();
}

bool NodeRunner::stop_requested() const {
  return context_->stop_requested();
}

bool NodeRunner::sleep_until(Clock::time_point deadline) {
  KernelCall kernel(*context_);
  while (!stop_requested()) {
    const auto now = Clock::now();
    if (now >= deadline) {
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
    if (left < std::chrono::milliseconds(2)) {
      std::this_thread::sleep_until(deadline);  // finer than the doorbell's 1 ms poll
      return !stop_requested();
    }
    context_->sleep(std::min<std::chrono::microseconds>(left - std::chrono::milliseconds(1),
                                                        context_->options().idle_wait));
    apply_pending_commands();
  }
  return false;
}

spdlog::logger& NodeRunner::log() {
  return context_->log();
}

const StreamInfo* NodeRunner::input_info(std::size_t index) const {
  return inputs_->info(index);
}

Status NodeRunner::emit_telemetry(std::string_view event_type, const Json& data,
                                  std::int64_t timestamp_us) {
  if (event_type.empty()) {
    return Status(ErrorCode::kInvalidArgument, "a telemetry event needs an event_type",
                  {.node_id = spec_.node_id});
  }
  if (!data.is_null() && !data.is_object()) {
    return Status(ErrorCode::kInvalidArgument, "telemetry data must be a JSON object",
                  {.node_id = spec_.node_id});
  }
  const RunnerOptions& options = context_->options();
  if (!options.dynamic) {
    // A oneshot run has no watchers.
    context_->log().debug("telemetry {} (not delivered: oneshot run)", event_type);
    return Status::ok();
  }
  const TelemetryLimits& limits = options.telemetry;
  auto dropped = [&](const std::string& why) {
    context_->counters().telemetry_dropped.fetch_add(1, std::memory_order_relaxed);
    return Status(ErrorCode::kResourceExhausted, why, {.node_id = spec_.node_id});
  };
  {
    std::lock_guard lock(telemetry_mutex_);
    const auto now = Clock::now();
    if (telemetry_tokens_ < 0) {
      telemetry_tokens_ = limits.burst;
    } else {
      const double elapsed = std::chrono::duration<double>(now - telemetry_refilled_).count();
      telemetry_tokens_ = std::min(limits.burst, telemetry_tokens_ + elapsed * limits.per_second);
    }
    telemetry_refilled_ = now;
    if (telemetry_tokens_ < 1.0) {
      if (!telemetry_drop_logged_) {
        telemetry_drop_logged_ = true;
        context_->log().warn("telemetry over {} events/s; dropping (counted in stats)",
                             limits.per_second);
      }
      return dropped("telemetry over the node's cap");
    }
    telemetry_tokens_ -= 1.0;
  }
  Json event = data.is_object() ? data : Json::object();
  event["event_type"] = std::string(event_type);
  truncate_strings(event, limits.max_string_bytes);
  if (event.dump(-1, ' ', false, Json::error_handler_t::replace).size() > limits.max_event_bytes) {
    return dropped("telemetry event larger than " + std::to_string(limits.max_event_bytes) +
                   " bytes");
  }
  if (!events_.telemetry(spec_.node_id, event_type, event, timestamp_us, wall_clock_us())) {
    return dropped("telemetry queue full");
  }
  if (current_runner == this) {
    context_->doorbell().ring(events_.wake_endpoint());
  }
  return Status::ok();
}

void NodeRunner::report(NodeState state, const std::string& message, ErrorCode error) {
  events_.post(spec_.node_id, state, message, error, stats());
  context_->doorbell().ring(events_.wake_endpoint());
}

void NodeRunner::thread_main() {
  current_runner = this;
  // start() runs here, after the worker's sandbox engaged: a node's untrusted set-up (a
  // plugin's constructor) never runs unconfined.
  Status status = [this] {
    NodeCall call(*context_);
    return node_->start(*this);
  }();
  if (status.is_ok()) {
    report(NodeState::kRunning, "");
    apply_pending_commands();
    const bool source = !spec_.accepts_input || spec_.pulls_input ||
                        (inputs_->empty() && !context_->options().dynamic);
    status = source ? run_source() : run_filter();
    if (status.is_ok() && !stop_requested() && !rewiring_->retiring()) {
      NodeCall call(*context_);
      status = node_->finish(*this);
    }
  }
  const bool failed = !status.is_ok() && status.code() != ErrorCode::kCancelled;
  // Read after finish(): a node that sleeps in finish() applies live changes, a retirement too.
  const bool retiring = rewiring_->retiring();
  for (auto& out : outputs_) {
    out->close(failed, retiring && !failed);
  }
  context_->flush_wakeups();
  if (!failed) {
    // A node that ends early must not leave its producers blocked.
    if (pull_packet_) {
      context_->release(*pull_packet_);
      pull_packet_.reset();
    }
    inputs_->drain();
  }
  if (failed) {
    last_error_ = status.to_string();
    report(NodeState::kFailed, last_error_, status.code());
  } else {
    report(NodeState::kStopped, retiring ? "removed" : stop_requested() ? "shutdown" : "completed");
  }
  finished_.store(true, std::memory_order_release);
}

Status NodeRunner::run_source() {
  while (!stop_requested()) {
    apply_pending_commands();
    if (rewiring_->retiring() && (!spec_.pulls_input || !inputs_->any_connection())) {
      return Status::ok();
    }
    auto produced = [this] {
      NodeCall call(*context_);
      return node_->produce(*this);
    }();
    if (!produced) {
      return produced.status();
    }
    if (*produced == Node::Produced::kDone) {
      return Status::ok();
    }
  }
  return Status(ErrorCode::kCancelled, "stopped");
}

Status NodeRunner::run_filter() {
  while (true) {
    if (inputs_->all_ended()) {
      return Status::ok();
    }
    if (rewiring_->retiring() && !inputs_->any_connection()) {
      return Status::ok();
    }
    if (!context_->options().dynamic && inputs_->empty()) {
      return Status::ok();
    }
    if (timer_ && Clock::now() >= *timer_) {
      timer_.reset();
      NodeCall call(*context_);
      SKIT_RETURN_IF_ERROR(node_->on_timer(*this));
      continue;
    }
    auto received = receive();
    if (!received) {
      return received.status();
    }
    if (!*received) {
      continue;
    }
    const ipc::SlotDescriptor d = (*received)->descriptor;
    const std::size_t index = (*received)->index;
    if ((*received)->end) {
      NodeCall call(*context_);
      SKIT_RETURN_IF_ERROR(node_->on_input_end(*this, index));
      continue;
    }
    auto data = inputs_->payload(d, index);
    if (!data) {
      return data.status();
    }
    PacketView view;
    view.header.kind = static_cast<PacketKind>(d.kind);
    view.header.pts_us = d.pts_us;
    view.header.duration_us = d.duration_us;
    view.header.flags = d.flags;
    view.header.sample_rate = d.sample_rate;
    view.header.channels = d.channels;
    view.header.trim_start = d.trim_start;
    view.header.trim_end = d.trim_end;
    view.data = *data;
    view.sequence = d.sequence;
    view.input_index = index;
    view.forward_token = d.sequence + 1;
    context_->in_hand = d;
    Status s = [&] {
      NodeCall call(*context_);
      return node_->process(*this, view);
    }();
    context_->in_hand.slot = ipc::kNoSlot;
    context_->release(d);
    SKIT_RETURN_IF_ERROR(s);
  }
}

Result<std::optional<NodeRunner::Received>> NodeRunner::receive() {
  if (stop_requested()) {
    return Status(ErrorCode::kCancelled, "stopped");
  }
  apply_pending_commands();
  auto arrival = inputs_->next();
  if (!arrival) {
    return arrival.status();
  }
  using Type = InputPorts::Arrival::Type;
  switch (arrival->type) {
    case Type::kNone:
      if (!rewiring_->retiring() || inputs_->any_connection()) {
        if (timer_) {
          const auto left = *timer_ - Clock::now();
          inputs_->wait(std::max<std::chrono::microseconds>(
              std::chrono::duration_cast<std::chrono::microseconds>(left),
              std::chrono::microseconds(0)));
        } else {
          inputs_->wait();
        }
      }
      return std::optional<Received>{};
    case Type::kHandled:
      return std::optional<Received>{};
    case Type::kPacket:
    case Type::kEnd:
      break;
  }
  return std::optional<Received>{
      Received{arrival->descriptor, arrival->index, arrival->type == Type::kEnd}};
}

Status NodeRunner::on_input_format(std::size_t index, const StreamInfo& info, PacketKind kind) {
  for (auto& out : outputs_) {
    if (out->forwards_stream_info()) {
      SKIT_RETURN_IF_ERROR(out->write_stream_info(info, kind));
    }
  }
  NodeCall call(*context_);
  return node_->on_stream_info(*this, index, info);
}

Result<std::size_t> NodeRunner::read_input(std::span<std::byte> buffer) {
  if (!spec_.pulls_input || (inputs_->empty() && !context_->options().dynamic)) {
    return Status(ErrorCode::kInternal, "read_input() is for pull-mode nodes");
  }
  KernelCall kernel(*context_);
  while (!pull_packet_) {
    if (inputs_->ended(0)) {
      return std::size_t{0};
    }
    if (rewiring_->retiring() && !inputs_->any_connection()) {
      return std::size_t{0};
    }
    auto received = receive();
    if (!received) {
      return received.status();
    }
    if (!*received) {
      continue;
    }
    if ((*received)->end) {
      return std::size_t{0};
    }
    pull_packet_ = (*received)->descriptor;
    pull_offset_ = 0;
  }
  const ipc::SlotDescriptor& d = *pull_packet_;
  auto data = inputs_->payload(d, 0);
  if (!data) {
    return data.status();
  }
  const auto bytes = data->subspan(pull_offset_);
  const std::size_t n = std::min(bytes.size(), buffer.size());
  std::memcpy(buffer.data(), bytes.data(), n);
  pull_offset_ += static_cast<std::uint32_t>(n);
  if (pull_offset_ >= d.size) {
    context_->release(d);
    pull_packet_.reset();
  }
  return n;
}

void NodeRunner::apply_pending_commands() {
  Mailbox& mailbox = context_->mailbox();
  if (!mailbox.pending()) {
    return;
  }
  std::deque<Mailbox::Item> items = mailbox.take();
  while (!items.empty()) {
    Mailbox::Item& item = items.front();
    if (item.is_tune) {
      Status s = node_->tune(item.patch);
      if (!s.is_ok()) {
        context_->log().warn("tune rejected: {}", s.to_string());
      }
      events_.tuned(spec_.node_id, item.op_id, s);
      if (item.op_id != 0) {
        context_->doorbell().ring(events_.wake_endpoint());
      }
    } else if (item.request) {
      // The reply may come later from another thread: the sink wakes its reader itself.
      auto answered = std::make_shared<std::atomic<bool>>(false);
      node_->on_request(*this, std::move(*item.request),
                        [sink = &events_, node = spec_.node_id, id = item.op_id,
                         answered](NodeReply reply) {
                          if (!answered->exchange(true)) {
                            sink->replied(node, id, reply);
                          }
                        });
    } else if (!rewiring_->apply(item.rewire)) {
      break;  // an output is mid-packet: retry at the next boundary, keeping the order
    }
    items.pop_front();
  }
  mailbox.put_back(std::move(items));
}

}  // namespace skit::runtime
