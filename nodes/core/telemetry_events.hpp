// SPDX-License-Identifier: MPL-2.0
// What core::telemetry_out and core::telemetry_tap share: their common params, how a packet
// becomes a telemetry event, the event type filter and the per-type rate limit with its drop
// count.
//
// Packet -> event (data always carries "event_type"):
//   Custom        {"type_id", "data": {...}}: the data object; event_type = data.event_type
//                 if it is a string, else the packet's type_id (else "custom")
//   Transcription {"text", "segments", ...}: the object; event_type "transcription" (or its
//                 own event_type)
//   Text          {"event_type": "text", "text"}
//   Binary        {"event_type": "binary", "bytes"}
#pragma once

#include <chrono>
#include <cstdint>
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "skit/core/registry.hpp"

namespace skit::nodes::telemetry {

using Clock = std::chrono::steady_clock;

inline const std::vector<std::string>& packet_type_choices() {
  static const std::vector<std::string> kChoices = {"Text", "Transcription", "Custom", "Binary"};
  return kChoices;
}

/// The params both nodes take; P has members packet_types, max_events_per_sec and
/// event_type_filter.
template <typename P>
void describe_common(ParamSchemaBuilder<P>& b) {
  b.field("packet_types", &P::packet_types,
          "Packet kinds turned into events: Text, Transcription, Custom, Binary.")
      .choices(packet_type_choices())
      .tunable();
  b.field("max_events_per_sec", &P::max_events_per_sec,
          "Most events per second of each event type; the rest are dropped and counted (a "
          "telemetry.dropped event once a second says how many). 0 = no limit of the node's "
          "own (the runtime still caps every node at 200/s).")
      .range(0, 100000)
      .tunable();
  b.field("event_type_filter", &P::event_type_filter,
          "Event types let through; empty = all. An entry ending in '*' matches a prefix "
          "('vad.*' matches vad.speech_start), others match exactly.")
      .tunable();
}

inline bool type_matches(const std::vector<std::string>& filter, std::string_view type) {
  if (filter.empty()) {
    return true;
  }
  for (const auto& pattern : filter) {
    if (!pattern.empty() && pattern.back() == '*') {
      if (type.starts_with(std::string_view(pattern).substr(0, pattern.size() - 1))) {
        return true;
      }
    } else if (pattern == type) {
      return true;
    }
  }
  return false;
}

inline std::int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Event {
  std::string type;
  Json data;
};

/// The event a packet stands for, or nothing when its kind is not in `packet_types` (or a
/// Custom/Transcription payload is not JSON: counted by the caller as unreadable).
inline std::optional<Event> event_of(const PacketView& packet,
                                     const std::vector<std::string>& packet_types,
                                     bool& unreadable) {
  unreadable = false;
  const PacketKind kind = packet.header.kind;
  const std::string_view name = packet_kind_name(kind);
  if (std::find(packet_types.begin(), packet_types.end(), name) == packet_types.end()) {
    return std::nullopt;
  }
  const std::string_view payload(reinterpret_cast<const char*>(packet.data.data()),
                                 packet.data.size());
  Event e;
  switch (kind) {
    case PacketKind::kText:
      e.type = "text";
      e.data = Json{{"text", std::string(payload)}};
      return e;
    case PacketKind::kBinary:
      e.type = "binary";
      e.data = Json{{"bytes", packet.data.size()}};
      return e;
    case PacketKind::kTranscription:
    case PacketKind::kCustom: {
      Json doc = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded() || !doc.is_object()) {
        unreadable = true;
        return std::nullopt;
      }
      if (kind == PacketKind::kTranscription) {
        e.data = std::move(doc);
        e.type = "transcription";
      } else {
        const std::string type_id = doc.value("type_id", "");
        Json data = doc.contains("data") ? doc["data"] : Json();
        if (data.is_object()) {
          e.data = std::move(data);
        } else {
          e.data = Json::object();
          if (!data.is_null()) {
            e.data["value"] = std::move(data);
          }
        }
        e.type = type_id.empty() ? "custom" : type_id;
      }
      if (auto it = e.data.find("event_type"); it != e.data.end() && it->is_string() &&
                                               !it->get<std::string>().empty()) {
        e.type = it->get<std::string>();
      }
      return e;
    }
    default:
      return std::nullopt;
  }
}

/// Filters and rate-limits a node's events per type and reports what it dropped.
class Emitter {
 public:
  /// Emits `e` unless the filter excludes it or its type is over `max_per_sec`.
  void offer(NodeContext& ctx, Event e, const std::vector<std::string>& filter,
             double max_per_sec) {
    if (!type_matches(filter, e.type)) {
      return;
    }
    const auto now = Clock::now();
    // Types are data (a Custom's type_id): past kMaxTypes, the rest share one bucket.
    auto it = buckets_.find(e.type);
    if (it == buckets_.end()) {
      it = buckets_.emplace(buckets_.size() < kMaxTypes ? e.type : "(other)", Bucket{}).first;
    }
    Bucket& b = it->second;
    if (max_per_sec > 0) {
      if (b.tokens < 0) {
        b.tokens = max_per_sec;  // a full second's worth to begin with
      } else {
        const double elapsed = std::chrono::duration<double>(now - b.refilled).count();
        b.tokens = std::min(max_per_sec, b.tokens + elapsed * max_per_sec);
      }
      b.refilled = now;
      if (b.tokens < 1.0) {
        ++b.dropped_unreported;
        ++b.dropped_total;
        report_drops(ctx, now, /*final=*/false);
        return;
      }
      b.tokens -= 1.0;
    }
    if (!ctx.emit_telemetry(e.type, e.data, wall_clock_us()).is_ok()) {
      ++runtime_dropped_;
    }
    report_drops(ctx, now, /*final=*/false);
  }

  /// Once a second at most (and at the end): a telemetry.dropped event listing the events
  /// dropped per type since the last one.
  void report_drops(NodeContext& ctx, Clock::time_point now, bool final) {
    if (!final && now - last_report_ < std::chrono::seconds(1)) {
      return;
    }
    Json dropped = Json::object();
    std::uint64_t total = 0;
    std::uint64_t since = 0;
    for (auto& [type, b] : buckets_) {
      if (b.dropped_unreported > 0) {
        dropped[type] = b.dropped_unreported;
        since += b.dropped_unreported;
        b.dropped_unreported = 0;
      }
      total += b.dropped_total;
    }
    if (since == 0) {
      return;
    }
    last_report_ = now;
    ctx.log().debug("telemetry: {} events dropped over max_events_per_sec", since);
    (void)ctx.emit_telemetry("telemetry.dropped",
                             Json{{"dropped", std::move(dropped)},
                                  {"dropped_since_last", since},
                                  {"dropped_total", total}},
                             wall_clock_us());
  }

  [[nodiscard]] std::uint64_t runtime_dropped() const { return runtime_dropped_; }

 private:
  static constexpr std::size_t kMaxTypes = 256;
  struct Bucket {
    double tokens = -1;  // < 0: not used yet
    Clock::time_point refilled{};
    std::uint64_t dropped_unreported = 0;
    std::uint64_t dropped_total = 0;
  };
  std::map<std::string, Bucket, std::less<>> buckets_;
  Clock::time_point last_report_{};
  std::uint64_t runtime_dropped_ = 0;
};

}  // namespace skit::nodes::telemetry
