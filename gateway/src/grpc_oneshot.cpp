// SPDX-License-Identifier: MPL-2.0
// skit.v1.Control/Process: a bidirectional stream on gRPC's callback API around one oneshot
// run (oneshot_run.hpp). The first message carries the pipeline; the client's media goes into
// the run as it is read, each read started only when the run's upload queue has room; the
// output is written back as the pipeline produces it; the call ends with a result message as
// soon as the run does.
#include <spdlog/spdlog.h>

#include <mutex>

#include "grpc_control.hpp"
#include "oneshot_run.hpp"

namespace skit::gateway {

namespace {

using Clock = std::chrono::steady_clock;
// A Process call whose run has not ended this long past limits.request_timeout_ms (a client
// that never sends its config, say) is cancelled.
constexpr auto kTimeoutGrace = std::chrono::seconds(5);

v1::NodeReport::State state_of(NodeState s) {
  switch (s) {
    case NodeState::kInitializing: return v1::NodeReport::INITIALIZING;
    case NodeState::kReady: return v1::NodeReport::READY;
    case NodeState::kRunning: return v1::NodeReport::RUNNING;
    case NodeState::kStopped: return v1::NodeReport::STOPPED;
    case NodeState::kFailed: return v1::NodeReport::FAILED;
  }
  return v1::NodeReport::STATE_UNSPECIFIED;
}

class ProcessCall final
    : public grpc::ServerBidiReactor<v1::ProcessRequest, v1::ProcessResponse> {
 public:
  ProcessCall(ControlService& service, grpc::CallbackServerContext* ctx);
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  enum class Phase : std::uint8_t { kConfig, kProbe, kMedia, kUploadDone };
  using Stop = OneshotRun::Stop;

  void start_locked();
  void accept_chunk_locked(std::string chunk);
  void fail_upload_locked(Status status);
  void on_upload_space();
  void pump_output_locked();
  void maybe_finish_locked();
  void finish_early_locked(const grpc::Status& status);
  void stop(Stop why);
  [[nodiscard]] bool client_gone() const {
    return client_gone_ || run_.stopped_by() == Stop::kClient;
  }
  [[nodiscard]] bool stopped() const { return run_.stopped_by() != Stop::kNone; }

  ControlService& service_;
  grpc::CallbackServerContext* ctx_;
  const Clock::time_point started_at_ = Clock::now();
  std::unique_ptr<StreamLimiter::Ticket> ticket_;
  bool registered_ = false;
  OneshotRun run_;

  std::mutex mutex_;
  Phase phase_ = Phase::kConfig;
  v1::ProcessRequest request_;
  std::string yaml_;
  bool has_media_ = false;
  bool run_done_ = false;            // the run's end was seen (under mutex_)
  std::optional<std::string> held_;  // read, waiting for room in the upload queue
  bool reading_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool first_output_ = true;
  bool client_gone_ = false;  // a write failed
  v1::ProcessResponse out_;
};

ProcessCall::ProcessCall(ControlService& service, grpc::CallbackServerContext* ctx)
    : service_(service), ctx_(ctx), run_(service.engine_, service.config_.request_timeout) {
  std::lock_guard lock(mutex_);
  Caller caller;
  if (auto denied = service_.admit(*ctx, Permission::kProcessOneshot, "run pipelines", &caller)) {
    finish_early_locked(*denied);
    return;
  }
  std::string refusal;
  ticket_ = service_.limiter_.acquire(ctx->peer(), caller.token_name, &refusal);
  if (!ticket_) {
    finish_early_locked(
        rpc_error(*ctx, grpc::StatusCode::RESOURCE_EXHAUSTED, "resource_exhausted", refusal));
    return;
  }
  registered_ = service_.calls_.add(
      this, [this] { stop(Stop::kShutdown); },
      started_at_ + service_.config_.request_timeout + kTimeoutGrace);
  if (!registered_) {
    finish_early_locked(rpc_error(*ctx, grpc::StatusCode::UNAVAILABLE, "unavailable",
                                  "the server is shutting down"));
    return;
  }
  run_.set_upload_space_listener([this] { on_upload_space(); });
  run_.set_output_listener([this] {
    std::lock_guard l(mutex_);
    pump_output_locked();
  });
  reading_ = true;
  StartRead(&request_);
}

void ProcessCall::finish_early_locked(const grpc::Status& status) {
  if (finished_) {
    return;
  }
  finished_ = true;
  Finish(status);
}

void ProcessCall::OnReadDone(bool ok) {
  std::lock_guard lock(mutex_);
  reading_ = false;
  if (finished_) {
    return;
  }
  switch (phase_) {
    case Phase::kConfig: {
      if (!ok) {
        finish_early_locked(
            stopped() || ctx_->IsCancelled()
                ? rpc_error(*ctx_, grpc::StatusCode::CANCELLED, "cancelled", "the call was cancelled")
                : ControlService::protocol_error(*ctx_,
                                                 "expected a ProcessRequest with `config` first"));
        return;
      }
      if (!request_.has_config()) {
        finish_early_locked(ControlService::protocol_error(
            *ctx_, "the first ProcessRequest must carry `config` (the pipeline YAML)"));
        return;
      }
      yaml_ = std::move(*request_.mutable_config()->mutable_pipeline_yaml());
      if (yaml_.size() > service_.config_.max_config_bytes) {
        finish_early_locked(service_.config_too_large(*ctx_, yaml_.size()));
        return;
      }
      if (request_.config().has_has_media()) {
        has_media_ = request_.config().has_media();
        start_locked();
        return;
      }
      // Unset: the next message tells, a media chunk or the half-close (no media).
      phase_ = Phase::kProbe;
      reading_ = true;
      StartRead(&request_);
      return;
    }
    case Phase::kProbe: {
      if (ok) {
        if (request_.has_config()) {
          finish_early_locked(ControlService::protocol_error(
              *ctx_, "`config` may be sent only once, in the first message"));
          return;
        }
        has_media_ = true;
        held_ = std::move(*request_.mutable_media());
      } else if (stopped() || ctx_->IsCancelled()) {
        finish_early_locked(
            rpc_error(*ctx_, grpc::StatusCode::CANCELLED, "cancelled", "the call was cancelled"));
        return;
      } else {
        has_media_ = false;
      }
      start_locked();
      return;
    }
    case Phase::kMedia: {
      if (!ok) {
        phase_ = Phase::kUploadDone;
        if (!stopped()) {
          run_.end_upload();  // the half-close: the end of the media
        }
        return;
      }
      if (request_.has_config()) {
        fail_upload_locked(Status(ErrorCode::kInvalidArgument,
                                  "`config` may be sent only once, in the first message"));
        return;
      }
      accept_chunk_locked(std::move(*request_.mutable_media()));
      return;
    }
    case Phase::kUploadDone:
      return;
  }
}

void ProcessCall::start_locked() {
  auto compiled = service_.engine_.compile_oneshot(yaml_, has_media_);
  if (!compiled.ok()) {
    finish_early_locked(compile_error(*ctx_, compiled.errors, "config.pipeline_yaml"));
    return;
  }
  run_.start(std::move(compiled.pipeline), has_media_, [this] {
    std::lock_guard lock(mutex_);
    run_done_ = true;
    pump_output_locked();
  });
  if (!has_media_) {
    phase_ = Phase::kUploadDone;
    return;
  }
  phase_ = Phase::kMedia;
  if (held_) {
    std::string chunk = std::move(*held_);
    held_.reset();
    accept_chunk_locked(std::move(chunk));
  } else {
    reading_ = true;
    StartRead(&request_);
  }
}

void ProcessCall::accept_chunk_locked(std::string chunk) {
  if (stopped() || run_done_) {
    return;  // the run is over: nothing more is read
  }
  if (chunk.empty()) {  // an empty chunk would read as the end of the stream
    reading_ = true;
    StartRead(&request_);
    return;
  }
  if (run_.bytes_in() + chunk.size() > service_.config_.max_body_bytes) {
    fail_upload_locked(Status(ErrorCode::kResourceExhausted,
                              "the media exceeds limits.max_body_bytes (" +
                                  std::to_string(service_.config_.max_body_bytes) + " bytes)"));
    return;
  }
  switch (run_.try_push(chunk)) {
    case ByteQueue::TryPush::kPushed:
      reading_ = true;
      StartRead(&request_);
      break;
    case ByteQueue::TryPush::kFull:
      held_ = std::move(chunk);  // read on once the pipeline has taken some (on_upload_space)
      break;
    case ByteQueue::TryPush::kAborted:
      break;  // the run is ending
  }
}

void ProcessCall::on_upload_space() {
  std::lock_guard lock(mutex_);
  if (!held_ || finished_ || phase_ != Phase::kMedia) {
    return;
  }
  std::string chunk = std::move(*held_);
  held_.reset();
  accept_chunk_locked(std::move(chunk));
}

void ProcessCall::fail_upload_locked(Status status) {
  run_.fail_upload(std::move(status));
  phase_ = Phase::kUploadDone;
}

void ProcessCall::pump_output_locked() {
  if (finished_ || writing_) {
    return;
  }
  if (!client_gone()) {
    if (auto chunk = run_.try_pop()) {
      out_.Clear();
      auto* out = out_.mutable_output();
      run_.count_bytes_out(chunk->size());
      out->set_data(std::move(*chunk));
      if (first_output_) {
        out->set_content_type(run_.content_type());
        first_output_ = false;
      }
      writing_ = true;
      StartWrite(&out_);
      return;
    }
  }
  maybe_finish_locked();
}

void ProcessCall::OnWriteDone(bool ok) {
  std::lock_guard lock(mutex_);
  writing_ = false;
  if (!ok) {
    // The client went away: stop the pipeline.
    client_gone_ = true;
    run_.stop(Stop::kClient);
  }
  pump_output_locked();
}

void ProcessCall::OnCancel() { stop(Stop::kClient); }

void ProcessCall::stop(Stop why) {
  std::lock_guard lock(mutex_);
  if (why == Stop::kClient) {
    client_gone_ = true;  // also when the run has already ended (its outcome stands)
  }
  if (finished_ || stopped()) {
    return;
  }
  run_.stop(why);
  if (!run_.started()) {
    finish_early_locked(rpc_error(
        *ctx_, grpc::StatusCode::CANCELLED, "cancelled",
        why == Stop::kClient ? "the client cancelled" : "the server is shutting down"));
  }
}

void ProcessCall::maybe_finish_locked() {
  if (finished_ || writing_ || !run_done_) {
    return;
  }
  if (!client_gone() && !run_.output_drained()) {
    return;  // output still to send: pump_output_locked comes back here
  }
  finished_ = true;
  const Status s = run_.final_status();
  if (!s.is_ok()) {
    spdlog::warn("grpc Process failed: {}", s.to_string());
  }
  const grpc::Status status =
      s.is_ok() ? grpc::Status::OK
                : rpc_error(*ctx_, grpc_code_for(s.code()), error_code_name(s.code()), s.to_string());
  if (s.is_ok()) {
    ctx_->AddTrailingMetadata(kErrorCodeKey, "ok");
  }
  if (client_gone()) {
    Finish(status);
    return;
  }
  const supervisor::RunReport& report = run_.report();
  out_.Clear();
  auto* res = out_.mutable_result();
  res->set_code(static_cast<int>(status.error_code()));
  res->set_message(s.is_ok() ? "" : s.to_string());
  res->set_error_code(std::string(error_code_name(s.code())));
  res->set_wall_seconds(report.wall_seconds);
  res->set_worker_count(static_cast<std::uint32_t>(report.worker_count));
  res->set_placement(std::string(supervisor::placement_name(report.placement)));
  res->set_bytes_in(run_.bytes_in());
  res->set_bytes_out(run_.bytes_out());
  for (const auto& n : report.nodes) {
    auto* node = res->add_nodes();
    node->set_id(n.id);
    node->set_kind(n.kind);
    node->set_worker_pid(n.worker_pid);
    node->set_state(state_of(n.state));
    node->set_message(n.message);
    node->set_packets_in(n.stats.packets_in);
    node->set_packets_out(n.stats.packets_out);
    node->set_bytes_in(n.stats.bytes_in);
    node->set_bytes_out(n.stats.bytes_out);
    node->set_dropped(n.stats.dropped);
  }
  StartWriteAndFinish(&out_, grpc::WriteOptions(), status);
}

void ProcessCall::OnDone() {
  run_.join();  // it has ended: the call finishes only after the run
  if (registered_) {
    service_.calls_.remove(this);
  }
  ticket_.reset();
  delete this;
}

}  // namespace

grpc::ServerBidiReactor<v1::ProcessRequest, v1::ProcessResponse>* ControlService::Process(
    grpc::CallbackServerContext* ctx) {
  return new ProcessCall(*this, ctx);
}

}  // namespace skit::gateway
