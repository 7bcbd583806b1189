// SPDX-License-Identifier: MPL-2.0
// The audio asset library, as StreamKit has it: the system's files (paths.audio_dir) and the
// user's uploads (paths.audio_dir/user): list, fetch the bytes, upload (checked by content),
// delete.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "authorization.hpp"
#include "http_routes.hpp"
#include "multipart.hpp"
#include "ui_routes.hpp"

namespace skit::gateway {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using nlohmann::json;

namespace {

constexpr std::uint64_t kMaxAssetBytes = 100ULL << 20;  // StreamKit: asset uploads 100 MB
const char* const kAudioFormats[] = {"ogg", "opus", "flac", "mp3", "wav"};

/// The format an audio file's first bytes announce (empty: none we take).
std::string sniff_audio(std::string_view head) {
  auto starts = [&](std::string_view magic, std::size_t at = 0) {
    return head.size() >= at + magic.size() && head.substr(at, magic.size()) == magic;
  };
  if (starts("OggS")) {
    return "ogg";
  }
  if (starts("fLaC")) {
    return "flac";
  }
  if (starts("RIFF") && starts("WAVE", 8)) {
    return "wav";
  }
  if (starts("ID3")) {
    return "mp3";
  }
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0xFF &&
      (static_cast<unsigned char>(head[1]) & 0xE0) == 0xE0) {
    return "mp3";
  }
  return {};
}

std::string audio_content_type(const std::string& ext) {
  if (ext == "ogg" || ext == "opus") {
    return "audio/ogg";
  }
  if (ext == "flac") {
    return "audio/flac";
  }
  if (ext == "mp3") {
    return "audio/mpeg";
  }
  if (ext == "wav") {
    return "audio/wav";
  }
  if (ext == "m4a") {
    return "audio/mp4";
  }
  return "application/octet-stream";
}

bool audio_extension(const std::string& ext) {
  return std::find(std::begin(kAudioFormats), std::end(kAudioFormats), ext) !=
             std::end(kAudioFormats) ||
         ext == "m4a";  // listed (system samples), not accepted as an upload
}

json asset_json(const HttpContext& ctx, const fs::path& f, bool system) {
  std::error_code ec;
  const std::string ext = lower(f.extension().string().substr(1));
  json a{{"id", f.filename().string()},
         {"name", f.stem().string()},
         {"path", fs::relative(f, ctx.engine.config().base_dir, ec).generic_string()},
         {"format", ext},
         {"size_bytes", fs::file_size(f, ec)},
         {"is_system", system},
         {"url", std::string("/api/v1/assets/audio/file/") + (system ? "system/" : "user/") +
                     f.filename().string()}};
  const fs::path license = fs::path(f.string() + ".license");
  if (fs::is_regular_file(license, ec)) {
    std::string text = read_all(license);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
      text.pop_back();
    }
    a["license"] = text;
  }
  return a;
}

std::vector<fs::path> audio_files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file(ec) || name.front() == '.') {
      continue;
    }
    const std::string ext =
        e.path().has_extension() ? lower(e.path().extension().string().substr(1)) : "";
    if (audio_extension(ext)) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// POST /api/v1/assets/audio: one multipart `file` part, checked by its first bytes.
HttpReply upload_asset(const HttpContext& ctx, HttpExchange& ex) {
  if (Status s = authorize(ex.role(), Permission::kUploadAssets, "upload assets"); !s.is_ok()) {
    return error_reply(s);
  }
  const std::uint64_t limit = std::min<std::uint64_t>(kMaxAssetBytes, ctx.config.max_body_bytes);
  if (ex.content_length() && *ex.content_length() > limit + 64 * 1024) {
    return HttpReply::text(413, "the upload is " + std::to_string(*ex.content_length()) +
                                    " bytes; audio assets are at most " + std::to_string(limit));
  }
  const std::string boundary = MultipartReader::boundary_of(ex.header(http::field::content_type));
  if (boundary.empty() || !ex.has_body()) {
    return HttpReply::text(400, "expected a multipart/form-data body with a 'file' part");
  }
  MultipartReader parts(std::ref(ex.body(ctx.config.max_body_bytes)), boundary);
  auto part = parts.next_part();
  if (!part) {
    return HttpReply::text(400, part.status().message());
  }
  if (!*part || (*part)->filename.empty()) {
    return HttpReply::text(400, "expected a file part (field 'file' with a filename)");
  }
  std::string name = fs::path((*part)->filename).filename().string();
  for (char& c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_')) {
      c = '_';
    }
  }
  while (!name.empty() && name.front() == '.') {
    name.erase(0, 1);
  }
  const std::string ext =
      fs::path(name).has_extension() ? lower(fs::path(name).extension().string().substr(1)) : "";
  if (name.empty() || name.size() > 128 ||
      std::find(std::begin(kAudioFormats), std::end(kAudioFormats), ext) ==
          std::end(kAudioFormats)) {
    return HttpReply::text(400, "'" + (*part)->filename +
                                    "': audio assets are .opus, .ogg, .flac, .mp3 or .wav files");
  }
  const fs::path dir = audio_root(ctx) / "user";
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path file = dir / name;
  if (fs::exists(file, ec) || fs::exists(audio_root(ctx) / name, ec)) {
    return HttpReply::text(409, "an audio asset '" + name + "' exists (delete it first)");
  }
  const fs::path tmp = dir / ("." + name + "." + std::to_string(::getpid()) + ".upload");
  std::uint64_t total = 0;
  std::string head;
  std::optional<HttpReply> failure;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    char chunk[64 * 1024];
    while (true) {
      auto n = parts.read(chunk);
      if (!n) {
        failure = HttpReply::text(n.status().code() == ErrorCode::kResourceExhausted ? 413 : 400,
                                  n.status().message());
        break;
      }
      if (*n == 0) {
        break;
      }
      total += *n;
      if (total > limit) {
        failure = HttpReply::text(413, "the file exceeds " + std::to_string(limit) + " bytes");
        break;
      }
      if (head.size() < 16) {
        head.append(chunk, std::min<std::size_t>(*n, 16 - head.size()));
      }
      out.write(chunk, static_cast<std::streamsize>(*n));
    }
    if (!failure && !out) {
      failure = HttpReply::text(500, "cannot write " + tmp.string());
    }
  }
  if (!failure) {
    const std::string sniffed = sniff_audio(head);
    const std::string expected = ext == "opus" ? "ogg" : ext;
    if (total == 0) {
      failure = HttpReply::text(400, "'" + name + "' is empty");
    } else if (sniffed != expected) {
      failure =
          HttpReply::text(400, "'" + name + "' is not a " + ext + " file" +
                                   (sniffed.empty() ? "" : " (it looks like " + sniffed + ")"));
    }
  }
  if (failure) {
    fs::remove(tmp, ec);
    return *failure;
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return HttpReply::text(500, "cannot save " + file.string());
  }
  spdlog::info("uploaded audio asset user/{} ({} bytes)", name, total);
  std::error_code rel_ec;
  return HttpReply::json(
      json{{"id", name},
           {"name", fs::path(name).stem().string()},
           {"path", fs::relative(file, ctx.engine.config().base_dir, rel_ec).generic_string()},
           {"format", ext},
           {"size_bytes", total},
           {"is_system", false},
           {"url", "/api/v1/assets/audio/file/user/" + name}}
          .dump());
}

}  // namespace

HttpReply audio_assets(HttpContext& ctx, HttpExchange& ex) {
  if (ex.head().method() == http::verb::post) {
    return upload_asset(ctx, ex);
  }
  const fs::path root = audio_root(ctx);
  json list = json::array();
  for (const auto& f : audio_files_in(root)) {
    list.push_back(asset_json(ctx, f, true));
  }
  for (const auto& f : audio_files_in(root / "user")) {
    list.push_back(asset_json(ctx, f, false));
  }
  return HttpReply::json(list.dump());
}

/// GET /api/v1/assets/audio/file/{system|user}/{id}: the bytes (for the player, Convert).
HttpReply audio_asset_file(HttpContext& ctx, HttpExchange& ex) {
  const std::string& rest = ex.param(0);
  const auto slash = rest.find('/');
  const std::string scope = slash == std::string::npos ? "" : rest.substr(0, slash);
  const std::string name = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if ((scope != "system" && scope != "user") || !safe_file_name(name)) {
    return HttpReply::text(400, "bad asset '" + rest + "' (expected system/NAME or user/NAME)");
  }
  const fs::path root = audio_root(ctx);
  const fs::path f = scope == "system" ? root / name : root / "user" / name;
  std::error_code ec;
  const std::string ext = f.has_extension() ? lower(f.extension().string().substr(1)) : "";
  if (!audio_extension(ext) || !fs::is_regular_file(f, ec)) {
    return HttpReply::text(404, "no audio asset '" + rest + "'");
  }
  HttpReply r{200, read_all(f), audio_content_type(ext), {}};
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

/// DELETE /api/v1/assets/audio/{id}: a user asset.
HttpReply audio_asset_delete(HttpContext& ctx, HttpExchange& ex) {
  if (Status s = authorize(ex.role(), Permission::kDeleteAssets, "delete assets"); !s.is_ok()) {
    return error_reply(s);
  }
  const std::string& id = ex.param(0);
  if (!safe_file_name(id)) {
    return HttpReply::text(400, "bad asset id '" + id + "'");
  }
  const fs::path root = audio_root(ctx);
  std::error_code ec;
  const fs::path user_file = root / "user" / id;
  if (fs::is_regular_file(user_file, ec)) {
    fs::remove(user_file, ec);
    if (ec) {
      return HttpReply::text(500, "cannot delete " + user_file.string() + ": " + ec.message());
    }
    spdlog::info("deleted audio asset user/{}", id);
    return HttpReply::json(json{{"id", id}}.dump());
  }
  if (fs::is_regular_file(root / id, ec)) {
    return HttpReply::text(403, "'" + id + "' is a system asset; only user assets can be deleted");
  }
  return HttpReply::text(404, "no user audio asset '" + id + "'");
}

}  // namespace skit::gateway
