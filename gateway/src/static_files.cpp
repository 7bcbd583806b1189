// SPDX-License-Identifier: MPL-2.0
#include "static_files.hpp"

#include <unistd.h>

#include <array>
#include <cctype>
#include <fstream>
#include <sstream>

#include "http_routes.hpp"
#include "routes.hpp"

#ifndef SKIT_UI_BUILD_DIR
#define SKIT_UI_BUILD_DIR ""
#endif

namespace skit::gateway {

namespace fs = std::filesystem;

fs::path resolve_ui_dir(const ServerConfig& config) {
  std::error_code ec;
  auto usable = [&](const fs::path& dir) { return fs::is_regular_file(dir / "index.html", ec); };
  if (!config.ui_dir.empty()) {
    fs::path dir = config.ui_dir;
    if (dir.is_relative()) {
      dir = config.engine.base_dir / dir;
    }
    return usable(dir) ? fs::canonical(dir, ec) : fs::path();
  }
  // An installed skit: <prefix>/bin/skit and <prefix>/share/skit/ui.
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "skit" / "ui";
    if (usable(installed)) {
      return fs::canonical(installed, ec);
    }
  }
  const fs::path built = SKIT_UI_BUILD_DIR;
  if (!built.empty() && usable(built)) {
    return fs::canonical(built, ec);
  }
  return {};
}

StaticFiles::StaticFiles(fs::path root, std::string base_href) : base_href_(std::move(base_href)) {
  std::error_code ec;
  if (!root.empty() && fs::is_directory(root, ec)) {
    root_ = fs::canonical(root, ec);
    if (ec) {
      root_.clear();
    }
  }
}

std::string_view StaticFiles::content_type_of(const fs::path& file) {
  static const std::array<std::pair<std::string_view, std::string_view>, 18> kTypes{{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".ttf", "font/ttf"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
      {".webmanifest", "application/manifest+json"},
  }};
  std::string ext = file.extension().string();
  for (char& c : ext)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [e, type] : kTypes) {
    if (e == ext)
      return type;
  }
  return "application/octet-stream";
}

HttpReply StaticFiles::file_reply(const fs::path& file, bool is_index) const {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return HttpReply::text(404, "not found");
  }
  std::ostringstream s;
  s << in.rdbuf();
  HttpReply r{200, s.str(), std::string(content_type_of(file)), {}};
  if (is_index) {
    // The build refers to its files relatively ("./assets/..."): a <base> makes them resolve
    // from the UI's root whatever the client route (/monitor/x) the page was loaded at.
    if (const auto at = r.body.find("<head>");
        at != std::string::npos && r.body.find("<base ") == std::string::npos) {
      r.body.insert(at + 6, "<base href=\"" + base_href_ + "\">");
    }
  }
  const std::string rel = fs::relative(file, root_).generic_string();
  if (is_index) {
    r.headers.emplace_back("Cache-Control", "no-cache");
  } else if (rel.rfind("assets/", 0) == 0) {
    // Vite names these by content hash: a new build means new names.
    r.headers.emplace_back("Cache-Control", "public, max-age=31536000, immutable");
  } else {
    r.headers.emplace_back("Cache-Control", "no-cache");
  }
  return r;
}

HttpReply StaticFiles::serve(std::string_view path) const {
  if (root_.empty()) {
    return HttpReply::text(
        404,
        "the web UI is not built: run `npm ci && npm run build` in ui/ (scripts/build_ui.sh), "
        "or set paths.ui_dir to a built UI");
  }
  std::string rel = percent_decode(path);
  if (rel.find('\0') != std::string::npos || rel.find("..") != std::string::npos ||
      rel.find('\\') != std::string::npos) {
    return HttpReply::text(400, "bad path '" + std::string(path) + "'");
  }
  while (!rel.empty() && rel.front() == '/')
    rel.erase(0, 1);
  const fs::path index = root_ / "index.html";
  if (rel.empty() || rel == "index.html") {
    return file_reply(index, true);
  }
  std::error_code ec;
  const fs::path candidate = fs::weakly_canonical(root_ / rel, ec);
  const std::string root_s = root_.string() + "/";
  if (ec || candidate.string().rfind(root_s, 0) != 0) {
    return HttpReply::text(400, "bad path '" + std::string(path) + "'");
  }
  if (fs::is_regular_file(candidate, ec)) {
    return file_reply(candidate, false);
  }
  // A client route (/monitor, /convert/x): the app decides what to show.
  const std::string last = fs::path(rel).filename().string();
  if (last.find('.') == std::string::npos) {
    return file_reply(index, true);
  }
  return HttpReply::text(404, "no file '/" + rel + "' in the web UI");
}

HttpReply ui_file(HttpContext& ctx, HttpExchange& ex) { return ctx.ui_files.serve(ex.path()); }

}  // namespace skit::gateway
