// SPDX-License-Identifier: MPL-2.0
#include "skit/core/stream_info.hpp"

#include <cstring>

namespace skit {

namespace {
constexpr std::uint32_t kMagic = 0x49534B53;  // "SKSI"
constexpr std::uint32_t kVersion = 1;

class Writer {
 public:
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out_.insert(out_.end(), p, p + sizeof v);
  }
  void put_bytes(std::span<const std::byte> bytes) {
    put(static_cast<std::uint32_t>(bytes.size()));
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }
  void put_string(const std::string& s) {
    put_bytes({reinterpret_cast<const std::byte*>(s.data()), s.size()});
  }
  std::vector<std::byte> take() { return std::move(out_); }

 private:
  std::vector<std::byte> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  template <typename T>
  bool get(T& v) {
    if (in_.size() < sizeof v) {
      return false;
    }
    std::memcpy(&v, in_.data(), sizeof v);
    in_ = in_.subspan(sizeof v);
    return true;
  }
  bool get_bytes(std::vector<std::byte>& out) {
    std::uint32_t n = 0;
    if (!get(n) || in_.size() < n) {
      return false;
    }
    out.assign(in_.begin(), in_.begin() + n);
    in_ = in_.subspan(n);
    return true;
  }
  bool get_string(std::string& s) {
    std::vector<std::byte> bytes;
    if (!get_bytes(bytes)) {
      return false;
    }
    s.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return true;
  }

 private:
  std::span<const std::byte> in_;
};
}  // namespace

std::vector<std::byte> StreamInfo::serialize() const {
  Writer w;
  w.put(kMagic);
  w.put(kVersion);
  w.put(sample_rate);
  w.put(channels);
  w.put(frame_size);
  w.put(initial_padding);
  w.put(bit_rate);
  w.put(duration_us);
  w.put_string(codec);
  w.put_string(content_type);
  w.put_bytes(extradata);
  return w.take();
}

Result<StreamInfo> StreamInfo::parse(std::span<const std::byte> bytes) {
  Reader r(bytes);
  std::uint32_t magic = 0;
  std::uint32_t version = 0;
  StreamInfo info;
  if (!r.get(magic) || magic != kMagic || !r.get(version) || version != kVersion ||
      !r.get(info.sample_rate) || !r.get(info.channels) || !r.get(info.frame_size) ||
      !r.get(info.initial_padding) || !r.get(info.bit_rate) || !r.get(info.duration_us) ||
      !r.get_string(info.codec) || !r.get_string(info.content_type) ||
      !r.get_bytes(info.extradata)) {
    return Status(ErrorCode::kCorruptMedia, "malformed stream info packet");
  }
  return info;
}

}  // namespace skit
