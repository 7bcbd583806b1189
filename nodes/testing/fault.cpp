// SPDX-License-Identifier: MPL-2.0
// testing::fault forwards packets and, after `after_packets` of them, misbehaves on purpose:
// it crashes, hangs, leaks memory or makes a system call the sandbox forbids, or acts as a
// compromised worker would and scribbles random bytes over every shared-memory pool and ring
// it has mapped. The fault tests of the supervisor and the sandbox use it; it is harmless
// unless placed in a pipeline.
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "skit/core/registry.hpp"

namespace skit::nodes {

struct FaultParams {
  std::string mode = "error";
  std::int64_t after_packets = 0;
  std::int64_t delay_ms = 10;

  static void describe(ParamSchemaBuilder<FaultParams>& b) {
    b.field("mode", &FaultParams::mode,
            "What to do: error (fail cleanly), segfault, abort, hang, oom (allocate without "
            "bound), execve or socket (forbidden system calls), delay (a slow consumer: "
            "forward every packet after delay_ms), scribble (overwrite every shared-memory "
            "pool and ring the worker maps with random bytes, again and again for delay_ms, before "
            "forwarding each packet).")
        .choices({"error", "segfault", "abort", "hang", "oom", "execve", "socket", "delay", "scribble"});
    b.field("after_packets", &FaultParams::after_packets,
            "Packets forwarded normally before the fault.")
        .range(0, 1e12);
    b.field("delay_ms", &FaultParams::delay_ms, "Per-packet delay of modes 'delay' and 'scribble'.")
        .range(0, 60000)
        .tunable();
  }
};

class FaultNode final : public NodeWithParams<FaultParams> {
 public:
  static constexpr std::string_view kKind = "testing::fault";
  static constexpr std::string_view kSummary =
      "Forwards packets, then misbehaves on purpose (crash, hang, OOM, forbidden syscall, slowness).";
  static constexpr std::string_view kCategory = "testing";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::any()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::passthrough()}}; }

  using NodeWithParams::NodeWithParams;

  Status process(NodeContext& ctx, const PacketView& packet) override {
    const std::string& mode = params().mode;
    if (seen_++ < params().after_packets) {
      return ctx.output(0).forward(packet);
    }
    if (mode == "delay") {
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(params().delay_ms);
      if (!ctx.sleep_until(until)) {
        return Status(ErrorCode::kCancelled, "stopped");
      }
      return ctx.output(0).forward(packet);
    }
    if (mode == "scribble") {
      // For delay_ms, over and over: the readers on the other side see it change under them.
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(params().delay_ms);
      std::size_t bytes = 0;
      int rounds = 0;
      do {
        bytes = scribble();
        ++rounds;
      } while (std::chrono::steady_clock::now() < until && !ctx.stop_requested());
      ctx.log().warn("scribbled {} rounds over {} bytes of shared memory", rounds, bytes);
      return ctx.output(0).forward(packet);
    }
    if (mode == "segfault") {
      std::raise(SIGSEGV);
    } else if (mode == "abort") {
      std::abort();
    } else if (mode == "hang") {
      while (true) {  // ignores stop requests, like a wedged codec
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    } else if (mode == "oom") {
      std::vector<std::vector<char>> hog;
      while (true) {
        hog.emplace_back(64 << 20, 'x');
      }
    } else if (mode == "execve") {
      char arg0[] = "/bin/true";
      char* argv[] = {arg0, nullptr};
      ::execv(arg0, argv);
      return Status(ErrorCode::kInternal, std::string("execve returned: ") + std::strerror(errno));
    } else if (mode == "socket") {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      if (fd >= 0) {
        ::close(fd);
      }
      return Status(ErrorCode::kInternal, "socket(AF_INET) was allowed");
    }
    return Status(ErrorCode::kInternal, "injected failure after " +
                                            std::to_string(params().after_packets) + " packets");
  }

 private:
  /// Every mapping of a skit segment (/dev/shm/skit-*) filled with random words: the
  /// headers, refcounts, ring indices, descriptors and payloads that other processes read.
  std::size_t scribble() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    std::size_t written = 0;
    while (std::getline(maps, line)) {
      if (line.find("/dev/shm/skit-") == std::string::npos || line.find(" rw") == std::string::npos) {
        continue;
      }
      const auto dash = line.find('-');
      const auto space = line.find(' ');
      const auto begin = std::stoull(line.substr(0, dash), nullptr, 16);
      const auto end = std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16);
      for (auto a = begin; a + sizeof(std::uint64_t) <= end; a += sizeof(std::uint64_t)) {
        const std::uint64_t v = rng_();
        std::memcpy(reinterpret_cast<void*>(a), &v, sizeof v);  // NOLINT(performance-no-int-to-ptr)
      }
      written += end - begin;
    }
    return written;
  }

  std::int64_t seen_ = 0;
  std::mt19937_64 rng_{0x5eed};
};
SKIT_REGISTER_NODE(FaultNode);

}  // namespace skit::nodes
