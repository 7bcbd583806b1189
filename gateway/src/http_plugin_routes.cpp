// SPDX-License-Identifier: MPL-2.0
// Native plugins over HTTP, as StreamKit has them: GET /api/v1/plugins lists, POST uploads a
// library (multipart field `plugin`), DELETE /api/v1/plugins/{kind} unloads. Upload and delete
// need plugins.allow_http_management and an admin token; the server only stores the file and
// asks a sandboxed probe worker what it is, it never loads it.
#include <nlohmann/json.hpp>

#include "authorization.hpp"
#include "http_routes.hpp"
#include "multipart.hpp"
#include "skit/supervisor/plugins.hpp"

namespace skit::gateway {

namespace http = boost::beast::http;
using nlohmann::json;

json plugin_json(const supervisor::PluginInfo& p) {
  return json{{"kind", p.kind},
              {"original_kind", p.original_kind},
              {"file_name", p.file_name},
              {"categories", p.categories},
              {"loaded_at_ms", p.loaded_at_ms},
              {"plugin_type", p.plugin_type}};
}

namespace {

HttpReply management_disabled() {
  return HttpReply::text(403,
                         "plugin management over the API is disabled "
                         "(set plugins.allow_http_management: true in the config)");
}

HttpReply list_plugins(HttpContext& ctx, HttpExchange& ex) {
  if (Status s = authorize(ex.role(), Permission::kListNodes, "list plugins"); !s.is_ok()) {
    return error_reply(s);
  }
  json out = json::array();
  for (const auto& p : ctx.engine.plugins().list()) {
    out.push_back(plugin_json(p));
  }
  return HttpReply::json(out.dump());
}

HttpReply upload_plugin(HttpContext& ctx, HttpExchange& ex) {
  if (!ctx.engine.config().allow_plugin_management) {
    return management_disabled();
  }
  if (Status s = authorize(ex.role(), Permission::kLoadPlugins, "load plugins"); !s.is_ok()) {
    return error_reply(s);
  }
  const std::uint64_t limit = ctx.config.max_body_bytes;
  if (ex.content_length() && *ex.content_length() > limit) {
    return HttpReply::text(413, "the upload is " + std::to_string(*ex.content_length()) +
                                    " bytes; the limit is " + std::to_string(limit));
  }
  const std::string boundary = MultipartReader::boundary_of(ex.header(http::field::content_type));
  if (boundary.empty() || !ex.has_body()) {
    return HttpReply::text(400, "expected a multipart/form-data body with a 'plugin' file part");
  }
  MultipartReader parts(std::ref(ex.body(limit)), boundary);
  while (true) {
    auto part = parts.next_part();
    if (!part) {
      return HttpReply::text(part.status().code() == ErrorCode::kResourceExhausted ? 413 : 400,
                             part.status().message());
    }
    if (!*part) {
      return HttpReply::text(400, "no 'plugin' part in the upload (multipart field 'plugin')");
    }
    if ((*part)->name != "plugin") {
      continue;
    }
    if ((*part)->filename.empty()) {
      return HttpReply::text(400, "the 'plugin' part has no filename (send the .so as a file)");
    }
    std::string bytes;
    char chunk[64 * 1024];
    while (true) {
      auto n = parts.read(chunk);
      if (!n) {
        return HttpReply::text(n.status().code() == ErrorCode::kResourceExhausted ? 413 : 400,
                               n.status().message());
      }
      if (*n == 0) {
        break;
      }
      if (bytes.size() + *n > limit) {
        return HttpReply::text(413, "the plugin exceeds " + std::to_string(limit) + " bytes");
      }
      bytes.append(chunk, *n);
    }
    const std::string name = std::filesystem::path((*part)->filename).filename().string();
    auto info = ctx.engine.plugins().install(
        name, {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()});
    if (!info) {
      return error_reply(info.status());
    }
    return HttpReply::json(plugin_json(*info).dump(), 201);
  }
}

}  // namespace

HttpReply plugins_collection(HttpContext& ctx, HttpExchange& ex) {
  return ex.head().method() == http::verb::post ? upload_plugin(ctx, ex) : list_plugins(ctx, ex);
}

HttpReply plugin_delete(HttpContext& ctx, HttpExchange& ex) {
  if (!ctx.engine.config().allow_plugin_management) {
    return management_disabled();
  }
  if (Status s = authorize(ex.role(), Permission::kDeletePlugins, "delete plugins"); !s.is_ok()) {
    return error_reply(s);
  }
  const bool keep_file = ex.query().find("keep_file=true") != std::string::npos;
  const std::string kind = ex.param(0);
  Status st = ctx.engine.plugins().unload(kind, !keep_file);
  if (!st.is_ok()) {
    return error_reply(st);
  }
  return HttpReply::json(json{{"kind", kind}, {"unloaded", true}, {"file_kept", keep_file}}.dump());
}

}  // namespace skit::gateway
