// SPDX-License-Identifier: MPL-2.0
#include <algorithm>
#include <fstream>
#include <sstream>

#include "ui_routes.hpp"

namespace skit::gateway {

namespace fs = std::filesystem;

fs::path samples_root(const HttpContext& ctx) {
  return ctx.engine.config().base_dir / ctx.config.samples_dir;
}

fs::path audio_root(const HttpContext& ctx) {
  return ctx.engine.config().base_dir / ctx.config.audio_dir;
}

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

bool safe_file_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
  });
}

HttpReply method_not_allowed(std::string allow) {
  HttpReply r = HttpReply::text(405, "method not allowed here (allowed: " + allow + ")");
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

}  // namespace skit::gateway
