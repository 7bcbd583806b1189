// SPDX-License-Identifier: MPL-2.0
// Shared-memory layouts of slot pools and descriptor rings. Every struct here is mapped by
// several processes: standard layout, fixed-size fields, no pointers (offsets and indices only).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace skit::ipc {

inline constexpr std::uint32_t kLayoutVersion = 1;
inline constexpr std::uint32_t kPoolMagic = 0x4C504B53;  // "SKPL"
inline constexpr std::uint32_t kRingMagic = 0x47524B53;  // "SKRG"
inline constexpr std::size_t kEndpointBytes = 112;       // fits a ZeroMQ ipc:// abstract path
inline constexpr std::uint32_t kNoSlot = 0xFFFFFFFFU;
inline constexpr std::size_t kCacheLine = 64;

/// Control bits of a descriptor (separate from the packet's own flags).
enum DescriptorControl : std::uint8_t {
  kControlNone = 0,
  kControlEndOfStream = 1U << 0,  // no payload; the producer has finished
  kControlError = 1U << 1,        // with end of stream: the producer failed
  // No payload: the producer has left this connection (live rewiring). The consumer moves on
  // to the pin's next connection instead of ending its input.
  kControlDetach = 1U << 2,
};

/// What crosses a ring: where the payload is and how to read it. Never a pointer.
struct SlotDescriptor {
  std::uint32_t pool = 0;    // index of the slot pool in the pipeline's pool table
  std::uint32_t slot = kNoSlot;
  std::uint32_t offset = 0;  // byte offset of the payload inside the slot
  std::uint32_t size = 0;    // payload bytes
  std::uint64_t sequence = 0;
  std::int64_t pts_us = -1;
  std::int64_t duration_us = 0;
  std::uint32_t flags = 0;        // PacketFlags
  std::uint32_t sample_rate = 0;  // RawAudio
  std::uint16_t channels = 0;     // RawAudio
  std::uint8_t kind = 0;          // PacketKind
  std::uint8_t control = kControlNone;
  std::uint32_t reserved0 = 0;
  std::uint32_t trim_start = 0;  // EncodedAudio: samples to discard (see PacketHeader)
  std::uint32_t trim_end = 0;
};
static_assert(std::is_standard_layout_v<SlotDescriptor> &&
              std::is_trivially_copyable_v<SlotDescriptor>);
static_assert(sizeof(SlotDescriptor) == 64, "one descriptor per cache line");

/// Per-slot reference count: the number of consumers that still read the payload.
struct SlotState {
  std::atomic<std::uint32_t> refcount;
  std::uint32_t reserved;
};
static_assert(std::is_standard_layout_v<SlotState> && sizeof(SlotState) == 8);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

/// Head of a pool segment: [PoolHeader][SlotState x slot_count][payload slots, 64-B aligned].
struct PoolHeader {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t slot_count;
  std::uint32_t slot_size;
  std::uint64_t states_offset;
  std::uint64_t data_offset;
  std::uint64_t total_bytes;
  char owner_doorbell[kEndpointBytes];  // woken when a slot frees and the owner waits
  alignas(kCacheLine) std::atomic<std::uint32_t> owner_waiting;
  std::uint32_t reserved0;
  std::atomic<std::uint64_t> exhausted_waits;  // times the owner found no free slot
};
static_assert(std::is_standard_layout_v<PoolHeader>);
static_assert(offsetof(PoolHeader, owner_doorbell) == 40);
static_assert(offsetof(PoolHeader, owner_waiting) == 192);
static_assert(sizeof(PoolHeader) == 256);

/// Head of a ring segment: [RingHeader][SlotDescriptor x capacity]. Single producer; the
/// consumer advances `tail`, and so may the producer when it drops the oldest (best effort).
struct RingHeader {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t capacity;  // power of two
  std::uint32_t mode;      // ConnectionMode
  char producer_doorbell[kEndpointBytes];
  char consumer_doorbell[kEndpointBytes];
  alignas(kCacheLine) std::atomic<std::uint64_t> head;  // next index the producer writes
  alignas(kCacheLine) std::atomic<std::uint64_t> tail;  // next index to read
  alignas(kCacheLine) std::atomic<std::uint32_t> consumer_waiting;
  std::atomic<std::uint32_t> producer_waiting;
  std::atomic<std::uint64_t> dropped;  // best effort: packets dropped because the ring was full
};
static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(offsetof(RingHeader, producer_doorbell) == 16);
static_assert(offsetof(RingHeader, head) == 256);
static_assert(offsetof(RingHeader, tail) == 320);
static_assert(offsetof(RingHeader, consumer_waiting) == 384);
static_assert(sizeof(RingHeader) == 448);

/// After a ring's descriptors: the last stream format its producer announced ("sticky", like
/// GStreamer's sticky caps event), so that a consumer restarted mid-stream still learns it.
/// Single writer (the producer), seqlock: odd `seq` while it is being written.
inline constexpr std::size_t kStickyBytes = 16 * 1024;
struct StickyHeader {
  std::atomic<std::uint32_t> seq;
  std::uint32_t size;  // 0: none yet
  std::uint32_t kind;  // PacketKind of the stream
  std::uint32_t reserved;
};
static_assert(std::is_standard_layout_v<StickyHeader> && sizeof(StickyHeader) == 16);

}  // namespace skit::ipc
