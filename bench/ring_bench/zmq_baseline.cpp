// SPDX-License-Identifier: MPL-2.0
// The baseline: the same messages through ZeroMQ alone, as a pipeline would move frames if the
// payload travelled with the doorbell (zmq_send copies it into a message).
#include <zmq.hpp>

#include <vector>

#include "harness.hpp"

namespace skit::ring_bench {

int zmq_hwm(const Payload& p) {
  return static_cast<int>(std::clamp<std::size_t>(kZmqQueueBytes / p.bytes, 32, 1000));
}

void zmq_producer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::push);
  socket.set(zmq::sockopt::sndhwm, zmq_hwm(p));
  socket.set(zmq::sockopt::linger, 2000);
  wait_flag(ctl.consumer_ready);
  socket.connect(n.zmq);
  std::vector<std::byte> source = pattern(p.bytes);
  // Warm-up: one-byte messages until the consumer has seen one (the connection is up).
  const std::byte one{1};
  while (ctl.consumer_warm.load(std::memory_order_acquire) == 0) {
    socket.send(zmq::const_buffer(&one, 1), zmq::send_flags::none);
    sleep_ns(1000000);
  }
  // zmq_send copies the buffer into a new message: that copy is the producer's write.
  auto send = [&](std::uint64_t seq, bool stamp) {
    std::memcpy(source.data(), &seq, sizeof seq);
    if (stamp) {
      const std::uint64_t t = now_ns();
      std::memcpy(source.data() + 8, &t, sizeof t);
    }
    socket.send(zmq::const_buffer(source.data(), source.size()), zmq::send_flags::none);
  };
  std::uint64_t seq = 0;
  const std::uint64_t t0 = now_ns();
  ctl.t_start_ns.store(t0, std::memory_order_release);
  if (mode == Mode::kZmqThroughput) {
    const std::uint64_t deadline = t0 + o.budget_ms * 1000000ULL;
    const int batch = p.bytes >= 65536 ? 1 : 256;
    do {
      for (int k = 0; k < batch; ++k) {
        send(seq++, false);
      }
    } while (now_ns() < deadline);
  } else {
    for (std::uint32_t i = 0; i < o.sleep_samples; ++i) {
      wait_acked(ctl, seq, false);
      sleep_ns(o.sleep_gap_ns);
      send(seq++, true);
    }
  }
  ctl.sent.store(seq, std::memory_order_relaxed);
  socket.send(zmq::const_buffer(nullptr, 0), zmq::send_flags::none);  // end of stream
  wait_flag(ctl.consumer_done);
}

void zmq_consumer(const Names& n, Control& ctl, Mode mode, const Payload& p, const Options& o) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::pull);
  socket.set(zmq::sockopt::rcvhwm, zmq_hwm(p));
  socket.set(zmq::sockopt::linger, 0);
  socket.bind(n.zmq);
  std::vector<std::uint64_t> lat;
  if (mode == Mode::kZmqLatency) {
    lat.reserve(o.sleep_samples);
  }
  const std::size_t read_bytes = touched_bytes(p);
  WindowMarks marks(ctl, o, p.bytes, true);
  std::uint64_t expected = 0;
  std::uint64_t received = 0;
  std::uint64_t errors = 0;
  std::uint64_t sink = 0;
  std::uint64_t t_end = 0;
  ctl.consumer_ready.store(1, std::memory_order_release);
  zmq::message_t msg;
  while (true) {
    if (!socket.recv(msg, zmq::recv_flags::none)) {
      continue;
    }
    const std::uint64_t t1 = now_ns();
    if (msg.size() == 0) {
      t_end = t1;
      break;
    }
    if (msg.size() == 1) {  // warm-up
      ctl.consumer_warm.store(1, std::memory_order_release);
      continue;
    }
    const auto* data = static_cast<const std::byte*>(msg.data());
    std::uint64_t header[2];
    std::memcpy(header, data, sizeof header);
    if (header[0] != expected || msg.size() != p.bytes) {
      ++errors;
    }
    expected = header[0] + 1;
    if (mode == Mode::kZmqLatency) {
      lat.push_back(t1 - header[1]);
    }
    sink += read_words(data + kHeaderBytes, read_bytes - kHeaderBytes);
    ++received;
    if (mode == Mode::kZmqThroughput) {
      marks.on_message(received);
    } else {
      ctl.acked.store(received, std::memory_order_release);
    }
  }
  keep(sink);
  ctl.received = received;
  ctl.t_end_ns = t_end;
  ctl.errors = errors;
  record_latencies(ctl, lat);
  ctl.consumer_done.store(1, std::memory_order_release);
}

}  // namespace skit::ring_bench
