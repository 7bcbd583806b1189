// SPDX-License-Identifier: MPL-2.0
// A bounded byte queue between the HTTP connection and a running pipeline: the upload flows
// into streamkit::http_input, the response out of streamkit::http_output. Bounded, so a fast
// side waits for the slow one and memory does not grow with the size of the stream.
// Both blocking (thread per side, the HTTP pump) and non-blocking use (gRPC's callback API:
// try_push/try_pop and listeners that say when to try again).
#pragma once

#include <condition_variable>
#include <functional>
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
    {
      std::unique_lock lock(mutex_);
      space_.wait(lock, [&] { return queued_ < capacity_ || aborted_; });
      if (aborted_) {
        return false;
      }
      queued_ += chunk.size();
      chunks_.push_back(std::move(chunk));
      data_.notify_all();
    }
    notify(on_data_);
    return true;
  }

  enum class TryPush : std::uint8_t { kPushed, kFull, kAborted };
  /// Appends unless full (then `chunk` is left as it was: try again after on_space).
  TryPush try_push(std::string& chunk) {
    {
      std::lock_guard lock(mutex_);
      if (aborted_) {
        return TryPush::kAborted;
      }
      if (queued_ >= capacity_) {
        return TryPush::kFull;
      }
      queued_ += chunk.size();
      chunks_.push_back(std::move(chunk));
      data_.notify_all();
    }
    notify(on_data_);
    return TryPush::kPushed;
  }

  /// The producer is done (with an error, when `status` is not ok).
  void close(Status status = Status::ok()) {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      status_ = std::move(status);
      data_.notify_all();
    }
    notify(on_data_);
  }

  /// The consumer is gone: pushes fail, waits end. Calls no listener: whoever aborts knows.
  void abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    space_.notify_all();
    data_.notify_all();
  }

  /// Copies what has arrived, up to out.size() bytes, waiting only while nothing has: a
  /// consumer gets data as soon as there is some, and more at once when it lags. 0 at the
  /// end of a cleanly closed stream.
  Result<std::size_t> read(std::span<std::byte> out) {
    std::size_t n = 0;
    {
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
      while (n < out.size() && !chunks_.empty()) {
        std::string& front = chunks_.front();
        const std::size_t take = std::min(out.size() - n, front.size() - offset_);
        std::memcpy(out.data() + n, front.data() + offset_, take);
        offset_ += take;
        n += take;
        if (offset_ == front.size()) {
          queued_ -= front.size();
          chunks_.pop_front();
          offset_ = 0;
        }
      }
      space_.notify_all();
    }
    notify(on_space_);
    return n;
  }

  /// Takes the next whole chunk; nullopt at the end (see status()).
  std::optional<std::string> pop() {
    std::string chunk;
    {
      std::unique_lock lock(mutex_);
      data_.wait(lock, [&] { return !chunks_.empty() || closed_ || aborted_; });
      if (chunks_.empty() || aborted_) {
        return std::nullopt;
      }
      chunk = std::move(chunks_.front());
      chunks_.pop_front();
      queued_ -= chunk.size();
      space_.notify_all();
    }
    notify(on_space_);
    return chunk;
  }

  /// The next whole chunk if there is one, without waiting.
  std::optional<std::string> try_pop() {
    std::string chunk;
    {
      std::lock_guard lock(mutex_);
      if (chunks_.empty() || aborted_) {
        return std::nullopt;
      }
      chunk = std::move(chunks_.front());
      chunks_.pop_front();
      queued_ -= chunk.size();
      space_.notify_all();
    }
    notify(on_space_);
    return chunk;
  }

  /// Closed (or aborted) and nothing left to take.
  bool drained() {
    std::lock_guard lock(mutex_);
    return aborted_ || (closed_ && chunks_.empty());
  }

  Status status() {
    std::lock_guard lock(mutex_);
    return status_;
  }

  /// Called (without the queue's lock) after data arrived or the queue closed, and after
  /// space was freed. Set before use; they must not block.
  void set_listeners(std::function<void()> on_data, std::function<void()> on_space) {
    on_data_ = std::move(on_data);
    on_space_ = std::move(on_space);
  }

 private:
  static void notify(const std::function<void()>& listener) {
    if (listener) {
      listener();
    }
  }

  std::function<void()> on_data_;
  std::function<void()> on_space_;
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
  /// The run is stopping (a node failed, the time limit): a read waiting for the client's
  /// next bytes ends now instead of when (if ever) they arrive.
  void interrupt() override { queue_.abort(); }

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
