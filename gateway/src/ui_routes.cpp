// SPDX-License-Identifier: MPL-2.0
#include "ui_routes.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "control_plane.hpp"
#include "skit/supervisor/entry_rules.hpp"
#include "skit/core/registry.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"

namespace skit::gateway {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::uint64_t kMaxSampleBody = 1 << 20;       // StreamKit: samples body 1 MB
constexpr std::uint64_t kMaxAssetBytes = 100ULL << 20;  // StreamKit: asset uploads 100 MB
constexpr std::uint64_t kMaxLoginBody = 4096;
constexpr std::size_t kMaxSampleName = 100;
const char* const kAudioFormats[] = {"ogg", "opus", "flac", "mp3", "wav"};

bool may(Role role, const char* permission) {
  const json p = permissions_of(role);
  return p.value(permission, false);
}

HttpReply denied(Role role, const std::string& what) {
  return HttpReply::text(
      403, "role '" + std::string(role_name(role)) + "' may not " + what + " (needs operator)");
}

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

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
  while (!out.empty() && (out.back() == '-' || out.back() == '_'))
    out.pop_back();
  return out.substr(0, 64);
}

/// A safe single file name: letters, digits, '.', '-', '_'; not starting with '.'.
bool safe_file_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '.')
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
  });
}

std::string mode_name(v1::PipelineMode m) {
  return m == v1::PIPELINE_MODE_ONESHOT ? "oneshot" : "dynamic";
}

/// StreamKit's compiled model: {name, description, mode, nodes: {id: {kind, params}},
/// connections: [{from_node, from_pin, to_node, to_pin, mode?}]} (+ node_order, since JSON
/// objects have none).
json model_json(const v1::Pipeline& p) {
  json nodes = json::object();
  json order = json::array();
  for (const auto& n : p.nodes()) {
    json params = json::parse(n.params_json().empty() ? "{}" : n.params_json(), nullptr, false);
    nodes[n.id()] = {{"kind", n.kind()},
                     {"params", params.is_discarded() ? json::object() : params}};
    if (n.isolation() == v1::ISOLATION_DEDICATED)
      nodes[n.id()]["isolation"] = "dedicated";
    order.push_back(n.id());
  }
  json connections = json::array();
  for (const auto& c : p.connections()) {
    json j{{"from_node", c.from_node()},
           {"from_pin", c.from_pin()},
           {"to_node", c.to_node()},
           {"to_pin", c.to_pin()}};
    if (c.mode() == v1::CONNECTION_MODE_BEST_EFFORT)
      j["mode"] = "best_effort";
    connections.push_back(j);
  }
  return json{{"name", p.name()},
              {"description", p.description()},
              {"mode", mode_name(p.mode())},
              {"nodes", nodes},
              {"node_order", order},
              {"connections", connections}};
}

json diagnostics_json(const std::vector<Status>& errors) {
  json list = json::array();
  for (const auto& e : errors) {
    json item{{"message", e.message()}, {"code", error_code_name(e.code())}};
    if (e.where().line > 0) {
      item["line"] = e.where().line;
      item["column"] = e.where().column;
    }
    if (!e.where().node_id.empty())
      item["node"] = e.where().node_id;
    if (!e.where().param.empty())
      item["param"] = e.where().param;
    list.push_back(item);
  }
  return list;
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
    if (l.rfind("# skit:name=", 0) == 0)
      h.name = line.substr(12);
    else if (l.rfind("# skit:description=", 0) == 0)
      h.description = line.substr(19);
    else if (l == "# skit:fragment")
      h.fragment = true;
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
        if (name.empty() && root["name"] && root["name"].IsScalar())
          name = root["name"].Scalar();
        if (description.empty() && root["description"] && root["description"].IsScalar()) {
          description = root["description"].Scalar();
        }
      }
    } catch (const YAML::Exception&) {
    }
  }
  if (name.empty())
    name = file.stem().string();
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
    if (e.is_regular_file(ec) && (ext == ".yml" || ext == ".yaml"))
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// The format an audio file's first bytes announce (empty: none we take).
std::string sniff_audio(std::string_view head) {
  auto starts = [&](std::string_view magic, std::size_t at = 0) {
    return head.size() >= at + magic.size() && head.substr(at, magic.size()) == magic;
  };
  if (starts("OggS"))
    return "ogg";
  if (starts("fLaC"))
    return "flac";
  if (starts("RIFF") && starts("WAVE", 8))
    return "wav";
  if (starts("ID3"))
    return "mp3";
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0xFF &&
      (static_cast<unsigned char>(head[1]) & 0xE0) == 0xE0) {
    return "mp3";
  }
  return {};
}

std::string audio_content_type(const std::string& ext) {
  if (ext == "ogg" || ext == "opus")
    return "audio/ogg";
  if (ext == "flac")
    return "audio/flac";
  if (ext == "mp3")
    return "audio/mpeg";
  if (ext == "wav")
    return "audio/wav";
  if (ext == "m4a")
    return "audio/mp4";
  return "application/octet-stream";
}

bool audio_extension(const std::string& ext) {
  return std::find(std::begin(kAudioFormats), std::end(kAudioFormats), ext) !=
             std::end(kAudioFormats) ||
         ext == "m4a";  // listed (system samples), not accepted as an upload
}

}  // namespace

UiRoutes::UiRoutes(const ServerConfig& config, supervisor::Engine& engine,
                   BrowserSessions& browsers)
    : config_(config), engine_(engine), browsers_(browsers), static_files_(resolve_ui_dir(config), config.base_path + "/") {
  if (static_files_.available()) {
    spdlog::info("serving the web UI from {}", static_files_.root().string());
  } else {
    spdlog::info("no web UI build found (paths.ui_dir, or ui/dist after scripts/build_ui.sh)");
  }
}

bool UiRoutes::owns(std::string_view path) {
  if (path.rfind("/api/", 0) != 0) {
    return path != "/metrics" && path != "/healthz" && path != "/health";
  }
  return path.rfind("/api/v1/samples/", 0) == 0 || path.rfind("/api/v1/assets/", 0) == 0 ||
         path == "/api/v1/validate" || path.rfind("/api/v1/auth/", 0) == 0;
}

bool UiRoutes::open_without_token(std::string_view path) {
  return (path.rfind("/api/", 0) != 0 && path != "/metrics") || path.rfind("/api/v1/auth/", 0) == 0;
}

bool UiRoutes::same_origin(std::string_view origin, std::string_view host) {
  if (host.empty()) {
    return false;
  }
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (origin.size() == scheme.size() + host.size() && origin.substr(0, scheme.size()) == scheme &&
        origin.substr(scheme.size()) == host) {
      return true;
    }
  }
  return false;
}

std::string UiRoutes::strip_base_path(const ServerConfig& config, std::string path) {
  const std::string& base = config.base_path;
  if (base.empty() || path.rfind(base, 0) != 0) {
    return path;
  }
  if (path.size() == base.size()) {
    return "/";
  }
  return path[base.size()] == '/' ? path.substr(base.size()) : path;
}

std::string UiRoutes::route_of(std::string_view path) {
  for (const char* prefix :
       {"/api/v1/samples/oneshot", "/api/v1/samples/dynamic", "/api/v1/assets/audio",
        "/api/v1/validate", "/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/auth/me"}) {
    const std::string_view p = prefix;
    if (path == p)
      return std::string(p);
    if (path.rfind(p, 0) == 0 && path.size() > p.size() && path[p.size()] == '/') {
      return std::string(p) + "/{id}";
    }
  }
  return path.rfind("/api/", 0) == 0 ? "other" : "ui";
}

fs::path UiRoutes::samples_root() const {
  return engine_.config().base_dir / config_.samples_dir;
}
fs::path UiRoutes::audio_root() const {
  return engine_.config().base_dir / config_.audio_dir;
}

std::optional<std::string> UiRoutes::read_body(const UiRequest& req, std::uint64_t limit,
                                               HttpReply& error) {
  if (req.content_length && *req.content_length > limit) {
    error = HttpReply::text(413, "the body is " + std::to_string(*req.content_length) +
                                     " bytes; at most " + std::to_string(limit));
    return std::nullopt;
  }
  std::string body;
  if (!req.pull)
    return body;
  char chunk[16 * 1024];
  while (true) {
    auto n = req.pull(chunk);
    if (!n) {
      error = HttpReply::text(n.status().code() == ErrorCode::kResourceExhausted ? 413 : 400,
                              n.status().message());
      return std::nullopt;
    }
    if (*n == 0)
      break;
    body.append(chunk, *n);
    if (body.size() > limit) {
      error = HttpReply::text(413, "the body exceeds " + std::to_string(limit) + " bytes");
      return std::nullopt;
    }
  }
  return body;
}

HttpReply UiRoutes::handle(const UiRequest& req) {
  const std::string_view p = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (p.rfind("/api/", 0) != 0) {
    if (!get) {
      HttpReply r = HttpReply::text(405, "the web UI's files are read with GET");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    return static_files_.serve(p);
  }
  auto method_not_allowed = [](std::string allow) {
    HttpReply r = HttpReply::text(405, "method not allowed here (allowed: " + allow + ")");
    r.headers.emplace_back("Allow", std::move(allow));
    return r;
  };
  static constexpr std::string_view kOneshot = "/api/v1/samples/oneshot";
  static constexpr std::string_view kDynamic = "/api/v1/samples/dynamic";
  static constexpr std::string_view kAudio = "/api/v1/assets/audio";
  auto under = [&](std::string_view prefix) {
    return p == prefix || (p.rfind(prefix, 0) == 0 && p[prefix.size()] == '/');
  };
  if (under(kOneshot)) {
    const std::string_view rest = p.substr(kOneshot.size());
    const bool list = rest.empty() || rest == "/";
    if (get)
      return samples(req, rest, false);
    if (req.method == "POST" && list)
      return save_sample(req);
    if (req.method == "DELETE" && !list)
      return delete_sample(req, std::string(rest.substr(1)));
    return list ? method_not_allowed("GET, POST") : method_not_allowed("GET, DELETE");
  }
  if (under(kDynamic)) {
    if (get)
      return samples(req, p.substr(kDynamic.size()), true);
    return method_not_allowed("GET");
  }
  if (under(kAudio))
    return assets(req, p.substr(kAudio.size()));
  if (p == "/api/v1/validate") {
    if (req.method != "POST")
      return method_not_allowed("POST");
    return validate(req);
  }
  if (p == "/api/v1/auth/login") {
    return req.method == "POST" ? login(req) : method_not_allowed("POST");
  }
  if (p == "/api/v1/auth/logout") {
    return req.method == "POST" ? logout(req) : method_not_allowed("POST");
  }
  if (p == "/api/v1/auth/me") {
    return get ? me(req) : method_not_allowed("GET");
  }
  return HttpReply::text(404, "no route for " + std::string(req.method) + " " + std::string(p));
}

// ---------------------------------------------------------------------------------------------
// Samples

HttpReply UiRoutes::samples(const UiRequest& req, std::string_view rest, bool dynamic) {
  (void)req;
  const fs::path root = samples_root();
  const std::string system_scope = dynamic ? "dynamic" : "oneshot";
  if (rest.empty() || rest == "/") {
    json list = json::array();
    for (const auto& f : yaml_files(root / system_scope))
      list.push_back(sample_json(f, system_scope));
    for (const auto& f : yaml_files(root / "user")) {
      json s = sample_json(f, "user");
      // Dynamic list: the user's dynamic pipelines; oneshot list: everything the user saved
      // (as StreamKit: fragments and pipelines of both modes, each with its mode).
      if (!dynamic || s["mode"] == "dynamic")
        list.push_back(std::move(s));
    }
    return HttpReply::json(list.dump());
  }
  std::string id(rest.substr(1));
  std::string scope = system_scope;
  if (const auto slash = id.find('/'); slash != std::string::npos) {
    scope = id.substr(0, slash);
    id = id.substr(slash + 1);
  }
  if ((scope != system_scope && scope != "user") || !safe_file_name(id) ||
      id.find('.') != std::string::npos) {
    return HttpReply::text(400, "bad sample id '" + std::string(rest.substr(1)) + "' (expected " +
                                    system_scope + "/NAME or user/NAME)");
  }
  for (const char* ext : {".yml", ".yaml"}) {
    const fs::path f = root / scope / (id + ext);
    std::error_code ec;
    if (fs::is_regular_file(f, ec))
      return HttpReply::json(sample_json(f, scope).dump());
  }
  return HttpReply::text(404, "no sample '" + scope + "/" + id + "'");
}

HttpReply UiRoutes::save_sample(const UiRequest& req) {
  if (!may(req.role, "write_samples"))
    return denied(req.role, "save samples");
  HttpReply error;
  auto body_text = read_body(req, kMaxSampleBody, error);
  if (!body_text)
    return error;
  const json body = json::parse(*body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return HttpReply::text(
        400, "expected a JSON object {name, description?, yaml, overwrite?, is_fragment?}");
  }
  auto str = [&](const char* key, std::string& out, bool required) -> std::optional<HttpReply> {
    const auto it = body.find(key);
    if (it == body.end() || it->is_null()) {
      if (required)
        return HttpReply::text(400, std::string("'") + key + "' is required");
      return std::nullopt;
    }
    if (!it->is_string())
      return HttpReply::text(400, std::string("'") + key + "' must be a string");
    out = it->get<std::string>();
    return std::nullopt;
  };
  auto flag = [&](const char* key, bool& out) -> std::optional<HttpReply> {
    const auto it = body.find(key);
    if (it == body.end() || it->is_null())
      return std::nullopt;
    if (!it->is_boolean())
      return HttpReply::text(400, std::string("'") + key + "' must be true or false");
    out = it->get<bool>();
    return std::nullopt;
  };
  std::string name, description, yaml;
  bool overwrite = false, fragment = false;
  for (auto e :
       {str("name", name, true), str("description", description, false), str("yaml", yaml, true),
        flag("overwrite", overwrite), flag("is_fragment", fragment)}) {
    if (e)
      return *e;
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
    if (c == '\n' || c == '\r')
      c = ' ';
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
      for (const auto& e : compiled.errors)
        text += e.to_string() + "\n";
      text.pop_back();
      return HttpReply::text(400, text);
    }
  }
  const fs::path dir = samples_root() / "user";
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path file = dir / (slug + ".yml");
  if (!overwrite && fs::exists(file, ec)) {
    return HttpReply::text(
        409, "a sample 'user/" + slug + "' exists (send overwrite: true to replace it)");
  }
  std::string content = "# skit:name=" + name + "\n";
  if (!description.empty())
    content += "# skit:description=" + description + "\n";
  if (fragment)
    content += "# skit:fragment\n";
  content += yaml;
  if (!content.empty() && content.back() != '\n')
    content += '\n';
  const fs::path tmp = dir / ("." + slug + ".yml.tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out)
      return HttpReply::text(500, "cannot write " + tmp.string());
  }
  fs::rename(tmp, file, ec);
  if (ec)
    return HttpReply::text(500, "cannot save " + file.string() + ": " + ec.message());
  spdlog::info("saved sample user/{} ({} bytes)", slug, content.size());
  return HttpReply::json(sample_json(file, "user").dump());
}

HttpReply UiRoutes::delete_sample(const UiRequest& req, std::string id) {
  if (!may(req.role, "delete_samples"))
    return denied(req.role, "delete samples");
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
    const fs::path f = samples_root() / "user" / (name + ext);
    if (fs::is_regular_file(f, ec)) {
      fs::remove(f, ec);
      if (ec)
        return HttpReply::text(500, "cannot delete " + f.string() + ": " + ec.message());
      return HttpReply::json(json{{"id", id}}.dump());
    }
  }
  return HttpReply::text(404, "no sample '" + id + "'");
}

// ---------------------------------------------------------------------------------------------
// Audio assets

HttpReply UiRoutes::assets(const UiRequest& req, std::string_view rest) {
  const fs::path root = audio_root();
  auto asset_json = [&](const fs::path& f, bool system) {
    std::error_code ec;
    const std::string ext = lower(f.extension().string().substr(1));
    json a{{"id", f.filename().string()},
           {"name", f.stem().string()},
           {"path", fs::relative(f, engine_.config().base_dir, ec).generic_string()},
           {"format", ext},
           {"size_bytes", fs::file_size(f, ec)},
           {"is_system", system},
           {"url", std::string("/api/v1/assets/audio/file/") + (system ? "system/" : "user/") +
                       f.filename().string()}};
    const fs::path license = fs::path(f.string() + ".license");
    if (fs::is_regular_file(license, ec)) {
      std::string text = read_all(license);
      while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
      a["license"] = text;
    }
    return a;
  };
  auto files_in = [&](const fs::path& dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (!e.is_regular_file(ec) || name.front() == '.')
        continue;
      const std::string ext =
          e.path().has_extension() ? lower(e.path().extension().string().substr(1)) : "";
      if (audio_extension(ext))
        files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  };
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (rest.empty() || rest == "/") {
    if (get) {
      json list = json::array();
      for (const auto& f : files_in(root))
        list.push_back(asset_json(f, true));
      for (const auto& f : files_in(root / "user"))
        list.push_back(asset_json(f, false));
      return HttpReply::json(list.dump());
    }
    if (req.method == "POST")
      return upload_asset(req);
    HttpReply r = HttpReply::text(405, "GET or POST /api/v1/assets/audio");
    r.headers.emplace_back("Allow", "GET, POST");
    return r;
  }
  std::string id(rest.substr(1));
  if (id.rfind("file/", 0) == 0) {
    // GET /api/v1/assets/audio/file/{system|user}/{id}: the bytes (for the player, Convert).
    if (!get) {
      HttpReply r = HttpReply::text(405, "GET /api/v1/assets/audio/file/{system|user}/{id}");
      r.headers.emplace_back("Allow", "GET");
      return r;
    }
    const std::string rest2 = id.substr(5);
    const auto slash = rest2.find('/');
    const std::string scope = slash == std::string::npos ? "" : rest2.substr(0, slash);
    const std::string name = slash == std::string::npos ? "" : rest2.substr(slash + 1);
    if ((scope != "system" && scope != "user") || !safe_file_name(name)) {
      return HttpReply::text(400, "bad asset '" + rest2 + "' (expected system/NAME or user/NAME)");
    }
    const fs::path f = scope == "system" ? root / name : root / "user" / name;
    std::error_code ec;
    const std::string ext = f.has_extension() ? lower(f.extension().string().substr(1)) : "";
    if (!audio_extension(ext) || !fs::is_regular_file(f, ec)) {
      return HttpReply::text(404, "no audio asset '" + rest2 + "'");
    }
    HttpReply r{200, read_all(f), audio_content_type(ext), {}};
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }
  if (req.method != "DELETE") {
    HttpReply r = HttpReply::text(405,
                                  "DELETE /api/v1/assets/audio/{id} (the file: GET "
                                  "/api/v1/assets/audio/file/{system|user}/{id})");
    r.headers.emplace_back("Allow", "DELETE");
    return r;
  }
  if (!may(req.role, "delete_assets"))
    return denied(req.role, "delete assets");
  if (!safe_file_name(id))
    return HttpReply::text(400, "bad asset id '" + id + "'");
  std::error_code ec;
  const fs::path user_file = root / "user" / id;
  if (fs::is_regular_file(user_file, ec)) {
    fs::remove(user_file, ec);
    if (ec)
      return HttpReply::text(500, "cannot delete " + user_file.string() + ": " + ec.message());
    spdlog::info("deleted audio asset user/{}", id);
    return HttpReply::json(json{{"id", id}}.dump());
  }
  if (fs::is_regular_file(root / id, ec)) {
    return HttpReply::text(403, "'" + id + "' is a system asset; only user assets can be deleted");
  }
  return HttpReply::text(404, "no user audio asset '" + id + "'");
}

HttpReply UiRoutes::upload_asset(const UiRequest& req) {
  if (!may(req.role, "upload_assets"))
    return denied(req.role, "upload assets");
  const std::uint64_t limit = std::min<std::uint64_t>(kMaxAssetBytes, config_.max_body_bytes);
  if (req.content_length && *req.content_length > limit + 64 * 1024) {
    return HttpReply::text(413, "the upload is " + std::to_string(*req.content_length) +
                                    " bytes; audio assets are at most " + std::to_string(limit));
  }
  const std::string boundary = MultipartReader::boundary_of(std::string(req.content_type));
  if (boundary.empty() || !req.pull) {
    return HttpReply::text(400, "expected a multipart/form-data body with a 'file' part");
  }
  MultipartReader parts(req.pull, boundary);
  auto part = parts.next_part();
  if (!part)
    return HttpReply::text(400, part.status().message());
  if (!*part || (*part)->filename.empty()) {
    return HttpReply::text(400, "expected a file part (field 'file' with a filename)");
  }
  std::string name = fs::path((*part)->filename).filename().string();
  for (char& c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_'))
      c = '_';
  }
  while (!name.empty() && name.front() == '.')
    name.erase(0, 1);
  const std::string ext =
      fs::path(name).has_extension() ? lower(fs::path(name).extension().string().substr(1)) : "";
  if (name.empty() || name.size() > 128 ||
      std::find(std::begin(kAudioFormats), std::end(kAudioFormats), ext) ==
          std::end(kAudioFormats)) {
    return HttpReply::text(400, "'" + (*part)->filename +
                                    "': audio assets are .opus, .ogg, .flac, .mp3 or .wav files");
  }
  const fs::path dir = audio_root() / "user";
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path file = dir / name;
  if (fs::exists(file, ec) || fs::exists(audio_root() / name, ec)) {
    return HttpReply::text(409, "an audio asset '" + name + "' exists (delete it first)");
  }
  const fs::path tmp = dir / ("." + name + "." + std::to_string(::getpid()) + ".upload");
  std::uint64_t total = 0;
  std::string head;
  HttpReply failure;
  bool failed = false;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    char chunk[64 * 1024];
    while (true) {
      auto n = parts.read(chunk);
      if (!n) {
        failure = HttpReply::text(n.status().code() == ErrorCode::kResourceExhausted ? 413 : 400,
                                  n.status().message());
        failed = true;
        break;
      }
      if (*n == 0)
        break;
      total += *n;
      if (total > limit) {
        failure = HttpReply::text(413, "the file exceeds " + std::to_string(limit) + " bytes");
        failed = true;
        break;
      }
      if (head.size() < 16)
        head.append(chunk, std::min<std::size_t>(*n, 16 - head.size()));
      out.write(chunk, static_cast<std::streamsize>(*n));
    }
    if (!failed && !out) {
      failure = HttpReply::text(500, "cannot write " + tmp.string());
      failed = true;
    }
  }
  if (!failed) {
    const std::string sniffed = sniff_audio(head);
    const std::string expected = ext == "opus" ? "ogg" : ext;
    if (total == 0) {
      failure = HttpReply::text(400, "'" + name + "' is empty");
      failed = true;
    } else if (sniffed != expected) {
      failure =
          HttpReply::text(400, "'" + name + "' is not a " + ext + " file" +
                                   (sniffed.empty() ? "" : " (it looks like " + sniffed + ")"));
      failed = true;
    }
  }
  if (failed) {
    fs::remove(tmp, ec);
    return failure;
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return HttpReply::text(500, "cannot save " + file.string());
  }
  spdlog::info("uploaded audio asset user/{} ({} bytes)", name, total);
  std::error_code rel_ec;
  return HttpReply::json(json{
      {"id", name},
      {"name", fs::path(name).stem().string()},
      {"path", fs::relative(file, engine_.config().base_dir, rel_ec).generic_string()},
      {"format", ext},
      {"size_bytes", total},
      {"is_system", false},
      {"url", "/api/v1/assets/audio/file/user/" +
                  name}}.dump());
}

// ---------------------------------------------------------------------------------------------
// Validate

HttpReply UiRoutes::validate(const UiRequest& req) {
  HttpReply error;
  auto body_text = read_body(req, 2 * config_.max_config_bytes + 64 * 1024, error);
  if (!body_text)
    return error;
  const json body = json::parse(*body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("yaml") ||
      !body["yaml"].is_string()) {
    return HttpReply::text(
        400, "expected a JSON object {\"yaml\": string, \"mode\"?: \"oneshot\"|\"dynamic\"}");
  }
  const std::string yaml = body["yaml"].get<std::string>();
  if (yaml.size() > config_.max_config_bytes) {
    return HttpReply::text(413, "'yaml' is " + std::to_string(yaml.size()) +
                                    " bytes; limits.max_config_bytes is " +
                                    std::to_string(config_.max_config_bytes));
  }
  std::string mode;
  if (const auto it = body.find("mode"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || (*it != "oneshot" && *it != "dynamic")) {
      return HttpReply::text(400, "'mode' must be \"oneshot\" or \"dynamic\"");
    }
    mode = it->get<std::string>();
  }
  auto plain = supervisor::compile_pipeline_yaml(yaml);
  std::vector<Status> errors = plain.errors;
  json pipeline = nullptr;
  const std::string declared = mode_name(plain.pipeline.mode());
  if (mode.empty())
    mode = declared;
  if (errors.empty()) {
    if (mode != declared) {
      errors.emplace_back(ErrorCode::kInvalidArgument,
                          "the pipeline's mode is " + declared + ", not " + mode);
    } else if (mode == "oneshot") {
      const auto& nodes = plain.pipeline.nodes();
      const bool has_media = std::any_of(nodes.begin(), nodes.end(), [](const v1::NodeSpec& n) {
        return n.kind() == "streamkit::http_input";
      });
      auto compiled = engine_.compile_oneshot(yaml, has_media);
      errors = compiled.errors;
      if (compiled.ok())
        pipeline = model_json(plain.pipeline);  // params as written (not the confined paths)
    } else {
      // A session's rules, as the session manager applies them (supervisor/entry_rules).
      errors = supervisor::check_entry(plain.pipeline, supervisor::EntryPoint::kSession, {});
      v1::Pipeline confined = plain.pipeline;
      for (auto& s : engine_.path_policy().confine_pipeline(confined))
        errors.push_back(std::move(s));
      if (errors.empty())
        pipeline = model_json(plain.pipeline);
    }
  }
  return HttpReply::json(json{
      {"valid", errors.empty()},
      {"mode", mode},
      {"errors", diagnostics_json(errors)},
      {"pipeline", pipeline}}.dump());
}

// ---------------------------------------------------------------------------------------------
// Browser login

HttpReply UiRoutes::login(const UiRequest& req) {
  HttpReply error;
  auto body_text = read_body(req, kMaxLoginBody, error);
  if (!body_text)
    return error;
  if (config_.tokens.empty()) {
    return HttpReply::text(400, "authentication is not enabled on this server (no auth.tokens)");
  }
  const json body = json::parse(*body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("token") ||
      !body["token"].is_string()) {
    return HttpReply::text(400, "expected a JSON object {\"token\": string}");
  }
  const TokenConfig* who = find_token(config_, body["token"].get<std::string>());
  if (who == nullptr) {
    spdlog::info("browser login refused: unknown token");
    return HttpReply::text(401, "invalid token");
  }
  const std::string id = browsers_.create(*who);
  spdlog::info("browser login: token '{}' ({})", who->name, role_name(who->role));
  HttpReply r = HttpReply::json(json{
      {"auth_enabled", true},
      {"name", who->name},
      {"role", role_name(who->role)},
      {"permissions",
       permissions_of(who->role)}}.dump());
  r.headers.emplace_back("Set-Cookie", session_cookie(id));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpReply UiRoutes::logout(const UiRequest& req) {
  HttpReply error;
  if (!read_body(req, kMaxLoginBody, error))
    return error;
  const std::string id = cookie_value(req.cookie, kSessionCookie);
  if (!id.empty())
    browsers_.remove(id);
  HttpReply r = HttpReply::json(json{{"logged_out", !id.empty()}}.dump());
  r.headers.emplace_back("Set-Cookie", session_cookie(""));
  return r;
}

HttpReply UiRoutes::me(const UiRequest& req) {
  if (config_.tokens.empty()) {
    return HttpReply::json(json{{"auth_enabled", false},
                                {"name", nullptr},
                                {"role", "admin"},
                                {"permissions", permissions_of(Role::kAdmin)}}
                               .dump());
  }
  const Identity who = identify(config_, browsers_, req.authorization, req.cookie);
  if (who.token == nullptr) {
    HttpReply r = HttpReply::text(401, req.authorization.empty() && req.cookie.empty()
                                           ? "not logged in"
                                           : "not logged in (unknown or expired token or session)");
    return r;
  }
  return HttpReply::json(json{{"auth_enabled", true},
                              {"name", who.token->name},
                              {"role", role_name(who.token->role)},
                              {"via", who.via_cookie ? "cookie" : "bearer"},
                              {"permissions", permissions_of(who.token->role)}}
                             .dump());
}

}  // namespace skit::gateway
