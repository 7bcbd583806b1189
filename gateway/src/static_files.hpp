// SPDX-License-Identifier: MPL-2.0
// The built web UI (ui/dist) at `/`: files with their content types, `index.html` for client
// routes (a path whose last segment has no extension), a year of immutable cache for the
// hashed files under assets/, no-cache for index.html. Paths never leave the UI directory.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "http_reply.hpp"
#include "skit/gateway/config.hpp"

namespace skit::gateway {

/// The UI directory `skit serve` serves: `paths.ui_dir` (relative to paths.base_dir) when
/// set; else the installed UI (<prefix>/share/skit/ui beside the binary's bin/), else the
/// source tree's build output (ui/dist). Empty when none exists.
std::filesystem::path resolve_ui_dir(const ServerConfig& config);

class StaticFiles {
 public:
  /// `base_href`: the <base href> put into index.html ("/", or server.base_path + "/").
  explicit StaticFiles(std::filesystem::path root, std::string base_href = "/");

  [[nodiscard]] bool available() const { return !root_.empty(); }
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

  /// GET `path` (already without the query). 404 for a missing file with an extension, 400
  /// for a path that tries to leave the directory.
  [[nodiscard]] HttpReply serve(std::string_view path) const;

  static std::string_view content_type_of(const std::filesystem::path& file);

 private:
  [[nodiscard]] HttpReply file_reply(const std::filesystem::path& file, bool is_index) const;

  std::filesystem::path root_;  // canonical; empty when the UI is not built
  std::string base_href_;
};

}  // namespace skit::gateway
