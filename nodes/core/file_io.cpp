// SPDX-License-Identifier: MPL-2.0
// core::file_reader streams a file as Binary packets; core::file_writer writes Binary packets
// to a file. Both open their file in prepare(), before the worker sandbox engages.
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "skit/core/registry.hpp"

namespace skit::nodes {

namespace {
Status errno_status(ErrorCode code, const std::string& what, const std::string& path) {
  return Status(code, what + " '" + path + "': " + std::strerror(errno));
}
}  // namespace

struct FileReaderParams {
  std::string path;
  std::int64_t chunk_size = 8192;

  static void describe(ParamSchemaBuilder<FileReaderParams>& b) {
    b.field("path", &FileReaderParams::path, "Path of the file to read.")
        .required()
        .file_path(FileAccess::kRead);
    b.field("chunk_size", &FileReaderParams::chunk_size, "Bytes per packet.")
        .range(1, 16 * 1024 * 1024);
  }
};

class FileReaderNode final : public NodeWithParams<FileReaderParams> {
 public:
  static constexpr std::string_view kKind = "core::file_reader";
  static constexpr std::string_view kSummary = "Reads a file and emits it as Binary packets.";
  static constexpr std::string_view kCategory = "core";
  static std::vector<InputPinSpec> inputs() { return {}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::binary()}}; }
  static std::size_t max_packet_bytes(const Params& p) {
    return static_cast<std::size_t>(p.chunk_size);
  }

  using NodeWithParams::NodeWithParams;

  Status prepare(NodeContext& ctx) override {
    auto fd = ctx.open_file(params().path, FileAccess::kRead);
    if (!fd) {
      return fd.status();
    }
    fd_ = std::move(fd).value();
    return Status::ok();
  }

  Result<Produced> produce(NodeContext& ctx) override {
    auto& out = ctx.output(0);
    auto buffer = out.loan(static_cast<std::size_t>(params().chunk_size));
    if (!buffer) {
      return buffer.status();
    }
    ssize_t n = 0;
    do {
      n = ::read(fd_.get(), buffer->data(), buffer->size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      return errno_status(ErrorCode::kCorruptMedia, "cannot read", params().path);
    }
    if (n == 0) {
      return Produced::kDone;
    }
    SKIT_RETURN_IF_ERROR(out.publish(static_cast<std::size_t>(n),
                                     PacketHeader{.kind = PacketKind::kBinary}));
    return Produced::kMore;
  }

 private:
  UniqueFd fd_;
};
SKIT_REGISTER_NODE(FileReaderNode);

struct FileWriterParams {
  std::string path;
  std::int64_t chunk_size = 8192;

  static void describe(ParamSchemaBuilder<FileWriterParams>& b) {
    b.field("path", &FileWriterParams::path, "Path of the file to write (created or truncated).")
        .required()
        .file_path(FileAccess::kWrite);
    b.field("chunk_size", &FileWriterParams::chunk_size,
            "Write buffer size in bytes; smaller packets are coalesced.")
        .range(1, 16 * 1024 * 1024);
  }
};

class FileWriterNode final : public NodeWithParams<FileWriterParams> {
 public:
  static constexpr std::string_view kKind = "core::file_writer";
  static constexpr std::string_view kSummary = "Writes incoming Binary packets to a file.";
  static constexpr std::string_view kCategory = "core";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::binary()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {}; }

  using NodeWithParams::NodeWithParams;

  Status prepare(NodeContext& ctx) override {
    auto fd = ctx.open_file(params().path, FileAccess::kWrite);
    if (!fd) {
      return fd.status();
    }
    fd_ = std::move(fd).value();
    buffer_.reserve(static_cast<std::size_t>(params().chunk_size));
    return Status::ok();
  }

  Status process(NodeContext& /*ctx*/, const PacketView& packet) override {
    if (buffer_.size() + packet.data.size() > buffer_.capacity()) {
      SKIT_RETURN_IF_ERROR(flush());
    }
    if (packet.data.size() >= buffer_.capacity()) {
      return write_all(packet.data);
    }
    buffer_.insert(buffer_.end(), packet.data.begin(), packet.data.end());
    return Status::ok();
  }

  Status finish(NodeContext& /*ctx*/) override {
    SKIT_RETURN_IF_ERROR(flush());
    fd_.reset();
    return Status::ok();
  }

 private:
  Status flush() {
    Status s = write_all(buffer_);
    buffer_.clear();
    return s;
  }

  Status write_all(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_.get(), bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return errno_status(ErrorCode::kInternal, "cannot write", params().path);
      }
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return Status::ok();
  }

  UniqueFd fd_;
  std::vector<std::byte> buffer_;
};
SKIT_REGISTER_NODE(FileWriterNode);

}  // namespace skit::nodes
