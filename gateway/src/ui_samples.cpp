// SPDX-License-Identifier: MPL-2.0
// Samples, as StreamKit has them: the system's oneshot and dynamic pipelines
// (paths.samples_dir/{oneshot,dynamic}) and the user's saved pipelines and fragments
// (paths.samples_dir/user): list, read, save, delete.
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "authorization.hpp"
#include "http_routes.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"
#include "ui_routes.hpp"

namespace skit::gateway {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using nlohmann::json;

namespace {

constexpr std::uint64_t kMaxSampleBody = 1 << 20;  // StreamKit: samples body 1 MB
constexpr std::size_t kMaxSampleName = 100;

/// "My Pipeline!" -> "my-pipeline": the file name of a saved sample.
std::string slug_of(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!out.empty() && out.back() != '-' &&
               (c == ' ' || c == '-' || c == '_' || c == '.')) {
      out.push_back(c == '_' ? '_' : '-');
    }
  }
  while (!out.empty() && (out.back() == '-' || out.back() == '_')) {
    out.pop_back();
  }
  return out.substr(0, 64);
}

/// Directives in a saved sample's leading comments: "# skit:name=...", "# skit:fragment".
struct SampleHeader {
  std::string name;
  std::string description;
  bool fragment = false;
};

SampleHeader header_of(const std::string& yaml) {
  SampleHeader h;
  std::istringstream in(yaml);
  std::string line;
  while (std::getline(in, line) && line.rfind('#', 0) == 0) {
    const std::string_view l = line;
    if (l.rfind("# skit:name=", 0) == 0) {
      h.name = line.substr(12);
    } else if (l.rfind("# skit:description=", 0) == 0) {
      h.description = line.substr(19);
    } else if (l == "# skit:fragment") {
      h.fragment = true;
    }
  }
  return h;
}

/// The `mode:` of a document without compiling it (fragments need not compile).
std::string yaml_mode(const std::string& yaml) {
  try {
    const YAML::Node root = YAML::Load(yaml);
    if (root.IsMap() && root["mode"] && root["mode"].IsScalar()) {
      return root["mode"].Scalar() == "oneshot" ? "oneshot" : "dynamic";
    }
  } catch (const YAML::Exception&) {
  }
  return "dynamic";  // StreamKit's default mode
}

json sample_json(const fs::path& file, const std::string& scope) {
  const std::string yaml = read_all(file);
  const SampleHeader h = header_of(yaml);
  std::string name = h.name;
  std::string description = h.description;
  if (name.empty() || description.empty()) {
    try {
      const YAML::Node root = YAML::Load(yaml);
      if (root.IsMap()) {
        if (name.empty() && root["name"] && root["name"].IsScalar()) {
          name = root["name"].Scalar();
        }
        if (description.empty() && root["description"] && root["description"].IsScalar()) {
          description = root["description"].Scalar();
        }
      }
    } catch (const YAML::Exception&) {
    }
  }
  if (name.empty()) {
    name = file.stem().string();
  }
  return json{{"id", scope + "/" + file.stem().string()},
              {"name", name},
              {"description", description},
              {"yaml", yaml},
              {"is_system", scope != "user"},
              {"mode", yaml_mode(yaml)},
              {"is_fragment", h.fragment}};
}

std::vector<fs::path> yaml_files(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto ext = e.path().extension();
    if (e.is_regular_file(ec) && (ext == ".yml" || ext == ".yaml")) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// The samples of a mode (`id` empty), or one ("oneshot/NAME", "user/NAME" or "NAME").
HttpReply samples(const HttpContext& ctx, std::string_view raw_id, bool dynamic) {
  const fs::path root = samples_root(ctx);
  const std::string system_scope = dynamic ? "dynamic" : "oneshot";
  if (raw_id.empty()) {
    json list = json::array();
    for (const auto& f : yaml_files(root / system_scope)) {
      list.push_back(sample_json(f, system_scope));
    }
    for (const auto& f : yaml_files(root / "user")) {
      json s = sample_json(f, "user");
      // Dynamic list: the user's dynamic pipelines; oneshot list: everything the user saved
      // (as StreamKit: fragments and pipelines of both modes, each with its mode).
      if (!dynamic || s["mode"] == "dynamic") {
        list.push_back(std::move(s));
      }
    }
    return HttpReply::json(list.dump());
  }
  std::string id(raw_id);
  std::string scope = system_scope;
  if (const auto slash = id.find('/'); slash != std::string::npos) {
    scope = id.substr(0, slash);
    id = id.substr(slash + 1);
  }
  if ((scope != system_scope && scope != "user") || !safe_file_name(id) ||
      id.find('.') != std::string::npos) {
    return HttpReply::text(400, "bad sample id '" + std::string(raw_id) + "' (expected " +
                                    system_scope + "/NAME or user/NAME)");
  }
  for (const char* ext : {".yml", ".yaml"}) {
    const fs::path f = root / scope / (id + ext);
    std::error_code ec;
    if (fs::is_regular_file(f, ec)) {
      return HttpReply::json(sample_json(f, scope).dump());
    }
  }
  return HttpReply::text(404, "no sample '" + scope + "/" + id + "'");
}

/// POST /api/v1/samples/oneshot: {name, description?, yaml, overwrite?, is_fragment?}.
HttpReply save_sample(const HttpContext& ctx, HttpExchange& ex) {
  if (Status s = authorize(ex.role(), Permission::kWriteSamples, "save samples"); !s.is_ok()) {
    return error_reply(s);
  }
  HttpReply error;
  auto body_text = ex.read_body(kMaxSampleBody, error);
  if (!body_text) {
    return error;
  }
  const json body = json::parse(*body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return HttpReply::text(
        400, "expected a JSON object {name, description?, yaml, overwrite?, is_fragment?}");
  }
  auto str = [&](const char* key, std::string& out, bool required) -> std::optional<HttpReply> {
    const auto it = body.find(key);
    if (it == body.end() || it->is_null()) {
      if (required) {
        return HttpReply::text(400, std::string("'") + key + "' is required");
      }
      return std::nullopt;
    }
    if (!it->is_string()) {
      return HttpReply::text(400, std::string("'") + key + "' must be a string");
    }
    out = it->get<std::string>();
    return std::nullopt;
  };
  auto flag = [&](const char* key, bool& out) -> std::optional<HttpReply> {
    const auto it = body.find(key);
    if (it == body.end() || it->is_null()) {
      return std::nullopt;
    }
    if (!it->is_boolean()) {
      return HttpReply::text(400, std::string("'") + key + "' must be true or false");
    }
    out = it->get<bool>();
    return std::nullopt;
  };
  std::string name, description, yaml;
  bool overwrite = false, fragment = false;
  for (auto e :
       {str("name", name, true), str("description", description, false), str("yaml", yaml, true),
        flag("overwrite", overwrite), flag("is_fragment", fragment)}) {
    if (e) {
      return *e;
    }
  }
  if (name.size() > kMaxSampleName || name.find_first_of("\r\n") != std::string::npos) {
    return HttpReply::text(400, "'name' must be one line of at most " +
                                    std::to_string(kMaxSampleName) + " characters");
  }
  const std::string slug = slug_of(name);
  if (slug.empty()) {
    return HttpReply::text(400, "'name' needs at least one letter or digit (it names the file)");
  }
  for (char& c : description) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  // A pipeline must compile, so that what is saved runs; a fragment (a piece of a graph,
  // dragged into another) must be a YAML mapping of nodes.
  if (fragment) {
    try {
      const YAML::Node root = YAML::Load(yaml);
      if (!root.IsMap() || !root["nodes"] || !root["nodes"].IsMap()) {
        return HttpReply::text(400, "a fragment is a YAML mapping with 'nodes'");
      }
    } catch (const YAML::Exception& e) {
      return HttpReply::text(400, "error: line " + std::to_string(e.mark.line + 1) + ", column " +
                                      std::to_string(e.mark.column + 1) +
                                      ": YAML syntax error: " + e.msg);
    }
  } else {
    const auto compiled = supervisor::compile_pipeline_yaml(yaml);
    if (!compiled.ok()) {
      std::string text = "the pipeline does not compile:\n";
      for (const auto& e : compiled.errors) {
        text += e.to_string() + "\n";
      }
      text.pop_back();
      return HttpReply::text(400, text);
    }
  }
  const fs::path dir = samples_root(ctx) / "user";
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path file = dir / (slug + ".yml");
  if (!overwrite && fs::exists(file, ec)) {
    return HttpReply::text(
        409, "a sample 'user/" + slug + "' exists (send overwrite: true to replace it)");
  }
  std::string content = "# skit:name=" + name + "\n";
  if (!description.empty()) {
    content += "# skit:description=" + description + "\n";
  }
  if (fragment) {
    content += "# skit:fragment\n";
  }
  content += yaml;
  if (!content.empty() && content.back() != '\n') {
    content += '\n';
  }
  const fs::path tmp = dir / ("." + slug + ".yml.tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) {
      return HttpReply::text(500, "cannot write " + tmp.string());
    }
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    return HttpReply::text(500, "cannot save " + file.string() + ": " + ec.message());
  }
  spdlog::info("saved sample user/{} ({} bytes)", slug, content.size());
  return HttpReply::json(sample_json(file, "user").dump());
}

/// DELETE /api/v1/samples/oneshot/user/NAME.
HttpReply delete_sample(const HttpContext& ctx, HttpExchange& ex, const std::string& id) {
  if (Status s = authorize(ex.role(), Permission::kDeleteSamples, "delete samples"); !s.is_ok()) {
    return error_reply(s);
  }
  if (id.rfind("user/", 0) != 0) {
    if (id.rfind("oneshot/", 0) == 0 || id.rfind("dynamic/", 0) == 0) {
      return HttpReply::text(403,
                             "'" + id + "' is a system sample; only user samples can be deleted");
    }
    return HttpReply::text(400, "bad sample id '" + id + "' (expected user/NAME)");
  }
  const std::string name = id.substr(5);
  if (!safe_file_name(name) || name.find('.') != std::string::npos) {
    return HttpReply::text(400, "bad sample id '" + id + "'");
  }
  std::error_code ec;
  for (const char* ext : {".yml", ".yaml"}) {
    const fs::path f = samples_root(ctx) / "user" / (name + ext);
    if (fs::is_regular_file(f, ec)) {
      fs::remove(f, ec);
      if (ec) {
        return HttpReply::text(500, "cannot delete " + f.string() + ": " + ec.message());
      }
      return HttpReply::json(json{{"id", id}}.dump());
    }
  }
  return HttpReply::text(404, "no sample '" + id + "'");
}

}  // namespace

HttpReply oneshot_samples(HttpContext& ctx, HttpExchange& ex) {
  return ex.head().method() == http::verb::post ? save_sample(ctx, ex) : samples(ctx, "", false);
}

HttpReply oneshot_sample(HttpContext& ctx, HttpExchange& ex) {
  return ex.head().method() == http::verb::delete_ ? delete_sample(ctx, ex, ex.param(0))
                                                   : samples(ctx, ex.param(0), false);
}

HttpReply dynamic_samples(HttpContext& ctx, HttpExchange& /*ex*/) {
  return samples(ctx, "", true);
}

HttpReply dynamic_sample(HttpContext& ctx, HttpExchange& ex) {
  return samples(ctx, ex.param(0), true);
}

}  // namespace skit::gateway
