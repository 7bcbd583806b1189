// SPDX-License-Identifier: MPL-2.0
// NodeHarness: runs one node in-process, without rings, slot pools or worker processes, so node
// unit tests are fast and run under ASan/UBSan. It creates the node from the builtin
// NodeRegistry by kind + JSON params (the real params validation), implements NodeContext
// (outputs captured as {PacketHeader, bytes}; StreamInfo captured separately; sleep_until that
// really sleeps or skips; read_input over queued bytes for pull-mode nodes), and drives the
// node the way runtime/src/node_runner.cpp does: process() per packet, on_stream_info() per
// announcement (forwarded first on Passthrough outputs), on_input_end() per input, finish().
// Header-only.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/registry.hpp"
#include "skit/core/stream_info.hpp"

namespace skit::testing {

/// One packet a node published (or forwarded) on an output.
struct CapturedPacket {
  PacketHeader header;
  std::vector<std::byte> bytes;

  [[nodiscard]] std::span<const float> samples() const {
    return {reinterpret_cast<const float*>(bytes.data()), bytes.size() / sizeof(float)};
  }
  [[nodiscard]] std::string text() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  /// Frames (samples per channel) of a RawAudio packet.
  [[nodiscard]] std::size_t frames() const {
    return header.channels == 0 ? 0 : samples().size() / header.channels;
  }
};

/// The OutputWriter of one output pin: strict about the loan/publish protocol and the slot
/// size (max_packet_bytes of the node's descriptor, as the supervisor sizes real slots).
class HarnessOutput final : public OutputWriter {
 public:
  HarnessOutput(std::string pin, std::size_t max_bytes, bool passthrough,
                const std::uint64_t* current_token)
      : pin_(std::move(pin)),
        max_bytes_(max_bytes),
        passthrough_(passthrough),
        current_token_(current_token) {}

  Result<std::span<std::byte>> loan(std::size_t bytes) override {
    if (bytes > max_bytes_) {
      return Status(ErrorCode::kResourceExhausted,
                    "packet of " + std::to_string(bytes) + " bytes exceeds the " +
                        std::to_string(max_bytes_) + "-byte slots of output '" + pin_ + "'");
    }
    // A fresh, exactly sized heap block per loan, so ASan flags writes past the loan.
    loan_ = std::make_unique<std::byte[]>(std::max<std::size_t>(bytes, 1));
    loan_size_ = bytes;
    return std::span<std::byte>(loan_.get(), bytes);
  }

  Status publish(std::size_t used, const PacketHeader& header) override {
    if (!loan_) {
      return Status(ErrorCode::kInternal, "publish() without loan() on output '" + pin_ + "'");
    }
    if (used > loan_size_) {
      return Status(ErrorCode::kInternal, "publish() of " + std::to_string(used) +
                                              " bytes exceeds the loan of " +
                                              std::to_string(loan_size_) + " bytes");
    }
    std::vector<std::byte> bytes(loan_.get(), loan_.get() + used);
    loan_.reset();
    loan_size_ = 0;
    return capture(header, std::move(bytes));
  }

  Status forward(const PacketView& packet) override {
    if (current_token_ == nullptr || *current_token_ == 0 ||
        packet.forward_token != *current_token_) {
      return Status(ErrorCode::kInternal, "forward() of a packet that is not being processed");
    }
    return capture(packet.header, std::vector<std::byte>(packet.data.begin(), packet.data.end()));
  }

  [[nodiscard]] std::size_t max_packet_bytes() const override { return max_bytes_; }

  [[nodiscard]] const std::vector<CapturedPacket>& packets() const { return packets_; }
  [[nodiscard]] const std::vector<StreamInfo>& stream_infos() const { return infos_; }
  [[nodiscard]] bool passthrough() const { return passthrough_; }
  void clear() {
    packets_.clear();
    infos_.clear();
  }

 private:
  Status capture(const PacketHeader& header, std::vector<std::byte> bytes) {
    if ((header.flags & kFlagStreamInfo) != 0) {
      auto info = StreamInfo::parse(bytes);
      if (!info) {
        return info.status();
      }
      infos_.push_back(std::move(info).value());
      return Status::ok();
    }
    packets_.push_back(CapturedPacket{header, std::move(bytes)});
    return Status::ok();
  }

  std::string pin_;
  std::size_t max_bytes_;
  bool passthrough_;
  const std::uint64_t* current_token_;
  std::unique_ptr<std::byte[]> loan_;
  std::size_t loan_size_ = 0;
  std::vector<CapturedPacket> packets_;
  std::vector<StreamInfo> infos_;
};

class NodeHarness final : public NodeContext {
 public:
  using Clock = std::chrono::steady_clock;

  /// Creates `kind` from the builtin registry with `params`. Check ok() / create_status().
  /// `input_count` is how many inputs the test will feed (a dynamic family: in_0..in_N-1).
  explicit NodeHarness(std::string_view kind, const Json& params = Json::object(),
                       std::size_t input_count = 1)
      : kind_(kind), input_count_(input_count) {
    descriptor_ = NodeRegistry::builtin().find(kind);
    if (descriptor_ == nullptr) {
      create_status_ = Status(ErrorCode::kUnknownKind, "unknown node kind '" + kind_ + "'");
      return;
    }
    auto node = descriptor_->create(params);
    if (!node) {
      create_status_ = node.status();
      return;
    }
    node_ = std::move(node).value();
    const std::size_t max_bytes = std::max<std::size_t>(64, descriptor_->max_packet_bytes(params));
    for (const auto& out : descriptor_->outputs) {
      outputs_.push_back(std::make_unique<HarnessOutput>(
          out.name, max_bytes, out.produces.kind == PacketKind::kPassthrough, &current_token_));
    }
    inputs_.resize(input_count_);
    logger_ = spdlog::default_logger()->clone("node." + kind_);
  }

  NodeHarness(const NodeHarness&) = delete;
  NodeHarness& operator=(const NodeHarness&) = delete;
  NodeHarness(NodeHarness&&) = delete;
  NodeHarness& operator=(NodeHarness&&) = delete;
  ~NodeHarness() override = default;

  /// Every problem with `params` for `kind`, as the compiler reports them.
  static std::vector<Status> validate(std::string_view kind, const Json& params) {
    const NodeDescriptor* d = NodeRegistry::builtin().find(kind);
    if (d == nullptr) {
      return {Status(ErrorCode::kUnknownKind, "unknown node kind '" + std::string(kind) + "'")};
    }
    return d->validate_params(params);
  }

  [[nodiscard]] bool ok() const { return node_ != nullptr; }
  [[nodiscard]] const Status& create_status() const { return create_status_; }
  [[nodiscard]] const NodeDescriptor& descriptor() const { return *descriptor_; }
  [[nodiscard]] Node& node() { return *node_; }

  // --- driving the node -----------------------------------------------------------------

  Status prepare() { return node_->prepare(*this); }
  /// Node::start() (the runtime calls it on the node's thread, after prepare()).
  Status start() { return node_->start(*this); }

  /// The deadline the node asked for with wake_at(), if one is pending.
  [[nodiscard]] std::optional<Clock::time_point> timer() const { return timer_; }
  /// Waits for the pending deadline (unless skip_sleep), then Node::on_timer(), as the
  /// runtime does between packets.
  Status fire_timer() {
    if (!timer_) {
      return Status(ErrorCode::kInternal, "harness: no timer pending");
    }
    const auto deadline = *timer_;
    timer_.reset();
    if (!skip_sleep_) {
      std::this_thread::sleep_until(deadline);
    }
    return node_->on_timer(*this);
  }

  /// One packet on `input` (its bytes copied to an exactly sized heap block for the call).
  Status push(std::size_t input, const PacketHeader& header, std::span<const std::byte> bytes) {
    SKIT_RETURN_IF_ERROR(check_input(input));
    auto block = std::make_unique<std::byte[]>(std::max<std::size_t>(bytes.size(), 1));
    if (!bytes.empty()) {
      std::memcpy(block.get(), bytes.data(), bytes.size());
    }
    PacketView view;
    view.header = header;
    view.data = std::span<const std::byte>(block.get(), bytes.size());
    view.sequence = inputs_[input].sequence++;
    view.input_index = input;
    view.forward_token = ++token_counter_;
    current_token_ = view.forward_token;
    Status s = node_->process(*this, view);
    current_token_ = 0;
    ++packets_in_;
    return s;
  }

  /// Interleaved f32 samples as one RawAudio packet; duration follows from the frame count.
  Status push_audio(std::size_t input, std::span<const float> samples, std::uint32_t rate,
                    std::uint16_t channels, std::int64_t pts_us) {
    const std::size_t frames = channels == 0 ? 0 : samples.size() / channels;
    PacketHeader h{.kind = PacketKind::kRawAudio,
                   .pts_us = pts_us,
                   .duration_us = rate == 0 ? 0 : static_cast<std::int64_t>(frames) * 1000000 / rate,
                   .sample_rate = rate,
                   .channels = channels};
    return push(input, h, std::as_bytes(samples));
  }

  /// Splits `samples` into packets of `frames_per_packet` frames with pts from `start_pts_us`
  /// (computed from the running frame count, as a decoder would) and pushes them all.
  Status push_audio_chunked(std::size_t input, std::span<const float> samples, std::uint32_t rate,
                            std::uint16_t channels, std::size_t frames_per_packet,
                            std::int64_t start_pts_us = 0) {
    const std::size_t total = samples.size() / channels;
    for (std::size_t f = 0; f < total; f += frames_per_packet) {
      const std::size_t n = std::min(frames_per_packet, total - f);
      SKIT_RETURN_IF_ERROR(push_audio(input, samples.subspan(f * channels, n * channels), rate,
                                      channels, start_pts_us + frames_to_us(f, rate)));
    }
    return Status::ok();
  }

  /// A Text (or Binary/Transcription/Custom) packet carrying `text` as UTF-8 bytes.
  Status push_text(std::size_t input, std::string_view text, PacketKind kind = PacketKind::kText,
                   std::int64_t pts_us = -1) {
    PacketHeader h{.kind = kind, .pts_us = pts_us};
    return push(input, h, std::as_bytes(std::span<const char>(text.data(), text.size())));
  }

  /// A StreamInfo announcement: stored for input_info(), forwarded on Passthrough outputs,
  /// then on_stream_info() (the runtime's order).
  Status push_stream_info(std::size_t input, const StreamInfo& info,
                          PacketKind kind = PacketKind::kRawAudio) {
    SKIT_RETURN_IF_ERROR(check_input(input));
    inputs_[input].info = info;
    for (auto& out : outputs_) {
      if (out->passthrough()) {
        SKIT_RETURN_IF_ERROR(out->write_stream_info(info, kind));
      }
    }
    return node_->on_stream_info(*this, input, info);
  }

  /// End of stream on `input`.
  Status end_input(std::size_t input) {
    SKIT_RETURN_IF_ERROR(check_input(input));
    inputs_[input].ended = true;
    return node_->on_input_end(*this, input);
  }

  /// Ends every input still open (in index order), then calls finish().
  Status finish() {
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
      if (!inputs_[i].ended) {
        SKIT_RETURN_IF_ERROR(end_input(i));
      }
    }
    return node_->finish(*this);
  }

  /// Live param patch, as the runtime applies it between packets.
  Status tune(const Json& patch) { return node_->tune(patch); }

  // --- pull-mode and source nodes -------------------------------------------------------

  /// Bytes that read_input() serves (at most `chunk` bytes per call, like packet boundaries).
  void queue_input_bytes(std::span<const std::byte> bytes, std::size_t chunk = 8192) {
    pull_bytes_.insert(pull_bytes_.end(), bytes.begin(), bytes.end());
    pull_chunk_ = std::max<std::size_t>(chunk, 1);
  }
  /// Marks the pulled input as ended: read_input() returns 0 once the queue is empty.
  void end_pulled_input() { pull_ended_ = true; }

  /// Calls produce() until kDone (or an error, or `max_calls`), then finish().
  Status run_source(std::size_t max_calls = 1000000) {
    for (std::size_t i = 0; i < max_calls; ++i) {
      auto produced = node_->produce(*this);
      if (!produced) {
        return produced.status();
      }
      if (*produced == Node::Produced::kDone) {
        return node_->finish(*this);
      }
    }
    return Status(ErrorCode::kDeadlineExceeded, "produce() did not finish in max_calls calls");
  }

  // --- behaviour switches -------------------------------------------------------------------

  /// With skip, sleep_until() returns at once and only records the requested wait.
  void set_skip_sleep(bool skip) { skip_sleep_ = skip; }
  void request_stop() { stop_ = true; }
  [[nodiscard]] std::chrono::nanoseconds requested_sleep() const { return requested_sleep_; }
  [[nodiscard]] std::size_t sleep_calls() const { return sleep_calls_; }
  /// The deadline of the latest sleep_until() call (epoch if none).
  [[nodiscard]] Clock::time_point last_sleep_deadline() const { return last_deadline_; }

  // --- captured results -----------------------------------------------------------------------

  [[nodiscard]] const std::vector<CapturedPacket>& packets(std::size_t output = 0) const {
    return outputs_.at(output)->packets();
  }
  [[nodiscard]] const std::vector<StreamInfo>& stream_infos(std::size_t output = 0) const {
    return outputs_.at(output)->stream_infos();
  }
  /// Every sample published on `output`, concatenated.
  [[nodiscard]] std::vector<float> audio(std::size_t output = 0) const {
    std::vector<float> all;
    for (const auto& p : packets(output)) {
      const auto s = p.samples();
      all.insert(all.end(), s.begin(), s.end());
    }
    return all;
  }
  /// Every payload published on `output` as text, concatenated.
  [[nodiscard]] std::string text(std::size_t output = 0) const {
    std::string all;
    for (const auto& p : packets(output)) {
      all += p.text();
    }
    return all;
  }
  [[nodiscard]] std::vector<std::string> texts(std::size_t output = 0) const {
    std::vector<std::string> all;
    for (const auto& p : packets(output)) {
      all.push_back(p.text());
    }
    return all;
  }
  void clear_outputs() {
    for (auto& out : outputs_) {
      out->clear();
    }
  }
  [[nodiscard]] std::uint64_t packets_in() const { return packets_in_; }

  static std::int64_t frames_to_us(std::size_t frames, std::uint32_t rate) {
    return static_cast<std::int64_t>(frames) * 1000000 / std::max<std::uint32_t>(rate, 1);
  }

  // --- NodeContext ----------------------------------------------------------------------------

  [[nodiscard]] const std::string& node_id() const override { return kind_; }
  [[nodiscard]] std::size_t output_count() const override { return outputs_.size(); }
  OutputWriter& output(std::size_t index) override { return *outputs_.at(index); }
  [[nodiscard]] bool stop_requested() const override { return stop_; }

  bool sleep_until(Clock::time_point deadline) override {
    ++sleep_calls_;
    last_deadline_ = deadline;
    const auto now = Clock::now();
    if (deadline > now) {
      requested_sleep_ += deadline - now;
    }
    if (stop_) {
      return false;
    }
    if (!skip_sleep_) {
      std::this_thread::sleep_until(deadline);
    }
    return !stop_;
  }

  spdlog::logger& log() override { return *logger_; }

  void wake_at(Clock::time_point deadline) override { timer_ = deadline; }

  /// A telemetry event the node emitted (emit_telemetry), as the runtime would pass it on.
  struct Telemetry {
    std::string event_type;
    Json data;
    std::int64_t timestamp_us = -1;
  };
  Status emit_telemetry(std::string_view event_type, const Json& data,
                        std::int64_t timestamp_us = -1) override {
    telemetry_.push_back({std::string(event_type), data, timestamp_us});
    return Status::ok();
  }
  [[nodiscard]] const std::vector<Telemetry>& telemetry() const { return telemetry_; }

  [[nodiscard]] const StreamInfo* input_info(std::size_t index) const override {
    if (index >= inputs_.size() || !inputs_[index].info) {
      return nullptr;
    }
    return &*inputs_[index].info;
  }

  Result<std::size_t> read_input(std::span<std::byte> buffer) override {
    if (!descriptor_->pulls_input) {
      return Status(ErrorCode::kInternal, "read_input() is for pull-mode nodes");
    }
    if (pull_offset_ >= pull_bytes_.size()) {
      if (pull_ended_) {
        return std::size_t{0};
      }
      // In-process there is no producer to wait for: a test forgot end_pulled_input().
      return Status(ErrorCode::kInternal, "harness: read_input() with no queued bytes and the "
                                          "input not ended (call end_pulled_input())");
    }
    const std::size_t n =
        std::min({buffer.size(), pull_chunk_, pull_bytes_.size() - pull_offset_});
    std::memcpy(buffer.data(), pull_bytes_.data() + pull_offset_, n);
    pull_offset_ += n;
    return n;
  }

 private:
  struct InputState {
    std::optional<StreamInfo> info;
    bool ended = false;
    std::uint64_t sequence = 0;
  };

  Status check_input(std::size_t input) const {
    if (input >= inputs_.size()) {
      return Status(ErrorCode::kInternal, "harness: input " + std::to_string(input) +
                                              " out of range (input_count " +
                                              std::to_string(inputs_.size()) + ")");
    }
    if (inputs_[input].ended) {
      return Status(ErrorCode::kInternal,
                    "harness: input " + std::to_string(input) + " already ended");
    }
    return Status::ok();
  }

  std::string kind_;
  std::size_t input_count_;
  std::vector<Telemetry> telemetry_;
  std::optional<Clock::time_point> timer_;
  const NodeDescriptor* descriptor_ = nullptr;
  Status create_status_;
  std::unique_ptr<Node> node_;
  std::vector<std::unique_ptr<HarnessOutput>> outputs_;
  std::vector<InputState> inputs_;
  std::shared_ptr<spdlog::logger> logger_;
  std::uint64_t current_token_ = 0;
  std::uint64_t token_counter_ = 0;
  std::uint64_t packets_in_ = 0;
  bool skip_sleep_ = false;
  bool stop_ = false;
  std::chrono::nanoseconds requested_sleep_{0};
  std::size_t sleep_calls_ = 0;
  Clock::time_point last_deadline_{};
  std::vector<std::byte> pull_bytes_;
  std::size_t pull_offset_ = 0;
  std::size_t pull_chunk_ = 8192;
  bool pull_ended_ = false;
};

}  // namespace skit::testing
