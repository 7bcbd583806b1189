// SPDX-License-Identifier: MPL-2.0
// One oneshot pipeline run for a front end: the client's media flows into
// streamkit::http_input through a bounded queue, the engine runs the pipeline on a thread of
// its own, and streamkit::http_output's bytes come back through another bounded queue as they
// are produced. HTTP drives it from threads (blocking push/pop), gRPC from its callback API
// (try_push/try_pop and listeners); both get the same cancellation, the same time limit and
// the same account of how the run ended (final_status()).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "byte_queue.hpp"
#include "skit/supervisor/engine.hpp"

namespace skit::gateway {

class OneshotRun {
 public:
  /// Why a run was stopped from outside.
  enum class Stop : std::uint8_t { kNone, kClient, kShutdown, kExpired };

  static constexpr std::size_t kQueueBytes = 1 << 20;

  /// `request_timeout`: limits.request_timeout_ms, for the message of a run that hit it.
  OneshotRun(supervisor::Engine& engine, std::chrono::milliseconds request_timeout);
  OneshotRun(const OneshotRun&) = delete;
  OneshotRun& operator=(const OneshotRun&) = delete;
  /// Stops the run if it is still going and waits for it.
  ~OneshotRun();

  /// Starts `pipeline` on the run's thread (with media: it reads the upload). `on_end` is
  /// called on that thread once the run is over and the output closed with its status.
  void start(v1::Pipeline pipeline, bool has_media, std::function<void()> on_end = nullptr);
  [[nodiscard]] bool started() const { return started_.load(); }
  /// Waits for the run's thread (after start()).
  void join();

  // ---- the upload
  /// Appends media, waiting while the queue is full; false once nothing more is read.
  bool push(std::string chunk);
  /// Appends media unless the queue is full (then `chunk` is left: try again once
  /// on_upload_space is called).
  ByteQueue::TryPush try_push(std::string& chunk);
  /// The media is complete (ok), or could not be read to its end (the run sees the error).
  void end_upload(Status status = Status::ok());
  /// The upload must not go on (over limits.max_body_bytes): the run is cancelled and ends
  /// with `why`.
  void fail_upload(Status why);
  [[nodiscard]] bool upload_failed() const;
  /// Called (from the run's thread, without locks) when the pipeline has taken media.
  void set_upload_space_listener(std::function<void()> listener);

  // ---- the output
  /// The next output chunk, waiting for it; nothing at the end (or once aborted).
  std::optional<std::string> pop();
  std::optional<std::string> try_pop();
  /// The run is over and every output chunk taken.
  [[nodiscard]] bool output_drained() { return output_.drained(); }
  /// Called (from the run's thread, without locks) when output arrived or the output closed.
  void set_output_listener(std::function<void()> listener);
  /// The status the output closed with (the run's final status once it has ended).
  [[nodiscard]] Status output_status() { return output_.status(); }
  /// The output's content type, as the pipeline announced it.
  [[nodiscard]] std::string content_type() { return sink_.content_type(); }
  /// Output bytes delivered to the client (counted by the front end, which knows).
  void count_bytes_out(std::uint64_t n) { bytes_out_ += n; }

  // ---- stopping
  /// Stops the run from outside; the first reason counts, and none once the run has ended (its
  /// outcome stands). kClient also drops the output (no one reads it). A stop on shutdown past
  /// the time limit counts as kExpired.
  void stop(Stop why);
  [[nodiscard]] Stop stopped_by() const;
  /// The run has ended (its report is in).
  [[nodiscard]] bool ended() const { return ended_.load(); }

  // ---- the outcome (once ended)
  /// How the run ended, as its client is told: the upload's failure, else the run's status,
  /// with the stop's reason for a run that was cancelled from outside and the configured limit
  /// named for one that ran out of time.
  [[nodiscard]] Status final_status() const;
  [[nodiscard]] const supervisor::RunReport& report() const { return report_; }
  [[nodiscard]] std::uint64_t bytes_in() const { return bytes_in_.load(); }
  [[nodiscard]] std::uint64_t bytes_out() const { return bytes_out_.load(); }

 private:
  supervisor::Engine& engine_;
  const std::chrono::milliseconds request_timeout_;
  const std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  ByteQueue upload_{kQueueBytes};
  ByteQueue output_{kQueueBytes};
  QueueSource source_{upload_};
  QueueSink sink_{output_};
  std::atomic<bool> cancel_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> ended_{false};
  std::atomic<std::uint64_t> bytes_in_{0};
  std::atomic<std::uint64_t> bytes_out_{0};
  std::thread runner_;
  mutable std::mutex mutex_;
  Stop stop_ = Stop::kNone;
  Status upload_error_;
  supervisor::RunReport report_;  // written by the runner with ended_, under mutex_
};

/// The runs in progress of one front end, stopped together on shutdown.
class OneshotRuns {
 public:
  void add(OneshotRun* run);
  void remove(OneshotRun* run);
  /// Stops every run (kShutdown).
  void stop_all();

 private:
  std::mutex mutex_;
  std::set<OneshotRun*> runs_;
};

/// The line that tells a client a run failed after its response started (HTTP's X-Skit-Error
/// trailer): "corrupt_media: node 'demux': ...", on one line.
std::string error_line(const Status& s);

}  // namespace skit::gateway
