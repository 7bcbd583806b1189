// SPDX-License-Identifier: MPL-2.0
#include "grpc_reflection.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/support/server_callback.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>
#include <set>

#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace skit::gateway {

extern const unsigned char kDescriptorSet[];
extern const std::size_t kDescriptorSetSize;

namespace {

namespace pb = google::protobuf;

/// The embedded descriptors (with comments), indexed by file name and by symbol.
class DescriptorIndex {
 public:
  static const DescriptorIndex& get() {
    static const DescriptorIndex index;
    return index;
  }

  /// The file and every file it imports, each once, dependencies first.
  [[nodiscard]] std::vector<std::string> with_dependencies(const pb::FileDescriptor* file) const {
    std::vector<std::string> out;
    std::set<std::string> seen;
    add(file, seen, out);
    return out;
  }
  [[nodiscard]] const pb::FileDescriptor* file(const std::string& name) const {
    return pool_.FindFileByName(name);
  }
  [[nodiscard]] const pb::FileDescriptor* file_of_symbol(const std::string& symbol) const {
    if (const auto* f = pool_.FindFileContainingSymbol(symbol)) {
      return f;
    }
    // A method: "skit.v1.Control.Process" is found as a symbol; "skit.v1.Control/Process" too.
    std::string dotted = symbol;
    std::replace(dotted.begin(), dotted.end(), '/', '.');
    return pool_.FindFileContainingSymbol(dotted);
  }
  [[nodiscard]] const pb::DescriptorPool& pool() const { return pool_; }

 private:
  DescriptorIndex() {
    pb::FileDescriptorSet set;
    if (!set.ParseFromArray(kDescriptorSet, static_cast<int>(kDescriptorSetSize))) {
      spdlog::error("grpc reflection: the embedded descriptor set does not parse");
      return;
    }
    for (const auto& f : set.file()) {
      serialized_[f.name()] = f.SerializeAsString();
      if (pool_.BuildFile(f) == nullptr) {
        spdlog::error("grpc reflection: cannot describe {}", f.name());
      }
    }
  }
  void add(const pb::FileDescriptor* file, std::set<std::string>& seen,
           std::vector<std::string>& out) const {
    if (file == nullptr || !seen.insert(file->name()).second) {
      return;
    }
    out.push_back(serialized_.at(file->name()));
    for (int i = 0; i < file->dependency_count(); ++i) {
      add(file->dependency(i), seen, out);
    }
  }

  pb::DescriptorPool pool_;
  std::map<std::string, std::string> serialized_;
};

/// One ServerReflectionInfo stream: each request read gets its answer written, in order.
template <typename Api>
class ReflectionStream final
    : public grpc::ServerBidiReactor<typename Api::ServerReflectionRequest,
                                     typename Api::ServerReflectionResponse> {
  using Request = typename Api::ServerReflectionRequest;
  using Response = typename Api::ServerReflectionResponse;

 public:
  ReflectionStream(const ReflectionContext& context, grpc::CallbackServerContext* ctx)
      : context_(context), ctx_(ctx) {
    Caller caller;
    if (grpc::Status s = context_.auth.authenticate(*ctx, &caller);
        !s.ok()) {
      finished_ = true;
      this->Finish(s);
      return;
    }
    std::string refusal;
    ticket_ = context_.limiter.acquire(ctx->peer(), caller.token_name, &refusal);
    if (!ticket_) {
      finished_ = true;
      this->Finish(rpc_error(*ctx, grpc::StatusCode::RESOURCE_EXHAUSTED, "resource_exhausted",
                             refusal));
      return;
    }
    if (!context_.calls.add(this, [this] { stop(); }, CallRegistry::Clock::time_point::max())) {
      ticket_.reset();
      finished_ = true;
      this->Finish(rpc_error(*ctx, grpc::StatusCode::UNAVAILABLE, "unavailable",
                             "the server is shutting down"));
      return;
    }
    registered_ = true;
    reading_ = true;
    this->StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    std::lock_guard lock(mutex_);
    reading_ = false;
    if (!ok) {
      half_closed_ = true;  // the client is done asking (or gone)
      maybe_finish_locked();
      return;
    }
    pending_.push_back(answer(request_));
    pump_locked();
    if (!finished_ && !stopping_) {
      reading_ = true;
      this->StartRead(&request_);
    }
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    writing_ = false;
    if (!ok) {
      stopping_ = true;
    }
    pump_locked();
  }
  void OnCancel() override { stop(); }
  void OnDone() override {
    if (registered_) {
      context_.calls.remove(this);
    }
    delete this;
  }

 private:
  void stop() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    maybe_finish_locked();
  }
  void pump_locked() {
    if (!writing_ && !pending_.empty() && !stopping_ && !finished_) {
      out_ = std::move(pending_.front());
      pending_.pop_front();
      writing_ = true;
      this->StartWrite(&out_);
      return;
    }
    maybe_finish_locked();
  }
  void maybe_finish_locked() {
    if (finished_ || writing_) {
      return;
    }
    if (stopping_) {
      finished_ = true;
      this->Finish(rpc_error(*ctx_, grpc::StatusCode::CANCELLED, "cancelled",
                             "the stream was cancelled"));
    } else if (half_closed_ && pending_.empty()) {
      finished_ = true;
      this->Finish(grpc::Status::OK);
    }
  }

  Response answer(const Request& req) const {
    const auto& index = DescriptorIndex::get();
    Response resp;
    resp.set_valid_host(req.host());
    *resp.mutable_original_request() = req;
    auto files = [&](const pb::FileDescriptor* f, const std::string& what) {
      if (f == nullptr) {
        auto* e = resp.mutable_error_response();
        e->set_error_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
        e->set_error_message(what + " not found");
        return;
      }
      auto* out = resp.mutable_file_descriptor_response();
      for (auto& bytes : index.with_dependencies(f)) {
        out->add_file_descriptor_proto(std::move(bytes));
      }
    };
    switch (req.message_request_case()) {
      case Request::kFileByFilename:
        files(index.file(req.file_by_filename()), "file '" + req.file_by_filename() + "'");
        break;
      case Request::kFileContainingSymbol:
        files(index.file_of_symbol(req.file_containing_symbol()),
              "symbol '" + req.file_containing_symbol() + "'");
        break;
      case Request::kFileContainingExtension: {
        const auto& ext = req.file_containing_extension();
        const auto* type = index.pool().FindMessageTypeByName(ext.containing_type());
        const auto* field = type != nullptr ? index.pool().FindExtensionByNumber(
                                                  type, ext.extension_number())
                                            : nullptr;
        files(field != nullptr ? field->file() : nullptr,
              "extension " + std::to_string(ext.extension_number()) + " of '" +
                  ext.containing_type() + "'");
        break;
      }
      case Request::kAllExtensionNumbersOfType: {
        const auto* type = index.pool().FindMessageTypeByName(req.all_extension_numbers_of_type());
        if (type == nullptr) {
          auto* e = resp.mutable_error_response();
          e->set_error_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
          e->set_error_message("type '" + req.all_extension_numbers_of_type() + "' not found");
          break;
        }
        auto* out = resp.mutable_all_extension_numbers_response();
        out->set_base_type_name(type->full_name());
        std::vector<const pb::FieldDescriptor*> extensions;
        index.pool().FindAllExtensions(type, &extensions);
        for (const auto* x : extensions) {
          out->add_extension_number(x->number());
        }
        break;
      }
      case Request::kListServices:
        for (const auto& name : context_.services) {
          resp.mutable_list_services_response()->add_service()->set_name(name);
        }
        break;
      default: {
        auto* e = resp.mutable_error_response();
        e->set_error_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
        e->set_error_message("the request asks nothing (message_request is not set)");
      }
    }
    return resp;
  }

  const ReflectionContext& context_;
  grpc::CallbackServerContext* ctx_;
  std::unique_ptr<StreamLimiter::Ticket> ticket_;
  bool registered_ = false;
  std::mutex mutex_;
  Request request_;
  Response out_;
  std::deque<Response> pending_;
  bool reading_ = false;
  bool writing_ = false;
  bool half_closed_ = false;
  bool stopping_ = false;
  bool finished_ = false;
};

struct V1 {
  using ServerReflectionRequest = grpc::reflection::v1::ServerReflectionRequest;
  using ServerReflectionResponse = grpc::reflection::v1::ServerReflectionResponse;
  using Service = grpc::reflection::v1::ServerReflection::CallbackService;
};
struct V1Alpha {
  using ServerReflectionRequest = grpc::reflection::v1alpha::ServerReflectionRequest;
  using ServerReflectionResponse = grpc::reflection::v1alpha::ServerReflectionResponse;
  using Service = grpc::reflection::v1alpha::ServerReflection::CallbackService;
};

template <typename Api>
class ReflectionService final : public Api::Service {
 public:
  explicit ReflectionService(const ReflectionContext& context) : context_(context) {}
  grpc::ServerBidiReactor<typename Api::ServerReflectionRequest,
                          typename Api::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* ctx) override {
    return new ReflectionStream<Api>(context_, ctx);
  }

 private:
  const ReflectionContext& context_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::Service>> make_reflection_services(
    const ReflectionContext& context) {
  (void)DescriptorIndex::get();  // parse once, at start
  std::vector<std::unique_ptr<grpc::Service>> out;
  out.push_back(std::make_unique<ReflectionService<V1>>(context));
  out.push_back(std::make_unique<ReflectionService<V1Alpha>>(context));
  return out;
}

}  // namespace skit::gateway
