// SPDX-License-Identifier: MPL-2.0
#include "output_port.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "cpu_relax.hpp"

namespace skit::runtime {

using Clock = std::chrono::steady_clock;

OutputPort::OutputPort(PortContext& context, std::string pin, bool forwards_stream_info)
    : context_(context), pin_(std::move(pin)), forwards_stream_info_(forwards_stream_info) {}

Status OutputPort::attach(std::uint32_t pool_index, const std::vector<std::string>& ring_segments) {
  pool_index_ = pool_index;
  for (const auto& name : ring_segments) {
    auto segment = ipc::SharedSegment::open(name);
    if (!segment) {
      return segment.status();
    }
    SKIT_RETURN_IF_ERROR(
        add_ring(name, std::make_unique<ipc::SharedSegment>(std::move(segment).value()), false));
  }
  if (!rings_.empty() || context_.options().dynamic) {
    ipc::SlotPool* pool = context_.pools().find(pool_index);
    if (pool == nullptr) {
      return Status(ErrorCode::kInternal, "output '" + pin_ + "' has no slot pool");
    }
    pool_ = *pool;
    has_pool_ = true;
  }
  return Status::ok();
}

bool OutputPort::has_ring(const std::string& name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

Status OutputPort::add_ring(const std::string& name, std::unique_ptr<ipc::SharedSegment> segment,
                            bool replay) {
  auto ring = ipc::Ring::attach(segment->data(), segment->size());
  if (!ring) {
    return ring.status();
  }
  rings_.push_back(*ring);
  segments_.push_back(std::move(segment));
  names_.push_back(name);
  if (!info_bytes_.empty()) {
    (void)rings_.back().set_sticky(info_bytes_, static_cast<std::uint32_t>(info_header_.kind));
  }
  if (replay && !info_bytes_.empty() && has_pool_ && info_bytes_.size() <= pool_.slot_size()) {
    // A consumer that joins mid-stream still learns the format first.
    std::optional<std::uint32_t> slot;
    const auto give_up = Clock::now() + std::chrono::milliseconds(500);
    while (!(slot = pool_.try_acquire()) && Clock::now() < give_up && !context_.stop_requested()) {
      context_.doorbell().wait(std::chrono::milliseconds(5));
    }
    if (slot) {
      std::memcpy(pool_.slot_data(*slot).data(), info_bytes_.data(), info_bytes_.size());
      ipc::SlotDescriptor d;
      d.pool = pool_index_;
      d.slot = *slot;
      d.size = static_cast<std::uint32_t>(info_bytes_.size());
      fill_header(d, info_header_);
      (void)push_one(rings_.back(), d, /*droppable=*/false);
    } else {
      context_.log().warn("no free slot to replay the stream format to a new connection");
    }
  }
  return Status::ok();
}

void OutputPort::remove_ring(const std::string& name) {
  auto it = std::find(names_.begin(), names_.end(), name);
  if (it == names_.end()) {
    return;
  }
  const auto i = static_cast<std::size_t>(it - names_.begin());
  ipc::SlotDescriptor d;
  d.control = ipc::kControlDetach;
  d.sequence = sequence_++;
  push_marker(rings_[i], d);
  rings_.erase(rings_.begin() + static_cast<std::ptrdiff_t>(i));
  segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(i));
  names_.erase(names_.begin() + static_cast<std::ptrdiff_t>(i));
}

void OutputPort::close(bool failed, bool detach) {
  ipc::SlotDescriptor d;
  std::uint8_t control = ipc::kControlEndOfStream;
  if (failed) {
    control |= ipc::kControlError;
  }
  d.control = detach ? static_cast<std::uint8_t>(ipc::kControlDetach) : control;
  d.sequence = sequence_++;
  for (auto& ring : rings_) {
    if (detach) {
      push_marker(ring, d);
    } else {
      (void)push_one(ring, d, /*droppable=*/false);
    }
  }
}

void OutputPort::flush_wakeups() {
  if (!wake_pending_) {
    return;
  }
  wake_pending_ = false;
  for (auto& ring : rings_) {
    wake_consumer_now(ring);
  }
}

Result<std::span<std::byte>> OutputPort::loan(std::size_t bytes) {
  KernelCall kernel(context_);
  if (rings_.empty()) {  // unconnected output: packets go nowhere
    scratch_.resize(std::max(scratch_.size(), bytes));
    scratch_loan_ = true;
    return std::span<std::byte>(scratch_.data(), bytes);
  }
  if (bytes > pool_.slot_size()) {
    return Status(ErrorCode::kResourceExhausted,
                  "packet of " + std::to_string(bytes) + " bytes exceeds the " +
                      std::to_string(pool_.slot_size()) + "-byte slots of output '" + pin_ + "'");
  }
  loaned_bytes_ = bytes;
  if (loaned_ != ipc::kNoSlot) {
    return std::span<std::byte>(pool_.slot_data(loaned_).data(), bytes);
  }
  const auto spin_until = Clock::now() + context_.options().spin;
  std::uint32_t spins = 0;
  while (true) {
    if (auto slot = pool_.try_acquire()) {
      loaned_ = *slot;
      return std::span<std::byte>(pool_.slot_data(loaned_).data(), bytes);
    }
    if (context_.stop_requested()) {
      return Status(ErrorCode::kCancelled, "stopped while waiting for a free slot");
    }
    if ((++spins & 63U) != 0 || Clock::now() < spin_until) {
      SKIT_CPU_RELAX();
      continue;
    }
    pool_.set_owner_waiting(true);
    if (auto slot = pool_.try_acquire()) {
      pool_.set_owner_waiting(false);
      loaned_ = *slot;
      return std::span<std::byte>(pool_.slot_data(loaned_).data(), bytes);
    }
    context_.sleep(context_.options().idle_wait);
    pool_.set_owner_waiting(false);
  }
}

Status OutputPort::publish(std::size_t used, const PacketHeader& header) {
  KernelCall kernel(context_);
  const bool stream_info = (header.flags & kFlagStreamInfo) != 0;
  if (!stream_info) {
    context_.counters().packets_out.fetch_add(1, std::memory_order_relaxed);
    context_.counters().bytes_out.fetch_add(used, std::memory_order_relaxed);
  }
  const bool scratch = scratch_loan_;
  scratch_loan_ = false;
  if (stream_info) {
    const std::byte* src = scratch                   ? scratch_.data()
                           : loaned_ != ipc::kNoSlot ? pool_.slot_data(loaned_).data()
                                                     : nullptr;
    if (src != nullptr) {
      remember_stream_info({src, used}, header);
    }
  }
  if (rings_.empty()) {
    if (loaned_ != ipc::kNoSlot) {  // connections left between loan() and publish()
      pool_.set_refs(loaned_, 0);
      loaned_ = ipc::kNoSlot;
    }
    return Status::ok();
  }
  if (loaned_ == ipc::kNoSlot) {
    return Status(ErrorCode::kInternal, "publish() without loan()");
  }
  if (used > loaned_bytes_) {
    return Status(ErrorCode::kInternal, "publish() of " + std::to_string(used) + " bytes after a loan of " +
                                            std::to_string(loaned_bytes_) + " on output '" + pin_ + "'");
  }
  ipc::SlotDescriptor d;
  d.pool = pool_index_;
  d.slot = loaned_;
  d.offset = 0;
  d.size = static_cast<std::uint32_t>(used);
  fill_header(d, header);
  loaned_ = ipc::kNoSlot;
  pool_.set_refs(d.slot, static_cast<std::uint32_t>(rings_.size()));
  return push_all(d);
}

Status OutputPort::forward(const PacketView& packet) {
  KernelCall kernel(context_);
  context_.counters().packets_out.fetch_add(1, std::memory_order_relaxed);
  context_.counters().bytes_out.fetch_add(packet.data.size(), std::memory_order_relaxed);
  if (rings_.empty()) {
    return Status::ok();
  }
  const ipc::SlotDescriptor& in_hand = context_.in_hand;
  if (packet.forward_token != in_hand.sequence + 1 || in_hand.slot == ipc::kNoSlot) {
    return Status(ErrorCode::kInternal, "forward() of a packet that is not being processed");
  }
  ipc::SlotDescriptor d = in_hand;
  ipc::SlotPool* pool = context_.pools().find(d.pool);
  const std::span<std::byte> slot = pool != nullptr ? pool->slot_data(d.slot) : std::span<std::byte>{};
  // The forwarded bytes must be (a part of) the slot in hand: a node may trim a packet but
  // never point a descriptor outside the slot it holds.
  const auto* begin = packet.data.data();
  if (slot.empty() || begin < slot.data() || begin + packet.data.size() > slot.data() + slot.size()) {
    return Status(ErrorCode::kInternal, "forward() of bytes outside the packet's slot on output '" +
                                            pin_ + "'");
  }
  d.offset = static_cast<std::uint32_t>(begin - slot.data());
  d.size = static_cast<std::uint32_t>(packet.data.size());
  fill_header(d, packet.header);
  // We hold a reference for the packet in hand, so adding more cannot race with a free.
  if (!pool->add_refs(d.slot, static_cast<std::uint32_t>(rings_.size()))) {
    return Status(ErrorCode::kInternal, "the slot of the packet in hand holds no reference (output '" +
                                            pin_ + "')");
  }
  return push_all(d);
}

std::size_t OutputPort::max_packet_bytes() const {
  return has_pool_ ? pool_.slot_size() : std::size_t{1} << 30;
}

void OutputPort::fill_header(ipc::SlotDescriptor& d, const PacketHeader& header) {
  d.sequence = sequence_++;
  d.pts_us = header.pts_us;
  d.duration_us = header.duration_us;
  d.flags = header.flags;
  d.sample_rate = header.sample_rate;
  d.channels = header.channels;
  d.trim_start = header.trim_start;
  d.trim_end = header.trim_end;
  d.kind = static_cast<std::uint8_t>(header.kind);
  d.control = ipc::kControlNone;
}

void OutputPort::remember_stream_info(std::span<const std::byte> bytes,
                                      const PacketHeader& header) {
  // Kept for consumers that connect later (replayed by add_ring()) and recorded in every ring
  // (sticky) for consumers that restart.
  info_bytes_.assign(bytes.begin(), bytes.end());
  info_header_ = header;
  for (auto& ring : rings_) {
    (void)ring.set_sticky(info_bytes_, static_cast<std::uint32_t>(header.kind));
  }
}

Status OutputPort::push_all(const ipc::SlotDescriptor& d) {
  for (std::size_t i = 0; i < rings_.size(); ++i) {
    Status s = push_one(rings_[i], d, /*droppable=*/true);
    if (!s.is_ok()) {
      // Give back the references meant for the rings we did not reach.
      for (std::size_t j = i; j < rings_.size(); ++j) {
        context_.release(d);
      }
      return s;
    }
  }
  return Status::ok();
}

Status OutputPort::push_one(ipc::Ring& ring, const ipc::SlotDescriptor& d, bool droppable) {
  const bool best_effort = ring.mode() == ConnectionMode::kBestEffort;
  const auto spin_until = Clock::now() + context_.options().spin;
  std::uint32_t spins = 0;
  while (!ring.try_push(d)) {
    if (ring.corrupt()) {
      return Status(ErrorCode::kCorruptMedia,
                    "the consumer of output '" + pin_ + "' corrupted its ring (impossible indices)");
    }
    if (best_effort) {
      (void)drop_oldest(ring, /*keep_control=*/true);
      continue;
    }
    if (context_.stop_requested() && droppable) {
      return Status(ErrorCode::kCancelled, "stopped while the output was blocked");
    }
    if ((++spins & 63U) != 0 || Clock::now() < spin_until) {
      SKIT_CPU_RELAX();
      continue;
    }
    ring.set_producer_waiting(true);
    if (ring.try_push(d)) {
      ring.set_producer_waiting(false);
      break;
    }
    context_.sleep(context_.options().idle_wait);
    ring.set_producer_waiting(false);
    if (context_.stop_requested() && !droppable) {
      return Status(ErrorCode::kCancelled, "stopped");  // the consumer is going away too
    }
  }
  // Wake a sleeping consumer now only at end of stream or once a batch is queued; else defer
  // until this thread sleeps (PortContext::flush_wakeups) or the batch fills.
  if (!droppable || ring.size() >= context_.options().wake_batch) {
    wake_consumer_now(ring);
  } else if (!wake_pending_) {
    wake_pending_ = true;
    context_.defer_wakeup(*this);
  }
  return Status::ok();
}

void OutputPort::push_marker(ipc::Ring& ring, const ipc::SlotDescriptor& d) {
  // On a live ring: wait a bounded time on a full reliable ring (its consumer may be gone; it
  // then gives up on the marker after its grace period).
  const auto give_up = Clock::now() + std::chrono::seconds(1);
  while (!ring.try_push(d)) {
    if (ring.corrupt()) {
      return;  // nobody honest reads this ring any more
    }
    if (ring.mode() == ConnectionMode::kBestEffort) {
      (void)drop_oldest(ring, /*keep_control=*/false);
      continue;
    }
    if (Clock::now() >= give_up) {
      return;
    }
    ring.set_producer_waiting(true);
    if (ring.try_push(d)) {
      ring.set_producer_waiting(false);
      break;
    }
    context_.sleep(std::chrono::milliseconds(20));
    ring.set_producer_waiting(false);
  }
  wake_consumer_now(ring);
}

bool OutputPort::drop_oldest(ipc::Ring& ring, bool keep_control) {
  ipc::SlotDescriptor oldest;
  if (!ring.drop_oldest(oldest)) {
    return false;
  }
  if (keep_control && oldest.control != ipc::kControlNone) {
    (void)ring.try_push(oldest);  // never lose an end of stream
  }
  context_.release(oldest);
  context_.counters().dropped.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void OutputPort::wake_consumer_now(ipc::Ring& ring) {
  if (ring.take_consumer_wakeup()) {
    context_.doorbell().ring(ring.consumer_doorbell());
  }
}

}  // namespace skit::runtime
