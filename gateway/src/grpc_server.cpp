// SPDX-License-Identifier: MPL-2.0
// The gRPC server of `skit serve`: skit.v1.Control (grpc_control.hpp), grpc.health.v1.Health
// and server reflection on one port, with keepalive, idle and message-size settings, the
// error interceptor, a reaper that cancels calls past their deadline, and the drain on
// shutdown.
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "grpc_control.hpp"
#include "grpc_infra.hpp"
#include "grpc_reflection.hpp"
#include "grpc_service.hpp"
#include "listen_address.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"

namespace skit::gateway {

namespace {
constexpr int kMaxMessageBytes = 4 << 20;  // a media chunk; the config may need more
constexpr auto kShutdownGrace = std::chrono::seconds(5);      // for Process calls to end
constexpr auto kUnaryGrace = std::chrono::milliseconds(300);  // then for the rest
}  // namespace

struct GrpcServer::Impl {
  explicit Impl(const ServerConfig& config)
      : auth(config.tokens),
        limiter(StreamCaps{config.grpc_streams_per_connection, config.grpc_streams_per_token,
                           config.grpc_max_streams}),
        threads(static_cast<int>(std::max<std::uint32_t>(config.max_connections, 16))),
        health(limiter, static_cast<std::size_t>(threads - 2)) {}

  Authenticator auth;
  StreamLimiter limiter;
  CallRegistry calls;
  int threads;
  HealthState health;
  std::unique_ptr<ReflectionContext> reflection_context;
  std::unique_ptr<ControlService> service;
  std::unique_ptr<grpc::Service> health_service;
  std::vector<std::unique_ptr<grpc::Service>> reflection;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::mutex mutex;
  std::condition_variable cv;
  bool stopping = false;
  std::thread reaper;  // cancels calls past their deadline
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() { shutdown(); }

unsigned short GrpcServer::port() const { return static_cast<unsigned short>(impl_->port); }

Result<std::unique_ptr<GrpcServer>> GrpcServer::start(const ServerConfig& config,
                                                      supervisor::Engine& engine,
                                                      supervisor::SessionManager& sessions) {
  const std::string& listen = config.grpc_listen;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size() ||
      listen.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument,
                  "server.grpc_listen must be HOST:PORT, got '" + listen + "'");
  }
  if (Status s = check_loopback_policy(config, listen, "serve gRPC on"); !s.is_ok()) {
    return s;
  }

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (config.grpc_tls_cert.empty() != config.grpc_tls_key.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "server.grpc_tls_cert and server.grpc_tls_key go together (TLS needs both)");
  }
  if (!config.grpc_tls_cert.empty()) {
    grpc::SslServerCredentialsOptions tls;
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    auto cert = supervisor::read_text_file(config.grpc_tls_cert);
    auto key = supervisor::read_text_file(config.grpc_tls_key);
    if (!cert || !key) {
      return Status(ErrorCode::kInvalidArgument,
                    "cannot read server.grpc_tls_" + std::string(!cert ? "cert" : "key") + ": " +
                        (!cert ? cert.status() : key.status()).message());
    }
    pair.cert_chain = std::move(*cert);
    pair.private_key = std::move(*key);
    tls.pem_key_cert_pairs.push_back(std::move(pair));
    credentials = grpc::SslServerCredentials(tls);
  }

  auto impl = std::make_unique<Impl>(config);
  impl->service = std::make_unique<ControlService>(config, engine, sessions, impl->auth,
                                                   impl->limiter, impl->calls, impl->health);
  impl->health_service = make_health_service(impl->health, impl->limiter, impl->calls);
  impl->reflection_context = std::make_unique<ReflectionContext>(ReflectionContext{
      impl->auth, impl->limiter, impl->calls,
      {v1::Control::service_full_name(), "grpc.health.v1.Health",
       "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}});
  impl->reflection = make_reflection_services(*impl->reflection_context);
  HealthState* health = &impl->health;
  impl->limiter.set_listener([health] { health->changed(); });

  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, credentials, &impl->port);
  // A taken port is an error, not a port silently shared with another server.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Dead peers are found by pings; idle connections are closed; clients may ping every 10 s.
  if (config.grpc_keepalive.count() > 0) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                               static_cast<int>(config.grpc_keepalive.count()));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                               static_cast<int>(config.grpc_keepalive_timeout.count()));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  }
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  if (config.grpc_idle_timeout.count() > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               static_cast<int>(std::min<std::int64_t>(
                                   config.grpc_idle_timeout.count(), INT32_MAX)));
  }
  builder.SetMaxReceiveMessageSize(
      std::max<int>(kMaxMessageBytes,
                    static_cast<int>(std::min<std::uint64_t>(config.max_config_bytes + 65536,
                                                             1U << 30))));
  grpc::ResourceQuota quota("skit-grpc");
  quota.SetMaxThreads(impl->threads);
  builder.SetResourceQuota(quota);
  builder.RegisterService(impl->service.get());
  builder.RegisterService(impl->health_service.get());
  for (auto& r : impl->reflection) {
    builder.RegisterService(r.get());
  }
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(make_error_interceptor());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return Status(ErrorCode::kUnavailable,
                  "cannot serve gRPC on " + listen +
                      " (server.grpc_listen; is the port taken? an empty value disables gRPC)");
  }
  Impl* raw = impl.get();
  impl->reaper = std::thread([raw] {
    std::unique_lock lock(raw->mutex);
    while (!raw->cv.wait_for(lock, std::chrono::milliseconds(250), [raw] { return raw->stopping; })) {
      raw->calls.cancel_expired();
    }
  });
  spdlog::info("gRPC listening on {}:{}{}", host_of(listen), impl->port,
               config.grpc_tls_cert.empty() ? "" : " (TLS)");
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

void GrpcServer::shutdown() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) {
      return;
    }
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  impl_->reaper.join();
  spdlog::info("gRPC shutting down: cancelling running pipelines and streams");
  impl_->health.set_draining();
  impl_->calls.cancel_all();
  // Process calls end as soon as their pipelines are torn down, streams at once. Then only
  // short calls can be left: they get a moment. (gRPC's Shutdown waits until its deadline
  // while any client keeps an idle connection open, so the deadline is kept short.)
  const bool drained = impl_->calls.wait_empty(kShutdownGrace);
  impl_->limiter.set_listener(nullptr);
  impl_->server->Shutdown(std::chrono::system_clock::now() + kUnaryGrace);
  impl_->server->Wait();
  spdlog::info("gRPC stopped{}", drained ? "" : " (some calls did not end in time)");
}

}  // namespace skit::gateway
