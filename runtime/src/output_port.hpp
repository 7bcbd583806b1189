// SPDX-License-Identifier: MPL-2.0
// The output side of a runner: one output pin, publishing into its slot pool and fanning each
// packet out to every ring connected to the pin (one ring per consumer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "port_context.hpp"
#include "skit/core/node.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/segment.hpp"
#include "skit/ipc/slot_pool.hpp"

namespace skit::runtime {

/// One output pin. A packet is written in place into a loaned slot of the pin's pool, then
/// its descriptor is pushed into every connected ring with one slot reference per ring; each
/// consumer gives its reference back. A reliable ring that is full makes the producer wait; a
/// best-effort one drops its oldest packet instead. Runner thread only.
class OutputPort final : public OutputWriter {
 public:
  /// `forwards_stream_info`: a declared Passthrough output, to which the runtime itself passes
  /// every format the node receives.
  OutputPort(PortContext& context, std::string pin, bool forwards_stream_info);

  /// Maps the pin's initial rings and takes its pool (also without rings in a live session,
  /// where connections come later).
  Status attach(std::uint32_t pool_index, const std::vector<std::string>& ring_segments);

  [[nodiscard]] const std::string& pin() const { return pin_; }
  [[nodiscard]] bool forwards_stream_info() const { return forwards_stream_info_; }
  [[nodiscard]] bool loan_outstanding() const { return loaned_ != ipc::kNoSlot || scratch_loan_; }
  [[nodiscard]] bool has_ring(const std::string& name) const;
  [[nodiscard]] const std::vector<ipc::Ring>& rings() const { return rings_; }

  /// Adds a connection; with `replay`, the stream's last format goes to it before any data.
  Status add_ring(const std::string& name, std::unique_ptr<ipc::SharedSegment> segment,
                  bool replay);
  /// Leaves a connection: a detach marker tells the consumer that nothing more comes.
  void remove_ring(const std::string& name);

  /// End of stream on every connection; never dropped, even on best-effort rings. A retired
  /// node sends detach markers instead: its consumers go on with their next connection.
  void close(bool failed, bool detach);

  /// Rings the consumers whose wake-up was deferred; called by PortContext::flush_wakeups().
  void flush_wakeups();

  // OutputWriter
  Result<std::span<std::byte>> loan(std::size_t bytes) override;
  Status publish(std::size_t used, const PacketHeader& header) override;
  Status forward(const PacketView& packet) override;
  [[nodiscard]] std::size_t max_packet_bytes() const override;

 private:
  void fill_header(ipc::SlotDescriptor& d, const PacketHeader& header);
  /// Records the stream's format for consumers that connect or restart later.
  void remember_stream_info(std::span<const std::byte> bytes, const PacketHeader& header);
  /// Pushes `d` into every ring; the caller has set one slot reference per ring.
  Status push_all(const ipc::SlotDescriptor& d);
  /// `droppable`: a data packet, which a stop request may abandon; end of stream is not.
  Status push_one(ipc::Ring& ring, const ipc::SlotDescriptor& d, bool droppable);
  void push_marker(ipc::Ring& ring, const ipc::SlotDescriptor& d);
  /// Best effort: makes room in a full ring by dropping its oldest packet.
  bool drop_oldest(ipc::Ring& ring, bool keep_control);
  void wake_consumer_now(ipc::Ring& ring);

  PortContext& context_;
  std::string pin_;
  bool forwards_stream_info_;
  std::uint32_t pool_index_ = 0;
  ipc::SlotPool pool_;  // own copy: the allocation cursor is this thread's
  bool has_pool_ = false;
  // Parallel: one entry per connection.
  std::vector<ipc::Ring> rings_;
  std::vector<std::unique_ptr<ipc::SharedSegment>> segments_;
  std::vector<std::string> names_;
  std::vector<std::byte> info_bytes_;  // last stream info published
  PacketHeader info_header_;
  // An unconnected output still takes packets: they are written to scratch_ and go nowhere.
  std::vector<std::byte> scratch_;
  bool scratch_loan_ = false;
  std::uint32_t loaned_ = ipc::kNoSlot;
  std::size_t loaned_bytes_ = 0;  // what the last loan() asked for: publish() may use no more
  std::uint64_t sequence_ = 0;
  bool wake_pending_ = false;
};

}  // namespace skit::runtime
