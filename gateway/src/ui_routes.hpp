// SPDX-License-Identifier: MPL-2.0
// What the web UI's route families share (samples: ui_samples.cpp, audio assets:
// ui_assets.cpp, validate: ui_validate.cpp, browser login: ui_login.cpp; their routes are in
// routes.cpp): where the files live and the rules for names a client may send.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "http_context.hpp"
#include "http_reply.hpp"

namespace skit::gateway {

/// paths.samples_dir and paths.audio_dir, relative to paths.base_dir.
std::filesystem::path samples_root(const HttpContext& ctx);
std::filesystem::path audio_root(const HttpContext& ctx);

std::string read_all(const std::filesystem::path& file);
std::string lower(std::string s);

/// A safe single file name: letters, digits, '.', '-', '_'; not starting with '.'.
bool safe_file_name(std::string_view name);

/// 405 with its Allow header, for a method a route's sub-path does not take.
HttpReply method_not_allowed(std::string allow);

}  // namespace skit::gateway
