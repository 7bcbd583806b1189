// SPDX-License-Identifier: MPL-2.0
#include "input_ports.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cpu_relax.hpp"

namespace skit::runtime {

using Clock = std::chrono::steady_clock;
using Arrival = InputPorts::Arrival;

InputPorts::InputPorts(PortContext& context, FormatListener on_format)
    : context_(context), on_format_(std::move(on_format)) {}

Status InputPorts::open(const std::string& pin, const std::string& segment_name) {
  auto segment = ipc::SharedSegment::open(segment_name);
  if (!segment) {
    return segment.status();
  }
  auto ring = ipc::Ring::attach(segment->data(), segment->size());
  if (!ring) {
    return ring.status();
  }
  context_.doorbell().connect(ring->producer_doorbell());
  Connection c;
  c.name = segment_name;
  c.segment = std::make_unique<ipc::SharedSegment>(std::move(segment).value());
  c.ring = *ring;
  add(pin, std::move(c));
  return Status::ok();
}

Status InputPorts::attach(const std::string& pin, const std::string& name,
                          std::unique_ptr<ipc::SharedSegment> segment) {
  auto ring = ipc::Ring::attach(segment->data(), segment->size());
  if (!ring) {
    return ring.status();
  }
  Connection c;
  c.name = name;
  c.segment = std::move(segment);
  c.ring = *ring;
  add(pin, std::move(c));
  return Status::ok();
}

void InputPorts::add(const std::string& pin, Connection connection) {
  for (auto& in : inputs_) {
    if (in.pin == pin) {
      if (in.active || !in.next.empty()) {
        in.next.push_back(std::move(connection));
      } else {
        in.active = std::move(connection);
        in.sticky_pending = context_.options().dynamic;
      }
      in.ended = false;
      return;
    }
  }
  Input in;
  in.pin = pin;
  in.active = std::move(connection);
  in.sticky_pending = context_.options().dynamic;
  inputs_.push_back(std::move(in));
}

void InputPorts::detach(const std::string& name, bool drop, std::chrono::milliseconds grace) {
  for (auto& in : inputs_) {
    auto mark = [&](Connection& conn) {
      if (conn.name == name) {
        conn.detaching = true;
        conn.drop = drop;
        conn.deadline = Clock::now() + grace;
      }
    };
    if (in.active) {
      mark(*in.active);
    }
    for (auto& conn : in.next) {
      mark(conn);
    }
    if (in.active && in.active->detaching && grace.count() == 0) {
      advance(in);  // the producer is gone: nothing more will come
    }
  }
}

void InputPorts::advance(Input& in) {
  if (in.active) {
    // Whatever is left (a grace period ran out, or a dropped connection) is given back.
    ipc::SlotDescriptor d;
    while (in.active->ring.try_pop(d)) {
      if (d.control == ipc::kControlNone) {
        context_.release(d);
      }
    }
    in.active->ring.set_consumer_waiting(false);
    in.active.reset();
  }
  if (!in.next.empty()) {
    in.active = std::move(in.next.front());
    in.next.pop_front();
    in.ended = false;
    in.sticky_pending = context_.options().dynamic;
  }
}

void InputPorts::expire_detaching() {
  if (!context_.options().dynamic) {
    return;
  }
  const auto now = Clock::now();
  for (auto& in : inputs_) {
    if (in.active && in.active->detaching && now >= in.active->deadline) {
      context_.log().warn(
          "input '{}': the old connection sent no detach marker in time; dropping it", in.pin);
      advance(in);
    }
  }
}

Result<Arrival> InputPorts::next() {
  expire_detaching();
  SKIT_RETURN_IF_ERROR(adopt_sticky_formats());
  Arrival a;
  if (!pop_any(a.descriptor, a.index)) {
    for (const Input& in : inputs_) {
      if (in.active && in.active->ring.corrupt()) {
        return Status(ErrorCode::kCorruptMedia, "the producer of input '" + in.pin +
                                                    "' corrupted its ring (impossible indices)");
      }
    }
    return a;  // kNone
  }
  const ipc::SlotDescriptor& d = a.descriptor;
  Input& in = inputs_[a.index];
  a.type = Arrival::Type::kHandled;
  if ((d.control & ipc::kControlDetach) != 0) {
    advance(in);
    return a;
  }
  if ((d.control & ipc::kControlEndOfStream) != 0) {
    if (!in.next.empty() || (in.active && in.active->detaching)) {
      advance(in);  // a connection that is being replaced ended: go on with the next one
      return a;
    }
    in.ended = true;
    if ((d.control & ipc::kControlError) != 0) {
      return Status(ErrorCode::kCancelled, "upstream of input '" + in.pin + "' failed");
    }
    a.type = Arrival::Type::kEnd;
    return a;
  }
  if (in.active && in.active->detaching && in.active->drop) {
    context_.release(d);
    return a;
  }
  if ((d.flags & kFlagStreamInfo) != 0) {
    Status s = take_format(d, a.index);
    context_.release(d);
    SKIT_RETURN_IF_ERROR(s);
    return a;
  }
  RunnerCounters& counters = context_.counters();
  counters.packets_in.fetch_add(1, std::memory_order_relaxed);
  counters.bytes_in.fetch_add(d.size, std::memory_order_relaxed);
  if (d.pts_us >= 0 &&
      d.pts_us + d.duration_us > counters.media_time_us.load(std::memory_order_relaxed)) {
    counters.media_time_us.store(d.pts_us + d.duration_us, std::memory_order_relaxed);
  }
  a.type = Arrival::Type::kPacket;
  return a;
}

Result<std::span<const std::byte>> InputPorts::payload(const ipc::SlotDescriptor& d,
                                                       std::size_t index) {
  ipc::SlotPool* pool = context_.pools().find(d.pool);
  if (pool == nullptr || d.slot >= pool->slot_count() ||
      static_cast<std::uint64_t>(d.offset) + d.size > pool->slot_size()) {
    // Not ours to trust: say who sent it, and do not touch the pool.
    return Status(ErrorCode::kCorruptMedia,
                  "the producer of input '" + inputs_[index].pin +
                      "' sent a malformed descriptor (pool " + std::to_string(d.pool) + ", slot " +
                      std::to_string(d.slot) + ", bytes " + std::to_string(d.offset) + "+" +
                      std::to_string(d.size) + ")");
  }
  return std::span<const std::byte>(pool->slot_data(d.slot).subspan(d.offset, d.size));
}

Status InputPorts::take_format(const ipc::SlotDescriptor& d, std::size_t index) {
  auto bytes = payload(d, index);
  if (!bytes) {
    return bytes.status();
  }
  auto info = StreamInfo::parse(*bytes);
  if (!info) {
    return info.status();
  }
  return set_format(*info, static_cast<PacketKind>(d.kind), index);
}

Status InputPorts::set_format(const StreamInfo& info, PacketKind kind, std::size_t index) {
  if (inputs_[index].info && *inputs_[index].info == info) {
    return Status::ok();  // replayed to a new connection of the same stream: nothing changed
  }
  inputs_[index].info = info;
  return on_format_(index, info, kind);
}

Status InputPorts::adopt_sticky_formats() {
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    Input& in = inputs_[i];
    if (!in.sticky_pending) {
      continue;
    }
    in.sticky_pending = false;
    std::vector<std::byte> bytes;
    std::uint32_t kind = 0;
    if (!in.active || !in.active->ring.sticky(bytes, kind)) {
      continue;
    }
    auto info = StreamInfo::parse(bytes);
    if (info) {
      SKIT_RETURN_IF_ERROR(set_format(*info, static_cast<PacketKind>(kind), i));
    }
  }
  return Status::ok();
}

const StreamInfo* InputPorts::info(std::size_t index) const {
  if (index >= inputs_.size() || !inputs_[index].info) {
    return nullptr;
  }
  return &*inputs_[index].info;
}

bool InputPorts::any_connection() const {
  return std::any_of(inputs_.begin(), inputs_.end(),
                     [](const Input& in) { return (in.active && !in.ended) || !in.next.empty(); });
}

bool InputPorts::ended(std::size_t index) const {
  return index < inputs_.size() && inputs_[index].ended && inputs_[index].next.empty();
}

bool InputPorts::all_ended() const {
  return !inputs_.empty() && std::all_of(inputs_.begin(), inputs_.end(), [](const Input& in) {
    return in.ended && in.next.empty();
  });
}

void InputPorts::drain() {
  if (context_.options().dynamic) {
    for (auto& in : inputs_) {
      while (in.active || !in.next.empty()) {
        advance(in);
        if (!in.active) {
          break;
        }
      }
    }
    return;
  }
  std::size_t open = 0;
  for (const auto& in : inputs_) {
    open += in.ended ? 0 : 1;
  }
  while (open > 0 && !context_.stop_requested()) {
    ipc::SlotDescriptor d;
    std::size_t index = 0;
    if (!pop_any(d, index)) {
      wait();
      continue;
    }
    if ((d.control & ipc::kControlEndOfStream) != 0) {
      inputs_[index].ended = true;
      --open;
      continue;
    }
    context_.release(d);
  }
}

bool InputPorts::pop_any(ipc::SlotDescriptor& out, std::size_t& index) {
  const std::size_t n = inputs_.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (next_input_ + k) % n;
    Input& in = inputs_[i];
    if (in.ended || !in.active) {
      continue;
    }
    ipc::Ring& ring = in.active->ring;
    if (ring.try_pop(out)) {
      // Wake a producer blocked on a full ring once half of it has drained: it then refills
      // many slots per doorbell instead of one.
      if (ring.size() <= ring.capacity() / 2 && ring.take_producer_wakeup()) {
        context_.doorbell().ring(ring.producer_doorbell());
      }
      next_input_ = (i + 1) % n;
      index = i;
      return true;
    }
  }
  return false;
}

bool InputPorts::any_ready() const {
  return std::any_of(inputs_.begin(), inputs_.end(), [](const Input& in) {
    return !in.ended && in.active && !in.active->ring.empty();
  });
}

void InputPorts::wait(std::chrono::microseconds max_sleep) {
  const Mailbox& mailbox = context_.mailbox();
  if (context_.options().spin.count() > 0) {
    const auto spin_until = Clock::now() + context_.options().spin;
    std::uint32_t spins = 0;
    while ((++spins & 63U) != 0 || Clock::now() < spin_until) {
      if (any_ready() || context_.stop_requested() || mailbox.pending(std::memory_order_relaxed)) {
        return;
      }
      SKIT_CPU_RELAX();
    }
  }
  for (auto& in : inputs_) {
    if (!in.ended && in.active) {
      in.active->ring.set_consumer_waiting(true);
    }
  }
  if (!any_ready() && !context_.stop_requested() && !mailbox.pending()) {
    context_.sleep(std::min<std::chrono::microseconds>(context_.options().idle_wait, max_sleep));
  }
  for (auto& in : inputs_) {
    if (!in.ended && in.active) {
      in.active->ring.set_consumer_waiting(false);
    }
  }
}

}  // namespace skit::runtime
