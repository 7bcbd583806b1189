// SPDX-License-Identifier: MPL-2.0
// The input side of a runner: its input pins, each reading one ring (connection) at a time,
// with the pin's later connections queued behind it (live rewiring).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "port_context.hpp"
#include "skit/core/stream_info.hpp"
#include "skit/ipc/ring.hpp"
#include "skit/ipc/segment.hpp"

namespace skit::runtime {

/// Receives from every input pin in turn. A pin's connection ends with end of stream (the
/// input ends) or with a detach marker (its producer left: the pin goes on with its next
/// connection, so a switch of producers loses and reorders nothing). Stream formats are taken
/// here and passed on only when they change. Runner thread only.
class InputPorts {
 public:
  /// Told when the format of input `index` changes (a format replayed unchanged is not).
  using FormatListener =
      std::function<Status(std::size_t index, const StreamInfo& info, PacketKind kind)>;

  InputPorts(PortContext& context, FormatListener on_format);

  /// Set-up (before the sandbox): maps the ring `segment_name` for `pin` and connects to its
  /// producer's doorbell.
  Status open(const std::string& pin, const std::string& segment_name);
  /// Adds a mapped ring to `pin`, read after the pin's current connection if there is one.
  Status attach(const std::string& pin, const std::string& name,
                std::unique_ptr<ipc::SharedSegment> segment);
  /// The ring `name` is leaving: it is read (or, with `drop`, discarded) up to its producer's
  /// detach marker, for `grace` at most; with no grace at all, it is left at once.
  void detach(const std::string& name, bool drop, std::chrono::milliseconds grace);

  /// What next() found.
  struct Arrival {
    enum class Type : std::uint8_t {
      kNone,     // no input has anything ready
      kHandled,  // a marker, a format or a discarded packet, dealt with here: look again
      kPacket,   // data on input `index`; its slot is the caller's to release
      kEnd,      // end of stream on input `index`
    };
    Type type = Type::kNone;
    ipc::SlotDescriptor descriptor{};
    std::size_t index = 0;
  };
  /// Takes the next descriptor from any input (round robin), handling markers, formats and
  /// timed-out detaches on the way. Fails when a format cannot be read or an upstream failed.
  Result<Arrival> next();
  /// Sleeps until an input may have something, a stop or a live change (the mailbox).
  /// `max_sleep`: the longest sleep (a node's timer); the idle wait at most.
  void wait(std::chrono::microseconds max_sleep = std::chrono::microseconds::max());
  /// The payload bytes a descriptor of input `index` points at, bounds-checked.
  Result<std::span<const std::byte>> payload(const ipc::SlotDescriptor& d, std::size_t index);
  /// At the end of the node: gives back what is queued. Static pipelines read on to every
  /// end of stream, so that a node that ends early leaves no producer blocked; live rings
  /// outlive the node and are left at once (the supervisor detaches their producers).
  void drain();

  [[nodiscard]] std::size_t size() const { return inputs_.size(); }
  [[nodiscard]] bool empty() const { return inputs_.empty(); }
  /// Some input still has a connection to read.
  [[nodiscard]] bool any_connection() const;
  /// Input `index` has ended and no connection follows.
  [[nodiscard]] bool ended(std::size_t index) const;
  /// There are inputs and every one has ended.
  [[nodiscard]] bool all_ended() const;
  /// The pin name of input `index`.
  [[nodiscard]] const std::string& pin(std::size_t index) const { return inputs_.at(index).pin; }
  /// The last format received on input `index`, or null.
  [[nodiscard]] const StreamInfo* info(std::size_t index) const;

 private:
  struct Connection {
    std::string name;
    std::unique_ptr<ipc::SharedSegment> segment;
    ipc::Ring ring;
    bool detaching = false;
    bool drop = false;
    std::chrono::steady_clock::time_point deadline{};
  };
  struct Input {
    std::string pin;
    std::optional<Connection> active;
    std::deque<Connection> next;  // later connections of the same pin, read in turn
    bool ended = false;
    bool sticky_pending = false;  // the active connection's recorded format is not read yet
    std::optional<StreamInfo> info;
  };

  void add(const std::string& pin, Connection connection);
  /// Moves an input on to its next connection, giving back what is left in the current one.
  void advance(Input& in);
  void expire_detaching();
  /// Live inputs: a connection that became active mid-stream (a restart, a switch) first
  /// takes the format its ring recorded, so that a decoder can go on without the stream's
  /// start.
  Status adopt_sticky_formats();
  Status take_format(const ipc::SlotDescriptor& d, std::size_t index);
  Status set_format(const StreamInfo& info, PacketKind kind, std::size_t index);
  bool pop_any(ipc::SlotDescriptor& out, std::size_t& index);
  [[nodiscard]] bool any_ready() const;

  PortContext& context_;
  FormatListener on_format_;
  std::vector<Input> inputs_;
  std::size_t next_input_ = 0;
};

}  // namespace skit::runtime
