// SPDX-License-Identifier: MPL-2.0
#include "skit/core/registry.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace skit {

Status OutputWriter::write(std::span<const std::byte> bytes, const PacketHeader& header) {
  auto buffer = loan(bytes.size());
  if (!buffer) {
    return buffer.status();
  }
  if (!bytes.empty()) {
    std::memcpy(buffer->data(), bytes.data(), bytes.size());
  }
  return publish(bytes.size(), header);
}

Status OutputWriter::write_stream_info(const StreamInfo& info, PacketKind kind) {
  const auto bytes = info.serialize();
  return write(bytes, PacketHeader{.kind = kind, .flags = kFlagStreamInfo});
}

Status Node::tune(const Json& /*patch*/) {
  return Status(ErrorCode::kInvalidParam, "this node has no tunable params");
}

NodeRegistry& NodeRegistry::builtin() {
  static NodeRegistry registry;  // function-local: safe from static-init order
  return registry;
}

NodeRegistry::NodeRegistry(const NodeRegistry& other) {
  std::shared_lock lock(other.mutex_);
  kinds_ = other.kinds_;
}

bool NodeRegistry::add(NodeDescriptor descriptor) {
  std::string kind = descriptor.kind;
  std::unique_lock lock(mutex_);
  return kinds_.emplace(std::move(kind), std::make_shared<const NodeDescriptor>(std::move(descriptor)))
      .second;
}

void NodeRegistry::put(NodeDescriptor descriptor) {
  std::string kind = descriptor.kind;
  auto next = std::make_shared<const NodeDescriptor>(std::move(descriptor));
  std::unique_lock lock(mutex_);
  auto [it, inserted] = kinds_.try_emplace(std::move(kind), next);
  if (!inserted) {
    retired_.push_back(std::exchange(it->second, next));
  }
}

bool NodeRegistry::remove(std::string_view kind) {
  std::unique_lock lock(mutex_);
  auto it = kinds_.find(kind);
  if (it == kinds_.end()) {
    return false;
  }
  retired_.push_back(std::move(it->second));
  kinds_.erase(it);
  return true;
}

const NodeDescriptor* NodeRegistry::find(std::string_view kind) const {
  std::shared_lock lock(mutex_);
  auto it = kinds_.find(kind);
  return it == kinds_.end() ? nullptr : it->second.get();
}

std::vector<const NodeDescriptor*> NodeRegistry::all() const {
  std::shared_lock lock(mutex_);
  std::vector<const NodeDescriptor*> out;
  out.reserve(kinds_.size());
  for (const auto& [kind, d] : kinds_) {
    out.push_back(d.get());
  }
  return out;
}

namespace {
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string NodeRegistry::closest_kind(std::string_view kind) const {
  if (kind.empty()) {
    return {};
  }
  std::shared_lock lock(mutex_);
  // A kind missing its namespace ("opus::decoder") is a suffix of the one meant.
  for (const auto& [name, d] : kinds_) {
    if (name.size() > kind.size() && name.compare(name.size() - kind.size(), kind.size(), kind) == 0 &&
        name[name.size() - kind.size() - 1] == ':') {
      return name;
    }
  }
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, kind.size() / 4) + 1;
  for (const auto& [name, d] : kinds_) {
    const std::size_t distance = edit_distance(kind, name);
    if (distance < best_distance) {
      best_distance = distance;
      best = name;
    }
  }
  if (!best.empty()) {
    return best;
  }
  // The same last segment in another namespace ("transport::sink" -> "core::sink").
  const std::size_t colon = kind.rfind(':');
  const std::string_view tail = colon == std::string_view::npos ? kind : kind.substr(colon + 1);
  for (const auto& [name, d] : kinds_) {
    if (!tail.empty() && name.size() > tail.size() + 1 &&
        name.compare(name.size() - tail.size(), tail.size(), tail) == 0 &&
        name[name.size() - tail.size() - 1] == ':') {
      return name;
    }
  }
  return {};
}

namespace {
std::string_view cardinality_name(Cardinality c) {
  switch (c) {
    case Cardinality::kOne: return "One";
    case Cardinality::kBroadcast: return "Broadcast";
    case Cardinality::kDynamic: return "Dynamic";
  }
  return "?";
}
}  // namespace

Json NodeDescriptor::to_json() const {
  Json in = Json::array();
  for (const auto& p : inputs) {
    Json types = Json::array();
    for (const auto& t : p.accepts) {
      types.push_back(skit::to_json(t));
    }
    Json card = p.cardinality == Cardinality::kDynamic
                    ? Json{{"Dynamic", {{"prefix", p.name}}}}
                    : Json(cardinality_name(p.cardinality));
    in.push_back({{"name", p.name}, {"accepts_types", types}, {"cardinality", card}});
  }
  Json out = Json::array();
  for (const auto& p : outputs) {
    out.push_back({{"name", p.name},
                   {"produces_type", skit::to_json(p.produces)},
                   {"cardinality", cardinality_name(p.cardinality)}});
  }
  Json j{{"kind", kind},
              {"description", summary},
              {"param_schema", params ? params->json_schema() : Json::object()},
              {"inputs", in},
              {"outputs", out},
              {"categories", categories.empty() ? Json::array({category}) : Json(categories)},
              {"bidirectional", false}};
  if (!http_endpoint.empty()) {
    j["http_endpoint"] = http_endpoint;  // ours: the Stream view finds WHIP/WHEP nodes by it
  }
  return j;
}

}  // namespace skit
