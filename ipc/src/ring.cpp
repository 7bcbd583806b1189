// SPDX-License-Identifier: MPL-2.0
#include "skit/ipc/ring.hpp"

#include "skit/ipc/doorbell.hpp"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <cstring>
#include <new>

namespace skit::ipc {

namespace {
void copy_endpoint(char (&dst)[kEndpointBytes], std::string_view src) {
  std::memset(dst, 0, kEndpointBytes);
  std::memcpy(dst, src.data(), std::min(src.size(), kEndpointBytes - 1));
}
std::string_view endpoint_of(const char (&src)[kEndpointBytes]) {
  return {src, ::strnlen(src, kEndpointBytes)};
}

// Shared words are read and written with relaxed atomics: a peer writing at the same time is
// a torn value, never undefined behaviour. Ordering comes from the head/tail/seq atomics.
constexpr std::size_t kWord = sizeof(std::uint64_t);
static_assert(sizeof(SlotDescriptor) % kWord == 0 && alignof(SlotDescriptor) >= alignof(std::uint64_t));

void copy_words_out(std::uint64_t* shared, std::size_t words, std::uint64_t* local) {
  for (std::size_t i = 0; i < words; ++i) {
    local[i] = std::atomic_ref<std::uint64_t>(shared[i]).load(std::memory_order_relaxed);
  }
}
void copy_words_in(std::uint64_t* shared, std::size_t words, const std::uint64_t* local) {
  for (std::size_t i = 0; i < words; ++i) {
    std::atomic_ref<std::uint64_t>(shared[i]).store(local[i], std::memory_order_relaxed);
  }
}
}  // namespace

SlotDescriptor Ring::load(SlotDescriptor& entry) {
  std::uint64_t words[sizeof(SlotDescriptor) / kWord];
  copy_words_out(reinterpret_cast<std::uint64_t*>(&entry), std::size(words), words);
  SlotDescriptor d;
  std::memcpy(&d, words, sizeof d);
  return d;
}

void Ring::store(SlotDescriptor& entry, const SlotDescriptor& d) {
  std::uint64_t words[sizeof(SlotDescriptor) / kWord];
  std::memcpy(words, &d, sizeof d);
  copy_words_in(reinterpret_cast<std::uint64_t*>(&entry), std::size(words), words);
}

std::size_t Ring::bytes_for(std::uint32_t capacity) {
  return sizeof(RingHeader) + static_cast<std::size_t>(capacity) * sizeof(SlotDescriptor) +
         sizeof(StickyHeader) + kStickyBytes;
}

Ring Ring::init(void* memory, std::size_t bytes, std::uint32_t capacity, ConnectionMode mode,
                std::string_view producer_doorbell, std::string_view consumer_doorbell) {
  auto* header = new (memory) RingHeader{};
  header->magic = kRingMagic;
  header->version = kLayoutVersion;
  header->capacity = capacity;
  header->mode = static_cast<std::uint32_t>(mode);
  copy_endpoint(header->producer_doorbell, producer_doorbell);
  copy_endpoint(header->consumer_doorbell, consumer_doorbell);
  header->head.store(0);
  header->tail.store(0);
  header->consumer_waiting.store(0);
  header->producer_waiting.store(0);
  header->dropped.store(0);
  auto* sticky = new (static_cast<std::byte*>(memory) + sizeof(RingHeader) +
                      static_cast<std::size_t>(capacity) * sizeof(SlotDescriptor)) StickyHeader{};
  sticky->seq.store(0);
  sticky->size = 0;
  std::atomic_thread_fence(std::memory_order_release);
  return *attach(memory, bytes);
}

Result<Ring> Ring::attach(void* memory, std::size_t bytes) {
  auto* header = static_cast<RingHeader*>(memory);
  if (bytes < sizeof(RingHeader) || header->magic != kRingMagic) {
    return Status(ErrorCode::kInternal, "not a skit ring");
  }
  if (header->version != kLayoutVersion) {
    return Status(ErrorCode::kInternal, "ring layout version mismatch");
  }
  const std::uint32_t cap = header->capacity;
  if (cap == 0 || (cap & (cap - 1)) != 0 || bytes_for(cap) > bytes) {
    return Status(ErrorCode::kInternal, "ring segment is malformed");
  }
  const std::uint32_t mode = header->mode;
  if (mode > static_cast<std::uint32_t>(ConnectionMode::kBestEffort)) {
    return Status(ErrorCode::kInternal, "ring segment has an unknown mode");
  }
  Ring ring;
  ring.producer_doorbell_ = std::string(endpoint_of(header->producer_doorbell));
  ring.consumer_doorbell_ = std::string(endpoint_of(header->consumer_doorbell));
  if (!valid_doorbell_endpoint(ring.producer_doorbell_) || !valid_doorbell_endpoint(ring.consumer_doorbell_)) {
    return Status(ErrorCode::kInternal, "ring segment has a malformed doorbell endpoint");
  }
  ring.header_ = header;
  ring.capacity_ = cap;
  ring.head_ = header->head.load(std::memory_order_acquire);
  ring.mode_ = static_cast<ConnectionMode>(mode);
  ring.entries_ = reinterpret_cast<SlotDescriptor*>(static_cast<std::byte*>(memory) +
                                                    sizeof(RingHeader));
  ring.mask_ = cap - 1;
  ring.sticky_ = reinterpret_cast<StickyHeader*>(reinterpret_cast<std::byte*>(ring.entries_) +
                                                 static_cast<std::size_t>(cap) *
                                                     sizeof(SlotDescriptor));
  return ring;
}

bool Ring::set_sticky(std::span<const std::byte> bytes, std::uint32_t kind) {
  if (bytes.size() > kStickyBytes) {
    return false;
  }
  auto* data = reinterpret_cast<std::uint64_t*>(sticky_ + 1);
  const std::uint32_t seq = sticky_->seq.load(std::memory_order_relaxed);
  sticky_->seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  const std::size_t words = (bytes.size() + kWord - 1) / kWord;
  std::vector<std::uint64_t> local(words, 0);
  std::memcpy(local.data(), bytes.data(), bytes.size());
  copy_words_in(data, words, local.data());
  std::atomic_ref<std::uint32_t>(sticky_->size).store(static_cast<std::uint32_t>(bytes.size()),
                                                      std::memory_order_relaxed);
  std::atomic_ref<std::uint32_t>(sticky_->kind).store(kind, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  sticky_->seq.store(seq + 2, std::memory_order_release);
  return true;
}

bool Ring::sticky(std::vector<std::byte>& bytes, std::uint32_t& kind) const {
  auto* data = reinterpret_cast<std::uint64_t*>(sticky_ + 1);
  std::vector<std::uint64_t> local;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::uint32_t before = sticky_->seq.load(std::memory_order_acquire);
    if ((before & 1U) != 0) {
      continue;
    }
    const std::uint32_t size = std::min<std::uint32_t>(
        std::atomic_ref<std::uint32_t>(sticky_->size).load(std::memory_order_relaxed),
        static_cast<std::uint32_t>(kStickyBytes));
    kind = std::atomic_ref<std::uint32_t>(sticky_->kind).load(std::memory_order_relaxed);
    local.assign((size + kWord - 1) / kWord, 0);
    copy_words_out(data, local.size(), local.data());
    std::atomic_thread_fence(std::memory_order_acquire);
    if (sticky_->seq.load(std::memory_order_relaxed) == before) {
      const auto* b = reinterpret_cast<const std::byte*>(local.data());
      bytes.assign(b, b + size);
      return size > 0;
    }
  }
  return false;
}

std::string_view Ring::producer_doorbell() const { return producer_doorbell_; }
std::string_view Ring::consumer_doorbell() const { return consumer_doorbell_; }
void Ring::set_producer_doorbell(std::string_view e) {
  copy_endpoint(header_->producer_doorbell, e);
  producer_doorbell_ = std::string(endpoint_of(header_->producer_doorbell));
}
void Ring::set_consumer_doorbell(std::string_view e) {
  copy_endpoint(header_->consumer_doorbell, e);
  consumer_doorbell_ = std::string(endpoint_of(header_->consumer_doorbell));
}

std::size_t Ring::size() const {
  const std::uint64_t tail = header_->tail.load(std::memory_order_acquire);
  const std::uint64_t head = header_->head.load(std::memory_order_acquire);
  return static_cast<std::size_t>(std::min<std::uint64_t>(head - tail, capacity_));
}

bool Ring::try_push(const SlotDescriptor& descriptor) {
  const std::uint64_t head = head_;  // ours: a consumer that rewrites `head` cannot move it
  // Read the consumer's index only when the cached one says full: one shared cache line
  // less per packet.
  if (head - cached_tail_ >= capacity_) {
    cached_tail_ = header_->tail.load(std::memory_order_acquire);
    if (cached_tail_ > head || head - cached_tail_ > capacity_) {
      corrupt_ = true;  // a tail no consumer could have made: the ring is not usable
      return false;
    }
    if (head - cached_tail_ == capacity_) {
      return false;
    }
  }
  store(entries_[head & mask_], descriptor);
  head_ = head + 1;
  // seq_cst: the store must be visible before we read consumer_waiting (Dekker handshake).
  header_->head.store(head_, std::memory_order_seq_cst);
  return true;
}

bool Ring::drop_oldest(SlotDescriptor& dropped) {
  std::uint64_t tail = header_->tail.load(std::memory_order_acquire);
  while (true) {
    const std::uint64_t head = head_;
    if (tail == head) {
      return false;
    }
    if (tail > head || head - tail > capacity_) {
      corrupt_ = true;  // a tail no consumer could have made: nothing to drop
      return false;
    }
    dropped = load(entries_[tail & mask_]);
    // The consumer may take the same entry; whoever moves tail first owns it.
    if (header_->tail.compare_exchange_weak(tail, tail + 1, std::memory_order_acq_rel)) {
      header_->dropped.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
}

bool Ring::take_consumer_wakeup() {
  if (header_->consumer_waiting.load(std::memory_order_seq_cst) == 0) {
    return false;
  }
  return header_->consumer_waiting.exchange(0, std::memory_order_seq_cst) != 0;
}

void Ring::set_producer_waiting(bool waiting) {
  header_->producer_waiting.store(waiting ? 1 : 0, std::memory_order_seq_cst);
  // The caller re-checks the ring next; its loads must not move above this store.
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool Ring::try_pop(SlotDescriptor& out) {
  std::uint64_t tail = header_->tail.load(std::memory_order_acquire);
  while (true) {
    if (tail >= cached_head_) {
      cached_head_ = header_->head.load(std::memory_order_acquire);
      if (tail > cached_head_) {
        corrupt_ = true;  // past what was ever written: not an honest producer's index
        return false;
      }
      if (tail == cached_head_) {
        return false;
      }
    }
    // An honest producer is never more than a ring ahead: these indices were written by
    // someone else, and what lies between them is not a stream to read.
    if (cached_head_ - tail > capacity_) {
      corrupt_ = true;
      return false;
    }
    out = load(entries_[tail & mask_]);
    // seq_cst: the advanced tail must be visible before we read producer_waiting.
    if (header_->tail.compare_exchange_weak(tail, tail + 1, std::memory_order_seq_cst)) {
      return true;
    }
  }
}

bool Ring::take_producer_wakeup() {
  if (header_->producer_waiting.load(std::memory_order_seq_cst) == 0) {
    return false;
  }
  return header_->producer_waiting.exchange(0, std::memory_order_seq_cst) != 0;
}

void Ring::set_consumer_waiting(bool waiting) {
  header_->consumer_waiting.store(waiting ? 1 : 0, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // see set_producer_waiting
}

std::uint64_t Ring::dropped() const { return header_->dropped.load(std::memory_order_relaxed); }
std::uint64_t Ring::pushed() const { return header_->head.load(std::memory_order_relaxed); }

}  // namespace skit::ipc
