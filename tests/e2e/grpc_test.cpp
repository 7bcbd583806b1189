// SPDX-License-Identifier: MPL-2.0
// The gRPC API end to end: the real `skit serve` (working directory: the repository root,
// HTTP and gRPC on port 0, the ports read from its stderr) driven by a C++ client built from
// the protos: health, reflection (and a call made the way generic tools make it, from
// descriptors fetched over reflection alone), ListNodeKinds, ValidatePipeline, Process with
// streamed media (measured: +6 dB), the status code mapping, bearer tokens and roles, and a
// shutdown with a pipeline running.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "audio_measure.hpp"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "skit/v1/control.grpc.pb.h"
#include "skit_server.hpp"
#include "skit_test_support.hpp"

namespace skit::testing {
namespace {

using namespace std::chrono_literals;
namespace health = grpc::health::v1;
namespace reflection = grpc::reflection::v1alpha;

constexpr const char* kOperatorToken = "operator-token-0123456789";
constexpr const char* kViewerToken = "viewer-token-0123456789";

std::string sample_pipeline(const std::string& name) {
  return read_file((kRepo / "samples/pipelines/oneshot" / (name + ".yml")).string());
}

std::shared_ptr<grpc::Channel> channel_of(const SkitServer& server) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(server.grpc_port()),
                             grpc::InsecureChannelCredentials());
}

std::string grpc_config(const std::string& extra = "") {
  return "server:\n  grpc_listen: 127.0.0.1:0\n" + extra;
}

/// A client context with a deadline and, when given, a bearer token.
std::unique_ptr<grpc::ClientContext> context(const std::string& token = "",
                                             std::chrono::seconds timeout = 60s) {
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

struct ProcessOutcome {
  grpc::Status status;
  std::string output;
  std::string content_type;
  int output_messages = 0;
  std::optional<v1::ProcessResult> result;
  std::string error_code;  // trailing metadata skit-error-code
};

struct ProcessCall {
  std::string yaml;
  std::optional<std::string> media;  // none: no media messages
  std::size_t chunk_size = 64 * 1024;
  std::string token;
  std::optional<bool> has_media;
  bool media_first = false;  // protocol error: media before the config
};

/// Runs Process: a writer thread sends the config and the media in chunks, this thread
/// reads the output as it comes.
ProcessOutcome process(v1::Control::Stub& stub, const ProcessCall& call) {
  auto ctx = context(call.token);
  auto stream = stub.Process(ctx.get());
  std::thread writer([&] {
    v1::ProcessRequest config;
    config.mutable_config()->set_pipeline_yaml(call.yaml);
    if (call.has_media) {
      config.mutable_config()->set_has_media(*call.has_media);
    }
    if (!call.media_first && !stream->Write(config)) {
      return;
    }
    if (call.media) {
      for (std::size_t at = 0; at < call.media->size(); at += call.chunk_size) {
        v1::ProcessRequest chunk;
        chunk.set_media(call.media->substr(at, call.chunk_size));
        if (!stream->Write(chunk)) {
          return;
        }
      }
    }
    stream->WritesDone();
  });
  ProcessOutcome out;
  v1::ProcessResponse resp;
  while (stream->Read(&resp)) {
    if (resp.has_output()) {
      EXPECT_FALSE(out.result) << "output after the result";
      if (out.output_messages == 0) {
        out.content_type = resp.output().content_type();
      } else {
        EXPECT_EQ(resp.output().content_type(), "") << "content_type on a later chunk";
      }
      ++out.output_messages;
      out.output += resp.output().data();
    } else if (resp.has_result()) {
      EXPECT_FALSE(out.result) << "two results";
      out.result = resp.result();
    }
  }
  writer.join();
  out.status = stream->Finish();
  out.error_code = trailer(*ctx, "skit-error-code");
  return out;
}

// ---------------------------------------------------------------------------------------------
// A server without auth tokens (loopback only)

class Grpc : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<SkitServer>(grpc_config());
    ASSERT_TRUE(server_->up() && server_->grpc_port() > 0) << server_->log();
  }
  static void TearDownTestSuite() {
    const pid_t pid = server_->pid();
    EXPECT_EQ(server_->stop(), 0) << server_->log();
    EXPECT_TRUE(shm_segments_of(pid).empty()) << "shared memory left behind";
    EXPECT_TRUE(skit_workers(pid).empty()) << "workers outlived the server";
    server_.reset();
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(server_->up() && server_->grpc_port() > 0);
    channel_ = channel_of(*server_);
    stub_ = v1::Control::NewStub(channel_);
  }

  static std::unique_ptr<SkitServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Control::Stub> stub_;
  TempDir dir_;
};
std::unique_ptr<SkitServer> Grpc::server_;

TEST_F(Grpc, HealthCheckIsServingForTheServerAndForControl) {
  auto stub = health::Health::NewStub(channel_);
  for (const std::string service : {"", "skit.v1.Control"}) {
    health::HealthCheckRequest req;
    req.set_service(service);
    health::HealthCheckResponse resp;
    auto ctx = context();
    const grpc::Status s = stub->Check(ctx.get(), req, &resp);
    ASSERT_TRUE(s.ok()) << service << ": " << s.error_message();
    EXPECT_EQ(resp.status(), health::HealthCheckResponse::SERVING) << service;
  }
  health::HealthCheckRequest req;
  req.set_service("no.such.Service");
  health::HealthCheckResponse resp;
  auto ctx = context();
  EXPECT_EQ(stub->Check(ctx.get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

/// Reflection: the services, and the file declaring skit.v1.Control with its dependencies.
class ReflectionClient {
 public:
  explicit ReflectionClient(const std::shared_ptr<grpc::Channel>& channel,
                            const std::string& token = "")
      : stub_(reflection::ServerReflection::NewStub(channel)), ctx_(context(token)),
        stream_(stub_->ServerReflectionInfo(ctx_.get())) {}
  ~ReflectionClient() {
    stream_->WritesDone();
    EXPECT_TRUE(stream_->Finish().ok());
  }
  ReflectionClient(const ReflectionClient&) = delete;
  ReflectionClient& operator=(const ReflectionClient&) = delete;

  reflection::ServerReflectionResponse ask(const reflection::ServerReflectionRequest& req) {
    reflection::ServerReflectionResponse resp;
    EXPECT_TRUE(stream_->Write(req));
    EXPECT_TRUE(stream_->Read(&resp));
    return resp;
  }
  std::set<std::string> services() {
    reflection::ServerReflectionRequest req;
    req.set_list_services("*");
    std::set<std::string> names;
    const auto resp = ask(req);
    for (const auto& s : resp.list_services_response().service()) {
      names.insert(s.name());
    }
    return names;
  }
  /// The file declaring `symbol` and its dependencies, by file name.
  std::map<std::string, google::protobuf::FileDescriptorProto> files_for(const std::string& symbol) {
    reflection::ServerReflectionRequest req;
    req.set_file_containing_symbol(symbol);
    const auto resp = ask(req);
    EXPECT_FALSE(resp.has_error_response()) << resp.error_response().error_message();
    std::map<std::string, google::protobuf::FileDescriptorProto> files;
    for (const auto& bytes : resp.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto f;
      EXPECT_TRUE(f.ParseFromString(bytes));
      files.emplace(f.name(), f);
    }
    return files;
  }

 private:
  std::unique_ptr<reflection::ServerReflection::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<reflection::ServerReflectionRequest,
                                           reflection::ServerReflectionResponse>> stream_;
};

TEST_F(Grpc, ReflectionListsTheServicesAndDescribesControl) {
  ReflectionClient client(channel_);
  const auto services = client.services();
  EXPECT_TRUE(services.count("skit.v1.Control")) << ::testing::PrintToString(services);
  EXPECT_TRUE(services.count("grpc.health.v1.Health")) << ::testing::PrintToString(services);
  EXPECT_TRUE(services.count("grpc.reflection.v1alpha.ServerReflection"));
  EXPECT_TRUE(services.count("grpc.reflection.v1.ServerReflection"));

  const auto files = client.files_for("skit.v1.Control");
  ASSERT_TRUE(files.count("skit/v1/control.proto")) << files.size() << " files";
  EXPECT_TRUE(files.count("skit/v1/pipeline.proto")) << "its dependency is sent too";
  const auto& control = files.at("skit/v1/control.proto");
  ASSERT_EQ(control.service_size(), 1);
  EXPECT_EQ(control.service(0).name(), "Control");
  std::map<std::string, google::protobuf::MethodDescriptorProto> methods;
  for (const auto& m : control.service(0).method()) {
    methods.emplace(m.name(), m);
  }
  ASSERT_EQ(methods.size(), 18U);
  for (const char* name : {"ListNodeKinds", "ValidatePipeline", "Process", "CreateSession",
                           "ListSessions", "GetSession", "DeleteSession", "ApplyBatch", "TuneNode",
                           "WatchEvents", "GetPermissions", "GetConfig", "GetPacketSchema",
                           "ListSamples", "GetSample", "ListPlugins", "UploadPlugin",
                           "DeletePlugin"}) {
    EXPECT_TRUE(methods.count(name)) << name;
  }
  EXPECT_FALSE(methods.at("WatchEvents").client_streaming());
  EXPECT_TRUE(methods.at("WatchEvents").server_streaming());
  EXPECT_TRUE(methods.at("Process").client_streaming());
  EXPECT_TRUE(methods.at("Process").server_streaming());
  EXPECT_FALSE(methods.at("ListNodeKinds").client_streaming());
  EXPECT_EQ(methods.at("ValidatePipeline").input_type(), ".skit.v1.ValidatePipelineRequest");

  // The health protocol is described too, so tools can call it by name.
  EXPECT_TRUE(client.files_for("grpc.health.v1.Health").count("grpc/health/v1/health.proto"));
}

TEST_F(Grpc, AGenericClientCallsListNodeKindsFromReflectedDescriptorsAlone) {
  // What grpcurl does: descriptors from reflection, dynamic messages, a generic call.
  google::protobuf::DescriptorPool pool;
  {
    ReflectionClient client(channel_);
    auto files = client.files_for("skit.v1.Control");
    ASSERT_TRUE(files.count("google/protobuf/struct.proto")) << "every import is sent";
    // Each file once its imports are built, as generic tools do.
    while (!files.empty()) {
      bool progress = false;
      for (auto it = files.begin(); it != files.end();) {
        bool ready = true;
        for (const auto& dep : it->second.dependency()) {
          ready &= pool.FindFileByName(dep) != nullptr;
        }
        if (!ready) {
          ++it;
          continue;
        }
        ASSERT_NE(pool.BuildFile(it->second), nullptr) << it->first;
        it = files.erase(it);
        progress = true;
      }
      ASSERT_TRUE(progress) << "a reflected file imports one that was not sent";
    }
  }
  const auto* method = pool.FindMethodByName("skit.v1.Control.ListNodeKinds");
  ASSERT_NE(method, nullptr);
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::unique_ptr<google::protobuf::Message> request(
      factory.GetPrototype(method->input_type())->New());
  std::string wire;
  ASSERT_TRUE(request->SerializeToString(&wire));
  grpc::Slice slice(wire);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  grpc::GenericStub generic(channel_);
  auto ctx = context();
  std::promise<grpc::Status> done;
  generic.UnaryCall(ctx.get(), "/skit.v1.Control/ListNodeKinds", grpc::StubOptions(),
                    &request_buffer, &response_buffer,
                    [&done](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status s = done.get_future().get();
  ASSERT_TRUE(s.ok()) << s.error_message();
  grpc::Slice joined;
  ASSERT_TRUE(response_buffer.DumpToSingleSlice(&joined).ok());
  std::unique_ptr<google::protobuf::Message> response(
      factory.GetPrototype(method->output_type())->New());
  ASSERT_TRUE(response->ParseFromArray(joined.begin(), static_cast<int>(joined.size())));
  const auto* field = method->output_type()->FindFieldByName("node_kinds");
  ASSERT_NE(field, nullptr);
  const auto* refl = response->GetReflection();
  ASSERT_GT(refl->FieldSize(*response, field), 10);
  std::set<std::string> kinds;
  for (int i = 0; i < refl->FieldSize(*response, field); ++i) {
    const auto& kind = refl->GetRepeatedMessage(*response, field, i);
    kinds.insert(kind.GetReflection()->GetString(kind, kind.GetDescriptor()->FindFieldByName("kind")));
  }
  EXPECT_TRUE(kinds.count("core::file_reader"));
}

TEST_F(Grpc, ListNodeKindsDescribesEveryKindWithPinsAndParamsSchema) {
  v1::ListNodeKindsResponse resp;
  auto ctx = context();
  const grpc::Status s = stub_->ListNodeKinds(ctx.get(), {}, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::map<std::string, v1::NodeKind> kinds;
  std::string previous;
  for (const auto& k : resp.node_kinds()) {
    EXPECT_LT(previous, k.kind()) << "sorted by kind";
    previous = k.kind();
    kinds.emplace(k.kind(), k);
  }
  ASSERT_TRUE(kinds.count("core::file_reader"));
  const auto& reader = kinds.at("core::file_reader");
  EXPECT_FALSE(reader.description().empty());
  EXPECT_EQ(reader.categories_size(), 1);
  EXPECT_EQ(reader.inputs_size(), 0);
  ASSERT_EQ(reader.outputs_size(), 1);
  EXPECT_EQ(reader.outputs(0).produces_type(), "Binary");
  EXPECT_EQ(reader.outputs(0).cardinality(), v1::NodeKind::BROADCAST);
  EXPECT_EQ(reader.execution(), v1::NodeKind::WORKER);
  const auto schema = nlohmann::json::parse(reader.param_schema_json(), nullptr, false);
  ASSERT_FALSE(schema.is_discarded()) << reader.param_schema_json();
  EXPECT_TRUE(schema["properties"].contains("path")) << schema.dump();

  ASSERT_TRUE(kinds.count("audio::gain"));
  const auto& gain = kinds.at("audio::gain");
  ASSERT_EQ(gain.inputs_size(), 1);
  EXPECT_TRUE(gain.inputs(0).required());
  EXPECT_EQ(gain.inputs(0).cardinality(), v1::NodeKind::ONE);
  ASSERT_GE(gain.inputs(0).accepts_types_size(), 1);
  EXPECT_EQ(gain.inputs(0).accepts_types(0).rfind("RawAudio(", 0), 0U) << gain.inputs(0).accepts_types(0);
  ASSERT_TRUE(kinds.count("streamkit::http_input"));
  EXPECT_EQ(kinds.at("streamkit::http_input").execution(), v1::NodeKind::HOST);
}

TEST_F(Grpc, ValidatePipelineReturnsTheCompiledPipeline) {
  v1::ValidatePipelineRequest req;
  req.set_pipeline_yaml(sample_pipeline("volume_boost"));
  v1::ValidatePipelineResponse resp;
  auto ctx = context();
  const grpc::Status s = stub_->ValidatePipeline(ctx.get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.pipeline().name(), "Volume boost (Ogg/Opus)");
  ASSERT_EQ(resp.pipeline().nodes_size(), 7);
  EXPECT_EQ(resp.pipeline().nodes(0).kind(), "streamkit::http_input");
  EXPECT_EQ(resp.pipeline().connections_size(), 6);

  // Saying there is no media contradicts the pipeline's streamkit::http_input.
  req.set_has_media(false);
  auto ctx2 = context();
  const grpc::Status s2 = stub_->ValidatePipeline(ctx2.get(), req, &resp);
  EXPECT_EQ(s2.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s2.error_message().find("carries no media"), std::string::npos) << s2.error_message();
}

TEST_F(Grpc, ValidatePipelineOfBadYamlIsInvalidArgumentWithTheLine) {
  v1::ValidatePipelineRequest req;
  req.set_pipeline_yaml("mode: oneshot\nsteps:\n  - kind: streamkit::http_input\n  - kind: [unclosed\n");
  v1::ValidatePipelineResponse resp;
  auto ctx = context();
  const grpc::Status s = stub_->ValidatePipeline(ctx.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("line"), std::string::npos) << s.error_message();
  EXPECT_EQ(trailer(*ctx, "skit-error-code"), "invalid_argument");

  // A bad param: the message names the line, the node and the param.
  std::string yaml = sample_pipeline("volume_boost");
  const auto at = yaml.find("gain: 2.0");
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, 9, "gain: 99.0");
  req.set_pipeline_yaml(yaml);
  auto ctx2 = context();
  const grpc::Status s2 = stub_->ValidatePipeline(ctx2.get(), req, &resp);
  EXPECT_EQ(s2.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const auto line = 1 + std::count(yaml.begin(), yaml.begin() + static_cast<std::ptrdiff_t>(at), '\n');
  EXPECT_NE(s2.error_message().find("line " + std::to_string(line) + ","), std::string::npos)
      << s2.error_message();
  EXPECT_NE(s2.error_message().find("gain"), std::string::npos) << s2.error_message();
  EXPECT_EQ(trailer(*ctx2, "skit-error-code"), "invalid_param");
}

TEST_F(Grpc, AFileOutsideTheAllowedPathsIsPermissionDeniedNamingThePath) {
  v1::ValidatePipelineRequest req;
  req.set_pipeline_yaml(
      "mode: oneshot\nsteps:\n  - kind: core::file_reader\n    params:\n      path: /etc/passwd\n"
      "  - kind: streamkit::http_output\n");
  v1::ValidatePipelineResponse resp;
  auto ctx = context();
  const grpc::Status s = stub_->ValidatePipeline(ctx.get(), req, &resp);
  // As HTTP's 403 and the proto's comment say.
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("/etc/passwd"), std::string::npos) << s.error_message();
  EXPECT_EQ(trailer(*ctx, "skit-error-code"), "permission_denied");

  const ProcessOutcome r = process(*stub_, {.yaml = req.pipeline_yaml()});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << r.status.error_message();
  EXPECT_FALSE(r.result) << "no run, no result";
  EXPECT_EQ(r.error_code, "permission_denied");
}

TEST_F(Grpc, ProcessVolumeBoostStreamsOggOpusSixDbLouderWithPerNodeStats) {
  const std::string in = (kRepo / "samples/audio/speech.ogg").string();
  const std::string media = read_file(in);
  constexpr std::size_t kChunk = 2048;
  ASSERT_GT(media.size(), 4 * kChunk) << "several chunks";

  const ProcessOutcome r = process(*stub_, {.yaml = sample_pipeline("volume_boost"),
                                            .media = media, .chunk_size = kChunk});

  ASSERT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << server_->log();
  EXPECT_EQ(r.content_type, "audio/ogg");
  EXPECT_GE(r.output_messages, 1);
  const std::string out = dir_.file("out.ogg");
  write_file(out, r.output);
  const Decoded a = decode_f32(in);
  const Decoded b = decode_f32(out);
  ASSERT_EQ(b.err, "") << "the output does not decode cleanly";
  EXPECT_EQ(probe(out).format, "ogg");
  EXPECT_EQ(probe(out).codec, "opus");
  const double delta = rms_db(b.middle()) - rms_db(a.middle());
  std::printf("[ measure  ] rms in %.3f dB, out %.3f dB, delta %.4f dB\n", rms_db(a.middle()),
              rms_db(b.middle()), delta);
  EXPECT_NEAR(delta, kSixDb, 0.1);
  EXPECT_NEAR(b.seconds(), a.seconds(), 0.03);

  ASSERT_TRUE(r.result) << "the last message is the result";
  const v1::ProcessResult& res = *r.result;
  EXPECT_EQ(res.code(), 0);
  EXPECT_EQ(res.error_code(), "ok");
  EXPECT_EQ(res.message(), "");
  EXPECT_EQ(r.error_code, "ok");
  EXPECT_EQ(res.bytes_in(), media.size());
  EXPECT_EQ(res.bytes_out(), r.output.size());
  EXPECT_GT(res.wall_seconds(), 0.0);
  EXPECT_GE(res.worker_count(), 1U);
  EXPECT_EQ(res.placement(), "grouped");
  ASSERT_EQ(res.nodes_size(), 7);
  const std::vector<std::string> kinds = {"streamkit::http_input", "containers::ogg::demuxer",
                                          "audio::opus::decoder",  "audio::gain",
                                          "audio::opus::encoder",  "containers::ogg::muxer",
                                          "streamkit::http_output"};
  std::set<std::string> ids;
  for (int i = 0; i < res.nodes_size(); ++i) {
    const auto& n = res.nodes(i);
    EXPECT_EQ(n.kind(), kinds[static_cast<std::size_t>(i)]);
    ids.insert(n.id());
    EXPECT_EQ(n.state(), v1::NodeReport::STOPPED) << n.id() << ": " << n.message();
    EXPECT_GT(n.worker_pid(), 0) << n.id();
    if (i > 0) {
      EXPECT_GT(n.packets_in(), 0U) << n.id();
    }
    if (i + 1 < res.nodes_size()) {
      EXPECT_GT(n.packets_out(), 0U) << n.id();
      EXPECT_GT(n.bytes_out(), 0U) << n.id();
    }
  }
  EXPECT_EQ(ids.size(), 7U) << "node ids are unique";
  EXPECT_EQ(res.nodes(0).bytes_out(), media.size()) << "http_input passes on every byte";
  EXPECT_EQ(res.nodes(6).bytes_in(), r.output.size()) << "http_output received what was sent";
  // Host-side nodes run in the server, media nodes in a worker.
  EXPECT_EQ(res.nodes(0).worker_pid(), server_->pid());
  EXPECT_NE(res.nodes(3).worker_pid(), server_->pid());
}

TEST_F(Grpc, OutputStreamsBackWhileTheUploadIsStillOpen) {
  // 20 s of Opus; the client sends three quarters of it, then waits for output before it
  // sends the rest: only a server that streams its output back as produced passes.
  const std::string in = dir_.file("in.ogg");
  ASSERT_TRUE(make_sine(in, 440, 0.3, 20.0, 48000, 1, {"-c:a", "libopus", "-b:a", "128k"}));
  const std::string media = read_file(in);
  const std::size_t held_back = media.size() / 4;
  auto ctx = context();
  auto stream = stub_->Process(ctx.get());
  std::mutex mutex;
  std::condition_variable cv;
  bool got_output = false;
  bool output_before_rest = false;
  std::thread writer([&] {
    v1::ProcessRequest config;
    config.mutable_config()->set_pipeline_yaml(sample_pipeline("volume_boost"));
    if (!stream->Write(config)) {
      return;
    }
    auto send = [&](std::size_t from, std::size_t to) {
      for (std::size_t at = from; at < to; at += 16 * 1024) {
        v1::ProcessRequest chunk;
        chunk.set_media(media.substr(at, std::min<std::size_t>(16 * 1024, to - at)));
        if (!stream->Write(chunk)) {
          return false;
        }
      }
      return true;
    };
    if (!send(0, media.size() - held_back)) {
      return;
    }
    {
      std::unique_lock lock(mutex);
      output_before_rest = cv.wait_for(lock, 20s, [&] { return got_output; });
    }
    if (send(media.size() - held_back, media.size())) {
      stream->WritesDone();
    }
  });
  std::string output;
  int messages = 0;
  std::optional<v1::ProcessResult> result;
  v1::ProcessResponse resp;
  while (stream->Read(&resp)) {
    if (resp.has_output()) {
      output += resp.output().data();
      ++messages;
      std::lock_guard lock(mutex);
      got_output = true;
      cv.notify_all();
    } else if (resp.has_result()) {
      result = resp.result();
    }
  }
  writer.join();
  const grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(output_before_rest) << "no output before the upload was complete";
  EXPECT_GT(messages, 1);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->bytes_in(), media.size());
  EXPECT_EQ(result->bytes_out(), output.size());
  const std::string out = dir_.file("out.ogg");
  write_file(out, output);
  const Decoded b = decode_f32(out);
  ASSERT_EQ(b.err, "");
  EXPECT_NEAR(b.seconds(), 20.0, 0.05);
  EXPECT_NEAR(rms_db(b.middle()) - rms_db(decode_f32(in).middle()), kSixDb, 0.1);
}

TEST_F(Grpc, ProcessWithoutMediaRunsAFileReaderPipeline) {
  const std::string yaml =
      "mode: oneshot\nsteps:\n  - kind: core::file_reader\n    params:\n"
      "      path: samples/audio/speech.ogg\n  - kind: streamkit::http_output\n"
      "    params:\n      content_type: audio/ogg\n";
  // has_media unset: the half-close right after the config says "no media".
  const ProcessOutcome r = process(*stub_, {.yaml = yaml});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.output, read_file((kRepo / "samples/audio/speech.ogg").string()));
  ASSERT_TRUE(r.result);
  EXPECT_EQ(r.result->bytes_in(), 0U);
  // Said explicitly, the same.
  const ProcessOutcome r2 = process(*stub_, {.yaml = yaml, .has_media = false});
  ASSERT_TRUE(r2.status.ok()) << r2.status.error_message();
  EXPECT_EQ(r2.output.size(), r.output.size());
}

TEST_F(Grpc, CorruptMediaIsInvalidArgumentWithCorruptMediaInTheResult) {
  const ProcessOutcome r = process(*stub_, {.yaml = sample_pipeline("volume_boost"),
                                            .media = random_bytes(200 * 1024)});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << r.status.error_message();
  EXPECT_EQ(r.error_code, "corrupt_media") << r.status.error_message();
  ASSERT_TRUE(r.result);
  EXPECT_EQ(r.result->code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(r.result->error_code(), "corrupt_media");
  EXPECT_EQ(r.result->message(), r.status.error_message());
  bool failed_node = false;
  for (const auto& n : r.result->nodes()) {
    failed_node |= n.state() == v1::NodeReport::FAILED && !n.message().empty();
  }
  EXPECT_TRUE(failed_node) << "the node that failed says why";
}

TEST_F(Grpc, ProtocolErrorsAreInvalidArgument) {
  // Media before the config.
  ProcessOutcome r = process(*stub_, {.yaml = "", .media = std::string("abc"), .media_first = true});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(r.status.error_message().find("config"), std::string::npos) << r.status.error_message();
  // Media for a pipeline without streamkit::http_input.
  const std::string yaml =
      "mode: oneshot\nsteps:\n  - kind: core::file_reader\n    params:\n"
      "      path: samples/audio/speech.ogg\n  - kind: streamkit::http_output\n";
  r = process(*stub_, {.yaml = yaml, .media = std::string("abc")});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(r.status.error_message().find("http_input"), std::string::npos) << r.status.error_message();
  // Unparseable YAML in Process: the same as in ValidatePipeline.
  r = process(*stub_, {.yaml = "steps: [", .media = std::string("abc")});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(r.status.error_message().find("line"), std::string::npos) << r.status.error_message();
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens and roles (and the concurrency limit, set to 0 so that it always applies)

class GrpcAuth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<SkitServer>(grpc_config(
        std::string("auth:\n  tokens:\n") +
        "    - {name: ops, token: " + kOperatorToken + ", role: operator}\n" +
        "    - {name: look, token: " + kViewerToken + ", role: viewer}\n" +
        "limits:\n  max_concurrent_oneshots: 0\n"));
    ASSERT_TRUE(server_->up() && server_->grpc_port() > 0) << server_->log();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(), 0) << server_->log();
    server_.reset();
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(server_->up() && server_->grpc_port() > 0);
    channel_ = channel_of(*server_);
    stub_ = v1::Control::NewStub(channel_);
  }
  grpc::Status list(const std::string& token) {
    v1::ListNodeKindsResponse resp;
    auto ctx = context(token);
    return stub_->ListNodeKinds(ctx.get(), {}, &resp);
  }

  static std::unique_ptr<SkitServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Control::Stub> stub_;
};
std::unique_ptr<SkitServer> GrpcAuth::server_;

TEST_F(GrpcAuth, AMissingOrWrongTokenIsUnauthenticated) {
  grpc::Status s = list("");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("Bearer"), std::string::npos) << s.error_message();
  EXPECT_EQ(list("not-a-token-0123456789").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  {
    v1::ListNodeKindsResponse resp;
    auto ctx = context();
    ctx->AddMetadata("authorization", std::string("Basic ") + kOperatorToken);
    EXPECT_EQ(stub_->ListNodeKinds(ctx.get(), {}, &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  const ProcessOutcome r = process(*stub_, {.yaml = sample_pipeline("volume_boost"),
                                            .media = std::string("abc")});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  v1::ValidatePipelineRequest req;
  req.set_pipeline_yaml(sample_pipeline("volume_boost"));
  v1::ValidatePipelineResponse resp;
  auto ctx = context("wrong");
  EXPECT_EQ(stub_->ValidatePipeline(ctx.get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(GrpcAuth, AViewerMayListAndValidateButNotProcess) {
  EXPECT_TRUE(list(kViewerToken).ok());
  v1::ValidatePipelineRequest req;
  req.set_pipeline_yaml(sample_pipeline("volume_boost"));
  v1::ValidatePipelineResponse resp;
  auto ctx = context(kViewerToken);
  EXPECT_TRUE(stub_->ValidatePipeline(ctx.get(), req, &resp).ok());

  const ProcessOutcome r = process(*stub_, {.yaml = sample_pipeline("volume_boost"),
                                            .media = std::string("abc"), .token = kViewerToken});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(r.status.error_message().find("viewer"), std::string::npos) << r.status.error_message();
  EXPECT_FALSE(r.result);
}

TEST_F(GrpcAuth, AnOperatorPassesAuthAndMeetsTheConcurrencyLimit) {
  EXPECT_TRUE(list(kOperatorToken).ok());
  const std::string media = read_file((kRepo / "samples/audio/speech.ogg").string());
  const ProcessOutcome r = process(*stub_, {.yaml = sample_pipeline("volume_boost"),
                                            .media = media, .token = kOperatorToken});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << r.status.error_message();
  EXPECT_NE(r.status.error_message().find("limit 0"), std::string::npos) << r.status.error_message();
  EXPECT_EQ(r.error_code, "resource_exhausted");
  ASSERT_TRUE(r.result);
  EXPECT_EQ(r.result->code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(r.output, "");
}

TEST_F(GrpcAuth, HealthNeedsNoTokenReflectionNeedsOne) {
  auto stub = health::Health::NewStub(channel_);
  health::HealthCheckResponse resp;
  auto ctx = context();
  ASSERT_TRUE(stub->Check(ctx.get(), {}, &resp).ok());
  EXPECT_EQ(resp.status(), health::HealthCheckResponse::SERVING);
  // Reflection is behind the same tokens as the API (any role).
  {
    auto rstub = reflection::ServerReflection::NewStub(channel_);
    auto rctx = context();
    auto stream = rstub->ServerReflectionInfo(rctx.get());
    reflection::ServerReflectionRequest req;
    req.set_list_services("*");
    stream->Write(req);
    reflection::ServerReflectionResponse rresp;
    EXPECT_FALSE(stream->Read(&rresp));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(trailer(*rctx, "skit-error-code"), "unauthenticated");
  }
  ReflectionClient client(channel_, kViewerToken);
  EXPECT_TRUE(client.services().count("skit.v1.Control"));
}

// ---------------------------------------------------------------------------------------------
// Shutdown and limits on servers of their own

TEST(GrpcServe, SigtermCancelsARunningProcessAndExitsCleanly) {
  SkitServer server(grpc_config());
  ASSERT_TRUE(server.up() && server.grpc_port() > 0) << server.log();
  auto stub = v1::Control::NewStub(channel_of(server));
  auto ctx = context();
  auto stream = stub->Process(ctx.get());
  v1::ProcessRequest config;
  config.mutable_config()->set_pipeline_yaml(sample_pipeline("volume_boost"));
  ASSERT_TRUE(stream->Write(config));
  // Half of the media, then silence: the pipeline waits for the rest.
  const std::string media = read_file((kRepo / "samples/audio/speech.ogg").string());
  v1::ProcessRequest chunk;
  chunk.set_media(media.substr(0, media.size() / 2));
  ASSERT_TRUE(stream->Write(chunk));
  ASSERT_TRUE(wait_until([&] { return !skit_workers(server.pid()).empty(); }, 10s))
      << "the pipeline started";

  const pid_t pid = server.pid();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(), 0) << server.log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);
  v1::ProcessResponse resp;
  while (stream->Read(&resp)) {
  }
  const grpc::Status s = stream->Finish();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::CANCELLED ||
              s.error_code() == grpc::StatusCode::UNAVAILABLE)
      << s.error_code() << ": " << s.error_message();
  EXPECT_TRUE(shm_segments_of(pid).empty()) << "shared memory left behind";
  EXPECT_TRUE(wait_until([pid] { return skit_workers(pid).empty(); }, 5s));
}

TEST(GrpcServe, MediaOverMaxBodyBytesIsResourceExhausted) {
  SkitServer server(grpc_config("limits:\n  max_body_bytes: 8000\n"));
  ASSERT_TRUE(server.up() && server.grpc_port() > 0) << server.log();
  auto stub = v1::Control::NewStub(channel_of(server));
  const std::string media = read_file((kRepo / "samples/audio/speech.ogg").string());
  ASSERT_GT(media.size(), 8000U);
  const ProcessOutcome r = process(*stub, {.yaml = sample_pipeline("volume_boost"), .media = media,
                                           .chunk_size = 1024});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << r.status.error_message();
  EXPECT_NE(r.status.error_message().find("max_body_bytes"), std::string::npos)
      << r.status.error_message();
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(GrpcServe, ATakenGrpcPortIsAnError) {
  SkitServer first(grpc_config());
  ASSERT_TRUE(first.up() && first.grpc_port() > 0) << first.log();
  const std::string log = first.log();
  const std::string prefix = "skit serve: grpc listening on 127.0.0.1:";
  const auto at = log.find(prefix);
  ASSERT_NE(at, std::string::npos);
  const int port = std::atoi(log.c_str() + at + prefix.size());
  SkitServer second("server:\n  grpc_listen: 127.0.0.1:" + std::to_string(port) + "\n");
  EXPECT_FALSE(second.up());
  EXPECT_EQ(second.stop(), 2) << second.log();
  EXPECT_NE(second.log().find("cannot serve gRPC"), std::string::npos) << second.log();
}

TEST(GrpcServe, StopIsPromptWhileIdleClientsStayConnected) {
  // gRPC's own Shutdown waits for its whole deadline while a client keeps a connection open;
  // the server must not make every restart that slow.
  SkitServer server(grpc_config());
  ASSERT_TRUE(server.up() && server.grpc_port() > 0) << server.log();
  auto stub = v1::Control::NewStub(channel_of(server));
  v1::ListNodeKindsResponse resp;
  auto ctx = context();
  ASSERT_TRUE(stub->ListNodeKinds(ctx.get(), {}, &resp).ok());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(), 0) << server.log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "the idle connection held the shutdown";
}

}  // namespace
}  // namespace skit::testing
