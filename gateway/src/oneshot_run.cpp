// SPDX-License-Identifier: MPL-2.0
#include "oneshot_run.hpp"

namespace skit::gateway {

OneshotRun::OneshotRun(supervisor::Engine& engine, std::chrono::milliseconds request_timeout)
    : engine_(engine), request_timeout_(request_timeout) {}

OneshotRun::~OneshotRun() {
  if (runner_.joinable()) {
    stop(Stop::kShutdown);
    runner_.join();
  }
}

void OneshotRun::start(v1::Pipeline pipeline, bool has_media, std::function<void()> on_end) {
  started_.store(true);
  runner_ = std::thread([this, pipeline = std::move(pipeline), has_media,
                         on_end = std::move(on_end)] {
    supervisor::RunReport report =
        engine_.run_oneshot(pipeline, has_media ? &source_ : nullptr, &sink_, &cancel_);
    {
      std::lock_guard lock(mutex_);  // with stop(): a stop is either before the end or ignored
      report_ = std::move(report);
      ended_.store(true);
    }
    output_.close(final_status());
    upload_.abort();  // media still coming is not read any more
    if (on_end) {
      on_end();
    }
  });
}

void OneshotRun::join() {
  if (runner_.joinable()) {
    runner_.join();
  }
}

bool OneshotRun::push(std::string chunk) {
  const std::size_t n = chunk.size();
  if (!upload_.push(std::move(chunk))) {
    return false;
  }
  bytes_in_ += n;
  return true;
}

ByteQueue::TryPush OneshotRun::try_push(std::string& chunk) {
  const std::size_t n = chunk.size();
  const auto pushed = upload_.try_push(chunk);
  if (pushed == ByteQueue::TryPush::kPushed) {
    bytes_in_ += n;
  }
  return pushed;
}

void OneshotRun::end_upload(Status status) { upload_.close(std::move(status)); }

void OneshotRun::fail_upload(Status why) {
  {
    std::lock_guard lock(mutex_);
    if (upload_error_.is_ok()) {
      upload_error_ = why;
    }
  }
  cancel_.store(true);
  upload_.close(std::move(why));
  upload_.abort();
}

bool OneshotRun::upload_failed() const {
  std::lock_guard lock(mutex_);
  return !upload_error_.is_ok();
}

void OneshotRun::set_upload_space_listener(std::function<void()> listener) {
  upload_.set_listeners(nullptr, std::move(listener));
}

std::optional<std::string> OneshotRun::pop() { return output_.pop(); }

std::optional<std::string> OneshotRun::try_pop() { return output_.try_pop(); }

void OneshotRun::set_output_listener(std::function<void()> listener) {
  output_.set_listeners(std::move(listener), nullptr);
}

void OneshotRun::stop(Stop why) {
  {
    std::lock_guard lock(mutex_);
    if (stop_ != Stop::kNone) {
      return;
    }
    if (ended_.load()) {
      // Too late to stop anything: the run's outcome stands (a client that closes the
      // connection once it has read the whole answer did not cancel it).
      if (why == Stop::kClient) {
        output_.abort();
      }
      return;
    }
    stop_ = why;
    if (why == Stop::kShutdown &&
        std::chrono::steady_clock::now() > started_at_ + request_timeout_) {
      stop_ = Stop::kExpired;
    }
  }
  cancel_.store(true);
  upload_.abort();
  if (why == Stop::kClient) {
    output_.abort();
  }
}

OneshotRun::Stop OneshotRun::stopped_by() const {
  std::lock_guard lock(mutex_);
  return stop_;
}

Status OneshotRun::final_status() const {
  std::lock_guard lock(mutex_);
  const Status s = !upload_error_.is_ok() ? upload_error_ : report_.status;
  const bool cancelled = s.is_ok() || s.code() == ErrorCode::kCancelled;
  if (stop_ == Stop::kClient && cancelled) {
    return Status(ErrorCode::kCancelled, "the client cancelled or went away");
  }
  if (stop_ == Stop::kShutdown && cancelled) {
    return Status(ErrorCode::kCancelled, "the server is shutting down");
  }
  if (stop_ == Stop::kExpired && cancelled) {
    return Status(ErrorCode::kDeadlineExceeded, "the call outlived limits.request_timeout_ms");
  }
  if (s.code() == ErrorCode::kDeadlineExceeded && s.where().node_id.empty() &&
      s.message().find("time limit") != std::string::npos) {
    return Status(ErrorCode::kDeadlineExceeded,
                  "the run took longer than limits.request_timeout_ms (" +
                      std::to_string(request_timeout_.count()) + " ms): stopped");
  }
  return s;
}

void OneshotRuns::add(OneshotRun* run) {
  std::lock_guard lock(mutex_);
  runs_.insert(run);
}

void OneshotRuns::remove(OneshotRun* run) {
  std::lock_guard lock(mutex_);
  runs_.erase(run);
}

void OneshotRuns::stop_all() {
  std::lock_guard lock(mutex_);
  for (auto* r : runs_) {
    r->stop(OneshotRun::Stop::kShutdown);
  }
}

std::string error_line(const Status& s) {
  std::string line = std::string(error_code_name(s.code())) + ": " + s.to_string();
  for (char& c : line) {
    c = c == '\n' || c == '\r' ? ' ' : c;  // one header line
  }
  return line;
}

}  // namespace skit::gateway
