// SPDX-License-Identifier: MPL-2.0
// A bounded byte queue between the HTTP connection and a running pipeline: the upload flows
// into streamkit::http_input, the response out of streamkit::http_output. Bounded, so a fast
// side waits for the slow one and memory does not grow with the size of the stream.
#pragma once

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "skit/core/node.hpp"
#include "skit/core/status.hpp"

namespace skit::gateway {

class ByteQueue {
 public:
  explicit ByteQueue(std::size_t capacity_bytes) : capacity_(capacity_bytes) {}

  /// Appends; blocks while full. False if the queue was aborted.
  bool push(std::string chunk) {
    std::unique_lock lock(mutex_);
    space_.wait(lock, [&] { return queued_ < capacity_ || aborted_; });
    if (aborted_) {
      return false;
    }
    queued_ += chunk.size();
    chunks_.push_back(std::move(chunk));
    data_.notify_all();
    return true;
  }

  /// The producer is done (with an error, when `status` is not ok).
  void close(Status status = Status::ok()) {
    std::lock_guard lock(mutex_);
    closed_ = true;
    status_ = std::move(status);
    data_.notify_all();
  }

  /// The consumer is gone: pushes fail, waits end.
  void abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    space_.notify_all();
    data_.notify_all();
  }

  /// Copies up to out.size() bytes; 0 at the end of a cleanly closed stream.
  Result<std::size_t> read(std::span<std::byte> out) {
    std::unique_lock lock(mutex_);
    data_.wait(lock, [&] { return !chunks_.empty() || closed_ || aborted_; });
    if (aborted_) {
      return Status(ErrorCode::kCancelled, "request cancelled");
    }
    if (chunks_.empty()) {
      if (!status_.is_ok()) {
        return status_;
      }
      return std::size_t{0};
    }
    std::string& front = chunks_.front();
    const std::size_t n = std::min(out.size(), front.size() - offset_);
    std::memcpy(out.data(), front.data() + offset_, n);
    offset_ += n;
    if (offset_ == front.size()) {
      queued_ -= front.size();
      chunks_.pop_front();
      offset_ = 0;
      space_.notify_all();
    }
    return n;
  }

  /// Takes the next whole chunk; nullopt at the end (see status()).
  std::optional<std::string> pop() {
    std::unique_lock lock(mutex_);
    data_.wait(lock, [&] { return !chunks_.empty() || closed_ || aborted_; });
    if (chunks_.empty() || aborted_) {
      return std::nullopt;
    }
    std::string chunk = std::move(chunks_.front());
    chunks_.pop_front();
    queued_ -= chunk.size();
    space_.notify_all();
    return chunk;
  }

  Status status() {
    std::lock_guard lock(mutex_);
    return status_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable data_;
  std::condition_variable space_;
  std::deque<std::string> chunks_;
  std::size_t capacity_;
  std::size_t queued_ = 0;
  std::size_t offset_ = 0;
  bool closed_ = false;
  bool aborted_ = false;
  Status status_;
};

/// A request's media queue as streamkit::http_input's source.
class QueueSource final : public HostByteSource {
 public:
  explicit QueueSource(ByteQueue& queue) : queue_(queue) {}
  Result<std::size_t> read(std::span<std::byte> buffer) override { return queue_.read(buffer); }

 private:
  ByteQueue& queue_;
};

/// streamkit::http_output into the queue a response writer sends from; remembers the
/// content type the stream announced.
class QueueSink final : public HostByteSink {
 public:
  explicit QueueSink(ByteQueue& queue) : queue_(queue) {}
  Status write(std::span<const std::byte> bytes) override {
    if (!queue_.push(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()))) {
      return Status(ErrorCode::kCancelled, "the client went away");
    }
    return Status::ok();
  }
  Status close() override { return Status::ok(); }
  void on_stream_info(const StreamInfo& info) override {
    std::lock_guard lock(mutex_);
    if (!info.content_type.empty()) {
      content_type_ = info.content_type;
    }
  }
  /// The announced content type, or application/octet-stream.
  std::string content_type() {
    std::lock_guard lock(mutex_);
    return content_type_.empty() ? "application/octet-stream" : content_type_;
  }

 private:
  ByteQueue& queue_;
  std::mutex mutex_;
  std::string content_type_;
};

}  // namespace skit::gateway
