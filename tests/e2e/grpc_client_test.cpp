// SPDX-License-Identifier: MPL-2.0
// The gRPC API as a client developer meets it (issue 11): many long-lived streams on one
// connection (capped, refused at once, unary calls unaffected), health that reports
// overload, reflection behind the tokens (v1 and v1alpha, with comments), Process that ends
// while the upload is held open (a failure, the time limit), a small upload held open that
// yields output (gRPC and HTTP), a failed node in a session that leaves its upstream honest,
// and errors with skit-error-code and google.rpc.Status details. The real `skit serve`,
// driven by the C++ client built from proto/ (callback API for the many streams).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "session_clients.hpp"
#include "skit/v1/control.grpc.pb.h"

namespace skit::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace health = grpc::health::v1;

std::unique_ptr<grpc::ClientContext> context(const std::string& token = kOperatorToken,
                                             std::chrono::seconds timeout = 30s) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  if (!token.empty()) {
    ctx->AddMetadata("authorization", "Bearer " + token);
  }
  return ctx;
}

std::string trailer(const grpc::ClientContext& ctx, const std::string& key) {
  const auto& md = ctx.GetServerTrailingMetadata();
  const auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// A channel of its own: a distinct argument makes gRPC open a separate connection.
std::shared_ptr<grpc::Channel> channel_to(int port, int connection = 0) {
  grpc::ChannelArguments args;
  args.SetInt("skit.test.connection", connection);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

/// The google.rpc.Status of a failed call (grpc-status-details-bin).
google::rpc::Status details_of(const grpc::Status& s) {
  google::rpc::Status d;
  EXPECT_TRUE(d.ParseFromString(s.error_details())) << "no grpc-status-details-bin";
  return d;
}

template <typename T>
std::vector<T> unpacked(const google::rpc::Status& d) {
  std::vector<T> out;
  for (const auto& any : d.details()) {
    T m;
    if (any.UnpackTo(&m)) {
      out.push_back(m);
    }
  }
  return out;
}

std::string sample_pipeline(const std::string& name) {
  return read_file((kRepo / "samples/pipelines/oneshot" / (name + ".yml")).string());
}

// ---------------------------------------------------------------------------------------------
// Long-lived streams opened with the callback API: admitted (headers or an answer) or refused.

struct Probe {
  std::mutex mutex;
  std::condition_variable cv;
  Clock::time_point opened = Clock::now();
  Clock::time_point settled{};
  bool admitted = false;
  bool done = false;
  grpc::Status status;
  std::string error_code;
  int events = 0;

  void settle() {
    if (settled == Clock::time_point{}) {
      settled = Clock::now();
    }
    cv.notify_all();
  }
  bool wait_settled(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [&] { return admitted || done; });
  }
  bool wait_done(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [&] { return done; });
  }
  bool wait_events(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [&] { return events >= n || done; }) && events >= n;
  }
};

class WatchProbe final : public grpc::ClientReadReactor<v1::SessionEvent>, public Probe {
 public:
  WatchProbe(v1::Control::Stub& stub, const std::string& token) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    stub.async()->WatchEvents(&ctx_, &req_, this);
    StartRead(&event_);
    StartCall();
  }
  /// A call still running is cancelled first (a test that stops early leaves none behind).
  ~WatchProbe() {
    ctx_.TryCancel();
    wait_done(10s);
  }
  WatchProbe(const WatchProbe&) = delete;
  WatchProbe& operator=(const WatchProbe&) = delete;
  void OnReadInitialMetadataDone(bool ok) override {
    std::lock_guard lock(mutex);
    if (ok && !done) {
      admitted = true;
      settle();
    }
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      return;
    }
    {
      std::lock_guard lock(mutex);
      ++events;
      last = event_;
      cv.notify_all();
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard lock(mutex);
    done = true;
    status = s;
    error_code = trailer(ctx_, "skit-error-code");
    settle();
  }
  void cancel() { ctx_.TryCancel(); }
  v1::SessionEvent last;  // under mutex

 private:
  grpc::ClientContext ctx_;
  v1::WatchEventsRequest req_;
  v1::SessionEvent event_;
};

namespace refl = grpc::reflection::v1;

class ReflectionProbe final
    : public grpc::ClientBidiReactor<refl::ServerReflectionRequest, refl::ServerReflectionResponse>,
      public Probe {
 public:
  ReflectionProbe(refl::ServerReflection::Stub& stub, const std::string& token) {
    if (!token.empty()) {
      ctx_.AddMetadata("authorization", token);
    }
    stub.async()->ServerReflectionInfo(&ctx_, this);
    req_.set_list_services("*");
    StartWrite(&req_);
    StartRead(&resp_);
    StartCall();
  }
  ~ReflectionProbe() {
    ctx_.TryCancel();
    wait_done(10s);
  }
  ReflectionProbe(const ReflectionProbe&) = delete;
  ReflectionProbe& operator=(const ReflectionProbe&) = delete;
  void OnReadDone(bool ok) override {
    std::lock_guard lock(mutex);
    if (ok && !done) {
      admitted = true;
      ++events;
      settle();
    }
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard lock(mutex);
    done = true;
    status = s;
    error_code = trailer(ctx_, "skit-error-code");
    settle();
  }
  void cancel() { ctx_.TryCancel(); }
  refl::ServerReflectionResponse response() {
    std::lock_guard lock(mutex);
    return resp_;
  }

 private:
  grpc::ClientContext ctx_;
  refl::ServerReflectionRequest req_;
  refl::ServerReflectionResponse resp_;
};

/// A Process call with the whole media, half-closed; its duration.
double process_ms(v1::Control::Stub& stub, const std::string& yaml, const std::string& media,
                  grpc::Status* status) {
  const auto t0 = Clock::now();
  auto ctx = context();
  auto stream = stub.Process(ctx.get());
  v1::ProcessRequest config;
  config.mutable_config()->set_pipeline_yaml(yaml);
  stream->Write(config);
  v1::ProcessRequest chunk;
  chunk.set_media(media);
  stream->Write(chunk);
  stream->WritesDone();
  v1::ProcessResponse resp;
  while (stream->Read(&resp)) {
  }
  *status = stream->Finish();
  return ms_since(t0);
}

class GrpcClient : public ::testing::Test {
 protected:
  void start(const std::string& extra = "") {
    server_ = std::make_unique<SkitServer>(session_config(extra));
    ASSERT_TRUE(server_->up()) << server_->log();
    channel_ = channel_to(server_->grpc_port());
    stub_ = v1::Control::NewStub(channel_);
  }
  void TearDown() override {
    if (!server_) {
      return;
    }
    const pid_t pid = server_->pid();
    EXPECT_EQ(server_->stop(), 0) << "skit serve did not exit cleanly";
    EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 5s));
    EXPECT_TRUE(shm_segments_of(pid).empty()) << "shared memory left behind";
    if (HasFailure()) {
      const std::string log = server_->log();
      std::printf("---- server log (last 8 KiB) ----\n%s\n",
                  log.substr(log.size() > 8192 ? log.size() - 8192 : 0).c_str());
    }
  }

  double list_ms(grpc::Status* s) {
    const auto t0 = Clock::now();
    v1::ListSessionsResponse resp;
    auto ctx = context();
    *s = stub_->ListSessions(ctx.get(), {}, &resp);
    return ms_since(t0);
  }
  double create_ms(const std::string& name, grpc::Status* s) {
    const auto t0 = Clock::now();
    v1::CreateSessionRequest req;
    req.set_name(name);
    v1::CreateSessionResponse resp;
    auto ctx = context();
    *s = stub_->CreateSession(ctx.get(), req, &resp);
    return ms_since(t0);
  }

  std::unique_ptr<SkitServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Control::Stub> stub_;
  TempDir dir_;
};

// ---------------------------------------------------------------------------------------------
// 1. Long-lived streams: capped per connection and per token, refused at once; unary calls
//    and Process unaffected; health reports overload.

TEST_F(GrpcClient, ThreeHundredWatchersAndFiftyReflectionStreamsOnOneConnection) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string media = read_file((kRepo / "samples/audio/speech.ogg").string());
  const std::string yaml = sample_pipeline("volume_boost");
  grpc::Status s;
  // Unloaded first (the second Process: the first warms the page cache).
  process_ms(*stub_, yaml, media, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const double process_unloaded = process_ms(*stub_, yaml, media, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();

  std::vector<std::unique_ptr<WatchProbe>> watchers;
  std::vector<std::unique_ptr<ReflectionProbe>> reflections;
  auto refl_stub = refl::ServerReflection::NewStub(channel_);
  for (int i = 0; i < 300; ++i) {
    watchers.push_back(std::make_unique<WatchProbe>(*stub_, kOperatorToken));
    if (i % 6 == 5) {
      reflections.push_back(
          std::make_unique<ReflectionProbe>(*refl_stub, "Bearer " + kOperatorToken));
    }
  }
  ASSERT_EQ(reflections.size(), 50U);
  std::vector<Probe*> all;
  for (auto& w : watchers) all.push_back(w.get());
  for (auto& r : reflections) all.push_back(r.get());
  for (auto* p : all) {
    ASSERT_TRUE(p->wait_settled(10s)) << "a stream neither admitted nor refused";
  }
  // Refused ones are refused at once, with the code, the trailer and a RetryInfo.
  int admitted = 0;
  int refused = 0;
  double slowest_refusal_ms = 0;
  for (auto* p : all) {
    std::lock_guard lock(p->mutex);
    if (p->admitted && !p->done) {
      ++admitted;
      continue;
    }
    ASSERT_TRUE(p->done);
    EXPECT_EQ(p->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << p->status.error_message();
    EXPECT_EQ(p->error_code, "resource_exhausted");
    slowest_refusal_ms = std::max(
        slowest_refusal_ms, std::chrono::duration<double, std::milli>(p->settled - p->opened).count());
    ++refused;
  }
  EXPECT_EQ(admitted, 32) << "limits.grpc_streams_per_connection defaults to 32";
  EXPECT_EQ(refused, 350 - 32);
  EXPECT_LT(slowest_refusal_ms, 1000.0) << "refusals must not queue";
  {
    WatchProbe* refused_watch = nullptr;
    for (auto& w : watchers) {
      std::lock_guard lock(w->mutex);
      if (w->done) {
        refused_watch = w.get();
        break;
      }
    }
    ASSERT_NE(refused_watch, nullptr);
    std::lock_guard lock(refused_watch->mutex);
    const auto d = details_of(refused_watch->status);
    const auto retry = unpacked<google::rpc::RetryInfo>(d);
    ASSERT_EQ(retry.size(), 1U);
    EXPECT_GE(retry[0].retry_delay().seconds(), 1);
    const auto info = unpacked<google::rpc::ErrorInfo>(d);
    ASSERT_EQ(info.size(), 1U);
    EXPECT_EQ(info[0].reason(), "RESOURCE_EXHAUSTED");
  }

  // Unary calls on the same connection are not slowed (they never count against the cap).
  const double list = list_ms(&s);
  EXPECT_TRUE(s.ok()) << s.error_message();
  const double create = create_ms("while-loaded", &s);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // Process is a long-lived stream: on this full connection it is refused at once; on
  // another connection of the same client it runs as fast as unloaded.
  process_ms(*stub_, yaml, media, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  auto second_connection = v1::Control::NewStub(channel_to(server_->grpc_port(), 1));
  const double process_loaded = process_ms(*second_connection, yaml, media, &s);
  EXPECT_TRUE(s.ok()) << s.error_message();
  std::printf("ListSessions %.1f ms, CreateSession %.1f ms, Process %.1f ms (unloaded %.1f ms), "
              "slowest refusal %.1f ms\n",
              list, create, process_loaded, process_unloaded, slowest_refusal_ms);
  // Starved calls fail or wait for a stream to end (seconds); the figures above are what
  // to compare, the bounds only catch queueing without flaking on a busy 2-core machine.
  EXPECT_LT(list, 1000.0);
  EXPECT_LT(create, 1000.0);
  EXPECT_LT(process_loaded, 2 * process_unloaded + 1000.0);

  // The admitted watchers deliver events (the session just created).
  int delivering = 0;
  for (auto& w : watchers) {
    bool live = false;
    {
      std::lock_guard lock(w->mutex);
      live = w->admitted && !w->done;
    }
    if (live) {
      EXPECT_TRUE(w->wait_events(1, 5s)) << "an admitted watcher got no event";
      ++delivering;
    }
  }
  EXPECT_GT(delivering, 0);
  // Another connection has places of its own.
  WatchProbe second(*second_connection, kOperatorToken);
  ASSERT_TRUE(second.wait_settled(5s));
  EXPECT_FALSE(second.done) << second.status.error_message();
  second.cancel();
  ASSERT_TRUE(second.wait_done(5s));

  for (auto& w : watchers) w->cancel();
  for (auto& r : reflections) r->cancel();
  for (auto* p : all) {
    ASSERT_TRUE(p->wait_done(10s));
  }
}

TEST_F(GrpcClient, StreamsArePerTokenTooAndHealthReportsOverload) {
  ASSERT_NO_FATAL_FAILURE(start("limits:\n  grpc_streams_per_token: 3\n  grpc_max_streams: 5\n"));
  auto health_stub = health::Health::NewStub(channel_);
  auto check = [&] {
    health::HealthCheckResponse resp;
    auto ctx = context("");
    EXPECT_TRUE(health_stub->Check(ctx.get(), {}, &resp).ok());
    return resp.status();
  };
  EXPECT_EQ(check(), health::HealthCheckResponse::SERVING);
  // A health Watch is a long-lived stream too (no token needed).
  grpc::ClientContext watch_ctx;
  health::HealthCheckRequest watch_req;
  auto watch = health_stub->Watch(&watch_ctx, watch_req);
  health::HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), health::HealthCheckResponse::SERVING);

  // Three viewer streams on connection A; a fourth on connection B is over the token's cap.
  std::vector<std::unique_ptr<WatchProbe>> viewer;
  for (int i = 0; i < 3; ++i) {
    viewer.push_back(std::make_unique<WatchProbe>(*stub_, kViewerToken));
    ASSERT_TRUE(viewer.back()->wait_settled(5s));
    ASSERT_FALSE(viewer.back()->done) << viewer.back()->status.error_message();
  }
  auto stub_b = v1::Control::NewStub(channel_to(server_->grpc_port(), 7));
  WatchProbe fourth(*stub_b, kViewerToken);
  ASSERT_TRUE(fourth.wait_done(5s));
  EXPECT_EQ(fourth.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(fourth.status.error_message().find("per token"), std::string::npos)
      << fourth.status.error_message();
  // Another token may: the fifth stream of the server, its last place.
  WatchProbe op(*stub_b, kOperatorToken);
  ASSERT_TRUE(op.wait_settled(5s));
  ASSERT_FALSE(op.done) << op.status.error_message();
  // Every place taken: health says so (Check and the Watch), unary calls still answer.
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), health::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(check(), health::HealthCheckResponse::NOT_SERVING);
  grpc::Status s;
  list_ms(&s);
  EXPECT_TRUE(s.ok()) << s.error_message();
  WatchProbe sixth(*stub_b, kAdminToken);
  ASSERT_TRUE(sixth.wait_done(5s));
  EXPECT_EQ(sixth.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A place frees: serving again.
  op.cancel();
  ASSERT_TRUE(op.wait_done(5s));
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), health::HealthCheckResponse::SERVING);
  EXPECT_EQ(check(), health::HealthCheckResponse::SERVING);

  watch_ctx.TryCancel();
  while (watch->Read(&update)) {
  }
  watch->Finish();
  for (auto& v : viewer) {
    v->cancel();
    ASSERT_TRUE(v->wait_done(5s));
  }
}

TEST_F(GrpcClient, ReflectionNeedsATokenServesV1AndV1AlphaWithComments) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto stub = refl::ServerReflection::NewStub(channel_);
  {
    ReflectionProbe anonymous(*stub, "");
    ASSERT_TRUE(anonymous.wait_done(5s));
    EXPECT_EQ(anonymous.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(anonymous.error_code, "unauthenticated");
  }
  // The scheme is case-insensitive (RFC 9110).
  ReflectionProbe lower(*stub, "bearer " + kViewerToken);
  ASSERT_TRUE(lower.wait_settled(5s));
  ASSERT_FALSE(lower.done) << lower.status.error_message();
  std::set<std::string> services;
  const auto listed = lower.response();
  for (const auto& svc : listed.list_services_response().service()) {
    services.insert(svc.name());
  }
  EXPECT_TRUE(services.count("skit.v1.Control"));
  EXPECT_TRUE(services.count("grpc.reflection.v1.ServerReflection"));
  EXPECT_TRUE(services.count("grpc.reflection.v1alpha.ServerReflection"));
  lower.cancel();
  lower.wait_done(5s);

  // v1alpha, the synchronous client: the file of Process, with its comments.
  namespace alpha = grpc::reflection::v1alpha;
  auto alpha_stub = alpha::ServerReflection::NewStub(channel_);
  auto ctx = context(kViewerToken);
  auto stream = alpha_stub->ServerReflectionInfo(ctx.get());
  alpha::ServerReflectionRequest req;
  req.set_file_containing_symbol("skit.v1.Control.Process");
  ASSERT_TRUE(stream->Write(req));
  alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::map<std::string, google::protobuf::FileDescriptorProto> files;
  for (const auto& bytes : resp.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto f;
    ASSERT_TRUE(f.ParseFromString(bytes));
    files.emplace(f.name(), f);
  }
  ASSERT_TRUE(files.count("skit/v1/control.proto")) << resp.DebugString().substr(0, 500);
  EXPECT_TRUE(files.count("skit/v1/pipeline.proto"));
  bool commented = false;
  for (const auto& loc : files.at("skit/v1/control.proto").source_code_info().location()) {
    commented |= loc.leading_comments().find("Runs a oneshot pipeline") != std::string::npos;
  }
  EXPECT_TRUE(commented) << "reflected files carry their comments";
  req.set_file_containing_symbol("no.such.Symbol");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// ---------------------------------------------------------------------------------------------
// 2. Process ends at once, while the client holds its upload open.

TEST_F(GrpcClient, ACorruptUploadHeldOpenIsAnsweredWithinOneSecond) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto ctx = context();
  auto stream = stub_->Process(ctx.get());
  v1::ProcessRequest config;
  config.mutable_config()->set_pipeline_yaml(sample_pipeline("volume_boost"));
  ASSERT_TRUE(stream->Write(config));
  const std::string junk = random_bytes(200 * 1024);
  for (std::size_t at = 0; at < junk.size(); at += 64 * 1024) {
    v1::ProcessRequest chunk;
    chunk.set_media(junk.substr(at, 64 * 1024));
    ASSERT_TRUE(stream->Write(chunk));
  }
  const auto t0 = Clock::now();  // no WritesDone: the upload stays open
  std::optional<v1::ProcessResult> result;
  v1::ProcessResponse resp;
  while (stream->Read(&resp)) {
    if (resp.has_result()) {
      result = resp.result();
    }
  }
  const grpc::Status s = stream->Finish();
  const double answered = ms_since(t0);
  std::printf("corrupt upload held open: answered after %.0f ms\n", answered);
  EXPECT_LT(answered, 1000.0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(trailer(*ctx, "skit-error-code"), "corrupt_media");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->error_code(), "corrupt_media");
  const auto info = unpacked<google::rpc::ErrorInfo>(details_of(s));
  ASSERT_EQ(info.size(), 1U);
  EXPECT_EQ(info[0].reason(), "CORRUPT_MEDIA");
  const pid_t pid = server_->pid();
  EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 2s)) << "workers stopped";
}

TEST_F(GrpcClient, TheTimeLimitEndsAHeldOpenUploadAtOnceWithItsStatus) {
  ASSERT_NO_FATAL_FAILURE(start("limits:\n  request_timeout_ms: 1500\n"));
  const auto t0 = Clock::now();
  auto ctx = context();
  auto stream = stub_->Process(ctx.get());
  v1::ProcessRequest config;
  config.mutable_config()->set_pipeline_yaml(sample_pipeline("volume_boost"));
  ASSERT_TRUE(stream->Write(config));
  const std::string media = read_file((kRepo / "samples/audio/speech.ogg").string());
  v1::ProcessRequest chunk;
  chunk.set_media(media.substr(0, media.size() / 2));  // then nothing: a stalled upload
  ASSERT_TRUE(stream->Write(chunk));
  std::optional<v1::ProcessResult> result;
  v1::ProcessResponse resp;
  while (stream->Read(&resp)) {
    if (resp.has_result()) {
      result = resp.result();
    }
  }
  const grpc::Status s = stream->Finish();
  const double ended = ms_since(t0);
  std::printf("time limit 1500 ms: the call ended after %.0f ms\n", ended);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_NE(s.error_message().find("request_timeout_ms"), std::string::npos) << s.error_message();
  EXPECT_EQ(trailer(*ctx, "skit-error-code"), "deadline_exceeded");
  ASSERT_TRUE(result) << "the result comes with the status";
  EXPECT_EQ(result->code(), static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_GT(ended, 1400.0);
  EXPECT_LT(ended, 2500.0);
  const pid_t pid = server_->pid();
  EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 2s)) << "workers stopped";
}

// ---------------------------------------------------------------------------------------------
// 3. A small upload held open yields output (gRPC and HTTP).

TEST_F(GrpcClient, ASmallOggUploadHeldOpenYieldsOutput) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string media = read_file((kRepo / "samples/audio/music.ogg").string());
  ASSERT_LT(media.size(), 30U * 1024) << "the 29 KB sample";
  auto ctx = context();
  auto stream = stub_->Process(ctx.get());
  v1::ProcessRequest config;
  config.mutable_config()->set_pipeline_yaml(sample_pipeline("volume_boost"));
  ASSERT_TRUE(stream->Write(config));
  v1::ProcessRequest chunk;
  chunk.set_media(media);
  ASSERT_TRUE(stream->Write(chunk));
  const auto t0 = Clock::now();
  std::atomic<bool> got{false};
  std::thread reader([&] {
    v1::ProcessResponse resp;
    while (stream->Read(&resp)) {
      if (resp.has_output() && !resp.output().data().empty()) {
        got.store(true);
      }
    }
  });
  const bool output = wait_until([&] { return got.load(); }, 5s);
  std::printf("29 KB upload held open: %s after %.0f ms\n", output ? "output" : "no output",
              ms_since(t0));
  EXPECT_TRUE(output) << "nothing came back while the upload was held open";
  stream->WritesDone();
  reader.join();
  EXPECT_TRUE(stream->Finish().ok());
}

/// A raw HTTP/1.1 client: the oneshot request with a chunked body the test controls.
class RawHttp {
 public:
  explicit RawHttp(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{0, 100 * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawHttp() { ::close(fd_); }
  RawHttp(const RawHttp&) = delete;
  RawHttp& operator=(const RawHttp&) = delete;
  [[nodiscard]] bool connected() const { return connected_; }
  void send(const std::string& data) {
    std::size_t at = 0;
    while (at < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + at, data.size() - at, MSG_NOSIGNAL);
      if (n <= 0) {
        return;
      }
      at += static_cast<std::size_t>(n);
    }
  }
  void send_chunk(const std::string& data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    send(size + data + "\r\n");
  }
  /// Reads for up to `timeout` or until `done(received)`; false at the end of the connection.
  bool read_until(const std::function<bool(const std::string&)>& done,
                  std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[65536];
    while (Clock::now() < deadline && !done(received_)) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) {
        closed_ = true;
        return false;
      }
      if (n > 0) {
        received_.append(buf, static_cast<std::size_t>(n));
      }
    }
    return done(received_);
  }
  [[nodiscard]] const std::string& received() const { return received_; }
  [[nodiscard]] bool closed() const { return closed_; }

  /// The head of POST /api/v1/process and the body up to the media's first byte.
  void start_process(const std::string& yaml) {
    send("POST /api/v1/process HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
         kOperatorToken +
         "\r\nContent-Type: multipart/form-data; boundary=skitboundary\r\n"
         "Transfer-Encoding: chunked\r\n\r\n");
    send_chunk("--skitboundary\r\nContent-Disposition: form-data; name=\"config\"\r\n\r\n" + yaml +
               "\r\n--skitboundary\r\nContent-Disposition: form-data; name=\"media\"; "
               "filename=\"in.ogg\"\r\nContent-Type: audio/ogg\r\n\r\n");
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string received_;
};

TEST_F(GrpcClient, ASmallOggUploadHeldOpenYieldsOutputOverHttpToo) {
  ASSERT_NO_FATAL_FAILURE(start());
  RawHttp http(server_->http_port());
  ASSERT_TRUE(http.connected());
  http.start_process(sample_pipeline("volume_boost"));
  http.send_chunk(read_file((kRepo / "samples/audio/music.ogg").string()));
  // No last chunk: the upload is held open. Output = the head and a first body chunk (Ogg).
  const bool output = http.read_until(
      [](const std::string& r) {
        const auto head = r.find("\r\n\r\n");
        return head != std::string::npos && r.find("OggS", head) != std::string::npos;
      },
      5s);
  EXPECT_TRUE(output) << http.received().substr(0, 300);
  EXPECT_EQ(http.received().rfind("HTTP/1.1 200", 0), 0U) << http.received().substr(0, 300);
}

TEST_F(GrpcClient, ACorruptUploadHeldOpenOverHttpIsAnsweredWithinOneSecond) {
  ASSERT_NO_FATAL_FAILURE(start());
  RawHttp http(server_->http_port());
  ASSERT_TRUE(http.connected());
  http.start_process(sample_pipeline("volume_boost"));
  http.send_chunk(random_bytes(200 * 1024));
  const auto t0 = Clock::now();
  const bool answered = http.read_until(
      [](const std::string& r) { return r.find("\r\n\r\n") != std::string::npos; }, 3s);
  std::printf("HTTP corrupt upload held open: answered after %.0f ms\n", ms_since(t0));
  ASSERT_TRUE(answered);
  EXPECT_LT(ms_since(t0), 1000.0);
  EXPECT_EQ(http.received().rfind("HTTP/1.1 422", 0), 0U) << http.received().substr(0, 300);
}

// ---------------------------------------------------------------------------------------------
// 4. A failed node in a session does not leave its upstream stuck.

TEST_F(GrpcClient, AFailedNodeLeavesItsUpstreamRunningAndTunable) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string yaml =
      "mode: dynamic\n"
      "nodes:\n"
      "  reader:\n    kind: core::file_reader\n    params:\n      path: samples/audio/music.ogg\n"
      "  demux:\n    kind: containers::ogg::demuxer\n    needs: reader\n"
      "  pacer:\n    kind: core::pacer\n    needs: demux\n"
      "  decode:\n    kind: audio::opus::decoder\n    needs: pacer\n"
      "  gain:\n    kind: audio::gain\n    params:\n      gain: 1.0\n    needs: decode\n"
      "  fault:\n    kind: testing::fault\n    params:\n      mode: error\n      after_packets: 2\n"
      "    needs: gain\n"
      "  sink:\n    kind: core::sink\n    needs: fault\n";
  v1::CreateSessionRequest req;
  req.set_name("faulty");
  req.set_pipeline_yaml(yaml);
  v1::CreateSessionResponse created;
  auto ctx = context();
  const grpc::Status s = stub_->CreateSession(ctx.get(), req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto pipeline = [&] {
    v1::GetSessionRequest get;
    get.set_session("faulty");
    v1::GetSessionResponse resp;
    auto c = context();
    EXPECT_TRUE(stub_->GetSession(c.get(), get, &resp).ok());
    return nlohmann::json::parse(resp.pipeline_json());
  };
  auto state_of = [](const nlohmann::json& p, const std::string& node) {
    const auto& st = p["nodes"][node]["state"];
    return st.is_string() ? st.get<std::string>() : st.begin().key();
  };
  ASSERT_TRUE(wait_until([&] { return state_of(pipeline(), "fault") == "Failed"; }, 5s))
      << pipeline().dump();
  // The ring into the fault node (16 packets, 320 ms) would be full by now.
  std::this_thread::sleep_for(600ms);
  const auto before = pipeline();
  std::this_thread::sleep_for(600ms);
  const auto after = pipeline();
  EXPECT_NE(state_of(after, "demux"), "Failed") << after.dump();
  // After the pacer, 20 ms packets in real time (the 4 s clip is still playing).
  for (const std::string node : {"decode", "gain"}) {
    EXPECT_EQ(state_of(after, node), "Running") << node << ": " << after.dump();
    EXPECT_GT(after["nodes"][node]["stats"].value("received", 0),
              before["nodes"][node]["stats"].value("received", 0))
        << node << " reports Running but its counters are frozen: " << after.dump();
  }
  // A synchronous tune of the gain is applied (it is between packets, not stuck).
  v1::TuneNodeRequest tune;
  tune.set_session("faulty");
  tune.set_node_id("gain");
  tune.set_params_json(R"({"gain": 0.5})");
  v1::TuneNodeResponse tuned;
  auto tctx = context();
  const auto t0 = Clock::now();
  const grpc::Status ts = stub_->TuneNode(tctx.get(), tune, &tuned);
  EXPECT_TRUE(ts.ok()) << ts.error_code() << ": " << ts.error_message();
  EXPECT_LT(ms_since(t0), 1000.0);
}

// ---------------------------------------------------------------------------------------------
// 5-7. Errors: details with positions, indexes from 0, skit-error-code on every error;
//      PERMISSION_DENIED for a file outside the allow-lists; refusal after SIGTERM.

TEST_F(GrpcClient, InvalidPipelinesCarryBadRequestWithPositionsInTheDetails) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::string yaml = sample_pipeline("volume_boost");
  const auto at = yaml.find("gain: 2.0");
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, 9, "gain: 99.0");
  const int line = 1 + static_cast<int>(std::count(yaml.begin(), yaml.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
  v1::ValidatePipelineRequest req;
  req.set_pipeline_yaml(yaml);
  v1::ValidatePipelineResponse resp;
  auto ctx = context(kViewerToken);
  const grpc::Status s = stub_->ValidatePipeline(ctx.get(), req, &resp);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const auto d = details_of(s);
  EXPECT_EQ(d.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  const auto bad = unpacked<google::rpc::BadRequest>(d);
  ASSERT_EQ(bad.size(), 1U);
  ASSERT_EQ(bad[0].field_violations_size(), 1);
  EXPECT_EQ(bad[0].field_violations(0).field(), "pipeline_yaml");
  EXPECT_NE(bad[0].field_violations(0).description().find("line " + std::to_string(line)),
            std::string::npos) << bad[0].DebugString();
  const auto problems = unpacked<v1::Problems>(d);
  ASSERT_EQ(problems.size(), 1U);
  ASSERT_EQ(problems[0].problems_size(), 1);
  EXPECT_EQ(problems[0].problems(0).position().line(), line);
  EXPECT_EQ(problems[0].problems(0).param(), "gain");
  EXPECT_EQ(problems[0].problems(0).error_code(), "invalid_param");
  const auto info = unpacked<google::rpc::ErrorInfo>(d);
  ASSERT_EQ(info.size(), 1U);
  EXPECT_EQ(info[0].reason(), "INVALID_PARAM");
  EXPECT_EQ(info[0].domain(), "skit");
}

TEST_F(GrpcClient, BatchIssuesCountFromZeroAndCarryTheirPlace) {
  ASSERT_NO_FATAL_FAILURE(start());
  grpc::Status s;
  create_ms("batch", &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::ApplyBatchRequest req;
  req.set_session("batch");
  auto* ok = req.add_operations()->mutable_add_node();
  ok->set_node_id("pass");
  ok->set_kind("core::passthrough");
  auto* json_bad = req.add_operations()->mutable_add_node();
  json_bad->set_node_id("g");
  json_bad->set_kind("audio::gain");
  json_bad->set_params_json("{\n  \"gain\": ]\n}");
  req.set_validate_only(true);
  v1::ApplyBatchResponse resp;
  auto ctx = context();
  ASSERT_TRUE(stub_->ApplyBatch(ctx.get(), req, &resp).ok());
  ASSERT_EQ(resp.issues_size(), 1) << resp.DebugString();
  EXPECT_EQ(resp.issues(0).operation(), 1U);
  EXPECT_EQ(resp.issues(0).field(), "operations[1].add_node.params_json");
  EXPECT_EQ(resp.issues(0).position().line(), 2);
  EXPECT_EQ(resp.issues(0).position().column(), 11);

  // Applied, the same batch fails whole; the message counts from 0 as the field does.
  req.set_validate_only(false);
  auto ctx2 = context();
  const grpc::Status failed = stub_->ApplyBatch(ctx2.get(), req, &resp);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(failed.error_message().rfind("operation 1:", 0), 0U) << failed.error_message();
  const auto problems = unpacked<v1::Problems>(details_of(failed));
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].problems(0).operation(), 1);

  // A session-level problem (an unknown kind at index 0) has its index and field too.
  v1::ApplyBatchRequest unknown;
  unknown.set_session("batch");
  auto* nope = unknown.add_operations()->mutable_add_node();
  nope->set_node_id("x");
  nope->set_kind("audio::nope");
  unknown.set_validate_only(true);
  auto ctx3 = context();
  ASSERT_TRUE(stub_->ApplyBatch(ctx3.get(), unknown, &resp).ok());
  ASSERT_EQ(resp.issues_size(), 1) << resp.DebugString();
  EXPECT_EQ(resp.issues(0).operation(), 0U);
  EXPECT_EQ(resp.issues(0).field(), "operations[0].add_node");
  EXPECT_FALSE(resp.issues(0).error_code().empty());
}

TEST_F(GrpcClient, EveryErrorCarriesSkitErrorCode) {
  ASSERT_NO_FATAL_FAILURE(start());
  v1::ListSessionsResponse resp;
  auto none = context("");
  const grpc::Status anonymous = stub_->ListSessions(none.get(), {}, &resp);
  EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(trailer(*none, "skit-error-code"), "unauthenticated");
  EXPECT_EQ(unpacked<google::rpc::ErrorInfo>(details_of(anonymous)).at(0).reason(), "UNAUTHENTICATED");
  v1::CreateSessionRequest req;
  v1::CreateSessionResponse created;
  auto viewer = context(kViewerToken);
  const grpc::Status denied = stub_->CreateSession(viewer.get(), req, &created);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(trailer(*viewer, "skit-error-code"), "permission_denied");
  EXPECT_EQ(unpacked<google::rpc::ErrorInfo>(details_of(denied)).at(0).reason(), "PERMISSION_DENIED");
  // A file outside the allow-lists: PERMISSION_DENIED, as HTTP's 403.
  v1::ValidatePipelineRequest vreq;
  vreq.set_pipeline_yaml(
      "mode: oneshot\nsteps:\n  - kind: core::file_reader\n    params:\n      path: /etc/passwd\n"
      "  - kind: streamkit::http_output\n");
  v1::ValidatePipelineResponse vresp;
  auto vctx = context();
  EXPECT_EQ(stub_->ValidatePipeline(vctx.get(), vreq, &vresp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(trailer(*vctx, "skit-error-code"), "permission_denied");
}

TEST_F(GrpcClient, AfterSigtermNewCallsAreRefused) {
  ASSERT_NO_FATAL_FAILURE(start());
  // A watcher keeps the drain open a moment; health turns NOT_SERVING first.
  WatchProbe watcher(*stub_, kOperatorToken);
  ASSERT_TRUE(watcher.wait_settled(5s));
  auto health_stub = health::Health::NewStub(channel_);
  ::kill(server_->pid(), SIGTERM);
  ASSERT_TRUE(wait_until(
      [&] {
        health::HealthCheckResponse r;
        auto c = context("");
        const grpc::Status hs = health_stub->Check(c.get(), {}, &r);
        return !hs.ok() || r.status() == health::HealthCheckResponse::NOT_SERVING;
      },
      5s));
  v1::ListNodeKindsResponse kinds;
  auto ctx = context();
  const grpc::Status s = stub_->ListNodeKinds(ctx.get(), {}, &kinds);
  EXPECT_FALSE(s.ok()) << "a new call succeeded after SIGTERM";
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::UNAVAILABLE) << s.error_code() << " " << s.error_message();
  ASSERT_TRUE(watcher.wait_done(10s));
  EXPECT_EQ(watcher.status.error_code(), grpc::StatusCode::CANCELLED);
}

// ---------------------------------------------------------------------------------------------
// Beyond the defects: connection limits.

TEST_F(GrpcClient, AnIdleConnectionIsClosedAndTheNextCallReconnects) {
  ASSERT_NO_FATAL_FAILURE(start("limits:\n  grpc_idle_timeout_ms: 300\n"));
  grpc::Status s;
  list_ms(&s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(channel_->GetState(false), GRPC_CHANNEL_READY);
  // No call for longer than the idle limit: the server closes the connection (GOAWAY;
  // gRPC checks idleness every few seconds).
  EXPECT_TRUE(wait_until([&] { return channel_->GetState(false) != GRPC_CHANNEL_READY; }, 8s))
      << "the idle connection stayed open";
  // A stream in progress is not idle.
  WatchProbe watcher(*stub_, kOperatorToken);
  ASSERT_TRUE(watcher.wait_settled(5s));
  std::this_thread::sleep_for(6s);  // longer than it took to close the idle connection
  EXPECT_EQ(channel_->GetState(false), GRPC_CHANNEL_READY);
  EXPECT_FALSE(watcher.done) << watcher.status.error_message();
  watcher.cancel();
  ASSERT_TRUE(watcher.wait_done(5s));
  list_ms(&s);
  EXPECT_TRUE(s.ok()) << "the next call reconnects: " << s.error_message();
}

TEST_F(GrpcClient, TheRpcsHttpHasPermissionsConfigPacketSchemaAndSamples) {
  ASSERT_NO_FATAL_FAILURE(start("limits:\n  grpc_streams_per_token: 7\n"));
  {
    v1::GetPermissionsResponse resp;
    auto ctx = context(kViewerToken);
    ASSERT_TRUE(stub_->GetPermissions(ctx.get(), {}, &resp).ok());
    EXPECT_EQ(resp.role(), "viewer");
    EXPECT_TRUE(resp.permissions().at("list_sessions"));
    EXPECT_FALSE(resp.permissions().at("process_oneshot"));
    auto octx = context(kOperatorToken);
    ASSERT_TRUE(stub_->GetPermissions(octx.get(), {}, &resp).ok());
    EXPECT_EQ(resp.role(), "operator");
    EXPECT_TRUE(resp.permissions().at("process_oneshot"));
  }
  {
    v1::GetConfigResponse resp;
    auto ctx = context(kViewerToken);
    ASSERT_TRUE(stub_->GetConfig(ctx.get(), {}, &resp).ok());
    EXPECT_FALSE(resp.version().empty());
    EXPECT_EQ(resp.grpc_streams_per_token(), 7U);
    EXPECT_EQ(resp.grpc_streams_per_connection(), 32U);
    EXPECT_GT(resp.max_body_bytes(), 0U);
    EXPECT_EQ(resp.placement(), "grouped");
  }
  {
    v1::GetPacketSchemaResponse resp;
    auto ctx = context(kViewerToken);
    ASSERT_TRUE(stub_->GetPacketSchema(ctx.get(), {}, &resp).ok());
    EXPECT_NE(resp.schema().kind_case(), google::protobuf::Value::KIND_NOT_SET);
    EXPECT_NE(resp.schema().DebugString().find("RawAudio"), std::string::npos)
        << resp.schema().DebugString().substr(0, 400);
  }
  {
    v1::ListSamplesResponse list;
    auto ctx = context(kViewerToken);
    ASSERT_TRUE(stub_->ListSamples(ctx.get(), {}, &list).ok());
    bool found = false;
    for (const auto& sample : list.samples()) {
      found |= sample.id() == "oneshot/volume_boost";
    }
    EXPECT_TRUE(found) << list.DebugString().substr(0, 400);
    v1::GetSampleRequest req;
    req.set_id("volume_boost");
    v1::Sample sample;
    auto gctx = context(kViewerToken);
    ASSERT_TRUE(stub_->GetSample(gctx.get(), req, &sample).ok());
    EXPECT_EQ(sample.yaml(), sample_pipeline("volume_boost"));
    EXPECT_EQ(sample.name(), "Volume boost (Ogg/Opus)");
    req.set_id("no_such_sample");
    auto nctx = context(kViewerToken);
    EXPECT_EQ(stub_->GetSample(nctx.get(), req, &sample).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(trailer(*nctx, "skit-error-code"), "not_found");
  }
  {
    v1::ListNodeKindsResponse kinds;
    auto ctx = context(kViewerToken);
    ASSERT_TRUE(stub_->ListNodeKinds(ctx.get(), {}, &kinds).ok());
    for (const auto& k : kinds.node_kinds()) {
      EXPECT_FALSE(k.bidirectional()) << k.kind() << ": no built-in kind may sit on a cycle";
    }
  }
}

TEST_F(GrpcClient, ParamsPipelinesAndEventsAreTypedStructs) {
  ASSERT_NO_FATAL_FAILURE(start());
  grpc::Status s;
  create_ms("typed", &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  WatchProbe watcher(*stub_, kOperatorToken);
  ASSERT_TRUE(watcher.wait_settled(5s));
  // add_node with params as a Struct (no JSON text).
  v1::ApplyBatchRequest batch;
  batch.set_session("typed");
  auto* add = batch.add_operations()->mutable_add_node();
  add->set_node_id("gain");
  add->set_kind("audio::gain");
  (*add->mutable_params()->mutable_fields())["gain"].set_number_value(1.5);
  v1::ApplyBatchResponse applied;
  auto actx = context();
  ASSERT_TRUE(stub_->ApplyBatch(actx.get(), batch, &applied).ok());
  ASSERT_TRUE(applied.applied());
  // GetSession: the pipeline as a Struct, its fields read without parsing JSON.
  v1::GetSessionRequest get;
  get.set_session("typed");
  v1::GetSessionResponse session;
  auto gctx = context();
  ASSERT_TRUE(stub_->GetSession(gctx.get(), get, &session).ok());
  const auto& nodes = session.pipeline().fields().at("nodes").struct_value().fields();
  ASSERT_TRUE(nodes.count("gain")) << session.pipeline().DebugString().substr(0, 400);
  const auto& params = nodes.at("gain").struct_value().fields().at("params").struct_value();
  EXPECT_DOUBLE_EQ(params.fields().at("gain").number_value(), 1.5);
  // An out-of-range value in a Struct is refused like one in params_json.
  v1::TuneNodeRequest tune;
  tune.set_session("typed");
  tune.set_node_id("gain");
  (*tune.mutable_params()->mutable_fields())["gain"].set_number_value(99.0);
  v1::TuneNodeResponse tuned;
  auto tctx = context();
  EXPECT_EQ(stub_->TuneNode(tctx.get(), tune, &tuned).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Events carry their payload as a Struct too.
  ASSERT_TRUE(watcher.wait_events(1, 5s));
  std::lock_guard lock(watcher.mutex);
  EXPECT_EQ(watcher.last.payload().fields().at("event").string_value(), watcher.last.event());
  EXPECT_EQ(watcher.last.payload().fields().at("session_id").string_value(),
            watcher.last.session_id());
}

TEST_F(GrpcClient, TlsWithAConfiguredCertificateAndKey) {
  const std::string cert = dir_.file("cert.pem");
  const std::string key = dir_.file("key.pem");
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                          "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + key +
                          " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl req failed";
  server_ = std::make_unique<SkitServer>(
      "server:\n  grpc_listen: 127.0.0.1:0\n  grpc_tls_cert: " + cert + "\n  grpc_tls_key: " + key +
      "\n");
  ASSERT_TRUE(server_->up()) << server_->log();
  grpc::SslCredentialsOptions trust;
  trust.pem_root_certs = read_file(cert);
  auto tls = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                 grpc::SslCredentials(trust));
  auto stub = v1::Control::NewStub(tls);
  v1::ListNodeKindsResponse kinds;
  auto ctx = context("");
  const grpc::Status s = stub->ListNodeKinds(ctx.get(), {}, &kinds);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_GT(kinds.node_kinds_size(), 10);
  // A plaintext client gets nowhere.
  auto plain = v1::Control::NewStub(channel_to(server_->grpc_port()));
  auto pctx = context("", 3s);
  EXPECT_FALSE(plain->ListNodeKinds(pctx.get(), {}, &kinds).ok());
}

}  // namespace
}  // namespace skit::testing
