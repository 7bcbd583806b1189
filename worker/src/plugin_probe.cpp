// SPDX-License-Identifier: MPL-2.0
// The plugin probe: a short-lived worker that reads a native plugin's metadata, so that the
// server learns a plugin's pins and params without ever loading it.
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "skit/plugins/native_library.hpp"
#include "skit/worker/sandbox.hpp"
#include "skit/worker/worker.hpp"

namespace skit::worker {

int probe_plugin(const std::string& path, unsigned long long address_space_bytes) {
  // The answer goes to the supervisor's pipe on a private descriptor; whatever the plugin
  // prints (constructors, libraries) goes to stderr, which the supervisor logs.
  const int answer_fd = ::dup(STDOUT_FILENO);
  ::dup2(STDERR_FILENO, STDOUT_FILENO);
  const auto answer = [answer_fd](const nlohmann::json& doc) {
    const std::string line = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::size_t at = 0;
    while (at < line.size()) {
      const ssize_t n = ::write(answer_fd, line.data() + at, line.size() - at);
      if (n <= 0) {
        break;
      }
      at += static_cast<std::size_t>(n);
    }
  };
  SandboxPolicy policy;
  policy.address_space_bytes = address_space_bytes;
  policy.max_open_files = 64;
  Status st = apply_sandbox(policy);
  if (!st.is_ok()) {
    answer({{"ok", false}, {"error", "sandbox: " + st.message()}});
    return 1;
  }
  auto library = plugins::NativeLibrary::open(path);
  if (!library) {
    answer({{"ok", false}, {"error", library.status().message()}});
    std::fflush(stderr);
    ::_exit(1);  // no unload: a broken plugin's destructors have nothing to tell us
  }
  answer({{"ok", true}, {"metadata", library->metadata()}});
  std::fflush(stderr);
  ::_exit(0);
}

}  // namespace skit::worker
