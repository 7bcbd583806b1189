// SPDX-License-Identifier: MPL-2.0
// skit client: a running server, from the command line (StreamKit's skit-cli): sessions
// (list, create, destroy, pipeline), tuning a node, watching events, and oneshot requests.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <yaml-cpp/yaml.h>

#include "cli_common.hpp"
#include "commands.hpp"
#include "http_client.hpp"
#include "output_file.hpp"

namespace skit::cli {

namespace {

using nlohmann::json;

struct ClientArgs {
  std::string server = "http://127.0.0.1:4545";
  std::string token;
  bool json = false;
  // per command
  std::string pipeline;
  std::string name;
  std::string session;
  std::string node;
  std::string param;
  std::string value;
  std::string input;
  std::string output;
  bool pretty = false;
};

int fail(const std::string& what) {
  std::fprintf(stderr, "skit client: %s\n", what.c_str());
  return 1;
}

/// The server's answer: 0 for 2xx, else its message and exit 1 (2 for a 4xx: the request).
int check(const Result<HttpResult>& r) {
  if (!r) {
    return fail(r.status().message());
  }
  if (r->status >= 200 && r->status < 300) {
    return 0;
  }
  std::string body = r->body;
  while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) {
    body.pop_back();
  }
  std::fprintf(stderr, "skit client: HTTP %u: %s\n", r->status, body.c_str());
  return r->status >= 400 && r->status < 500 ? 2 : 1;
}

std::string state_text(const json& state) {
  if (state.is_string()) {
    return state.get<std::string>();
  }
  if (state.is_object() && !state.empty()) {
    const auto first = state.begin();
    const std::string reason = first->is_object() ? first->value("reason", "") : "";
    return reason.empty() ? first.key() : first.key() + " (" + reason + ")";
  }
  return state.dump();
}

/// A YAML scalar or flow value as JSON: "0.5" -> 0.5, "true" -> true, "[1, 2]" -> [1, 2].
json yaml_value(const YAML::Node& n) {
  if (n.IsSequence()) {
    json out = json::array();
    for (const auto& item : n) {
      out.push_back(yaml_value(item));
    }
    return out;
  }
  if (n.IsMap()) {
    json out = json::object();
    for (const auto& kv : n) {
      out[kv.first.Scalar()] = yaml_value(kv.second);
    }
    return out;
  }
  if (n.IsNull()) {
    return nullptr;
  }
  const std::string s = n.Scalar();
  if (n.Tag() != "!") {  // unquoted: a number or a boolean where it reads as one
    if (s == "true" || s == "false") {
      return s == "true";
    }
    try {
      std::size_t used = 0;
      const long long i = std::stoll(s, &used);
      if (used == s.size()) {
        return i;
      }
      const double d = std::stod(s, &used);
      if (used == s.size()) {
        return d;
      }
    } catch (const std::exception&) {
    }
  }
  return s;
}

int list(HttpClient& c, const ClientArgs& a) {
  auto r = c.request("GET", "/api/v1/sessions");
  if (int code = check(r); code != 0) {
    return code;
  }
  const json sessions = json::parse(r->body, nullptr, false);
  if (a.json) {
    std::printf("%s\n", sessions.dump(2).c_str());
    return 0;
  }
  std::printf("%-38s %-24s %s\n", "ID", "NAME", "CREATED");
  for (const auto& s : sessions) {
    std::printf("%-38s %-24s %s\n", s.value("id", "").c_str(), s.value("name", "").c_str(),
                s.value("created_at", "").c_str());
  }
  return 0;
}

int create(HttpClient& c, const ClientArgs& a) {
  auto yaml = read_document(a.pipeline);
  if (!yaml) {
    return fail(yaml.status().message());
  }
  json body{{"yaml", *yaml}};
  if (!a.name.empty()) {
    body["name"] = a.name;
  }
  auto r = c.request("POST", "/api/v1/sessions", body);
  if (int code = check(r); code != 0) {
    return code;
  }
  const json created = json::parse(r->body, nullptr, false);
  if (a.json) {
    std::printf("%s\n", created.dump(2).c_str());
  } else {
    std::printf("%s %s\n", created.value("session_id", "").c_str(),
                created.value("name", "").c_str());
  }
  return 0;
}

int destroy(HttpClient& c, const ClientArgs& a) {
  auto r = c.request("DELETE", "/api/v1/sessions/" + a.session);
  if (int code = check(r); code != 0) {
    return code;
  }
  std::printf("destroyed %s\n", a.session.c_str());
  return 0;
}

int pipeline(HttpClient& c, const ClientArgs& a) {
  auto r = c.request("GET", "/api/v1/sessions/" + a.session + "/pipeline");
  if (int code = check(r); code != 0) {
    return code;
  }
  const json p = json::parse(r->body, nullptr, false);
  if (a.json) {
    std::printf("%s\n", p.dump(2).c_str());
    return 0;
  }
  std::printf("%-20s %-28s %-22s %10s %10s %8s %8s\n", "NODE", "KIND", "STATE", "RECEIVED",
              "SENT", "PID", "RESTARTS");
  const json nodes = p.contains("nodes") ? p["nodes"] : json::object();
  for (const auto& [id, n] : nodes.items()) {
    const json stats = n.value("stats", json::object());
    std::printf("%-20s %-28s %-22s %10llu %10llu %8d %8u\n", id.c_str(),
                n.value("kind", "").c_str(), state_text(n.value("state", json())).c_str(),
                stats.value("received", 0ULL), stats.value("sent", 0ULL),
                n.value("worker_pid", 0), n.value("restarts", 0U));
  }
  const json connections = p.contains("connections") ? p["connections"] : json::array();
  for (const auto& conn : connections) {
    std::printf("  %s.%s -> %s.%s\n", conn.value("from_node", "").c_str(),
                conn.value("from_pin", "").c_str(), conn.value("to_node", "").c_str(),
                conn.value("to_pin", "").c_str());
  }
  return 0;
}

int tune(HttpClient& c, const ClientArgs& a) {
  json value;
  try {
    value = yaml_value(YAML::Load(a.value));
  } catch (const YAML::Exception& e) {
    std::fprintf(stderr, "skit client: the value '%s' is not YAML: %s\n", a.value.c_str(),
                 e.msg.c_str());
    return 2;
  }
  const json request{{"type", "request"},
                     {"correlation_id", "tune"},
                     {"payload",
                      {{"action", "tunenode"},
                       {"session_id", a.session},
                       {"node_id", a.node},
                       {"message", {{"UpdateParams", {{a.param, value}}}}}}}};
  int code = 1;
  std::string error = "the server closed the connection without an answer";
  const Status s = c.control(
      request.dump(),
      [&](const json& m) {
        if (m.value("type", "") != "response" || m.value("correlation_id", "") != "tune") {
          return true;  // events: not ours
        }
        const json payload = m.value("payload", json::object());
        if (payload.value("action", "") == "success") {
          code = 0;
        } else {
          error = payload.value("message", payload.dump());
          code = 2;
        }
        return false;
      },
      g_cancel);
  if (!s.is_ok()) {
    return fail(s.message());
  }
  if (code != 0) {
    std::fprintf(stderr, "skit client: %s\n", error.c_str());
    return code;
  }
  std::printf("%s.%s = %s\n", a.node.c_str(), a.param.c_str(), value.dump().c_str());
  return 0;
}

int watch(HttpClient& c, const ClientArgs& a) {
  const Status s = c.control(
      "",
      [&](const json& m) {
        if (m.value("type", "") != "event") {
          return true;
        }
        const json payload = m.value("payload", json::object());
        if (!a.session.empty() && payload.value("session_id", "") != a.session) {
          return true;
        }
        std::printf("%s\n", a.pretty ? payload.dump(2).c_str() : payload.dump().c_str());
        std::fflush(stdout);
        return true;
      },
      g_cancel);
  return s.is_ok() ? 0 : fail(s.message());
}

int oneshot(HttpClient& c, const ClientArgs& a) {
  auto yaml = read_document(a.pipeline);
  if (!yaml) {
    return fail(yaml.status().message());
  }
  int media = -1;
  if (!a.input.empty()) {
    media = a.input == "-" ? STDIN_FILENO : ::open(a.input.c_str(), O_RDONLY | O_CLOEXEC);
    if (media < 0) {
      std::fprintf(stderr, "skit client: cannot open '%s': %s\n", a.input.c_str(),
                   std::strerror(errno));
      return 2;
    }
  }
  OutputFile out;
  if (Status s = out.open(a.output); !s.is_ok()) {
    return fail(s.message());
  }
  std::string request_id;
  auto r = c.process(
      *yaml, media,
      [&](std::string_view bytes) -> Status {
        std::size_t done = 0;
        while (done < bytes.size()) {
          const ssize_t n = ::write(out.fd(), bytes.data() + done, bytes.size() - done);
          if (n < 0 && errno != EINTR) {
            return Status(ErrorCode::kUnavailable, std::string("writing: ") + std::strerror(errno));
          }
          done += n > 0 ? static_cast<std::size_t>(n) : 0;
        }
        return Status::ok();
      },
      [&](const HttpResult& head) {
        const auto it = head.headers.find("x-skit-request-id");
        request_id = it == head.headers.end() ? "" : it->second;
      });
  if (media > STDERR_FILENO) {
    ::close(media);
  }
  if (!r) {
    std::fprintf(stderr, "skit client: %s%s\n", r.status().message().c_str(),
                 request_id.empty() ? "" : (" (request " + request_id + ")").c_str());
    return 1;
  }
  if (int code = check(r); code != 0) {
    return code;
  }
  if (Status s = out.commit(); !s.is_ok()) {
    return fail(s.message());
  }
  return 0;
}

}  // namespace

Command add_client_command(CLI::App& app) {
  auto a = std::make_shared<ClientArgs>();
  if (const char* token = std::getenv("SKIT_TOKEN")) {
    a->token = token;
  }
  CLI::App* cmd = app.add_subcommand(
      "client", "Drive a running server: sessions, tuning, events, oneshot requests");
  cmd->add_option("-s,--server", a->server, "Server URL")->capture_default_str();
  cmd->add_option("--token", a->token, "Bearer token (default: $SKIT_TOKEN)");
  cmd->add_flag("--json", a->json, "Print the server's JSON instead of tables");
  cmd->require_subcommand(1);

  auto* c_list = cmd->add_subcommand("list", "List the sessions");
  auto* c_create = cmd->add_subcommand("create", "Create a session from a dynamic pipeline");
  c_create->add_option("pipeline", a->pipeline, "Pipeline YAML ('-' = standard input)")->required();
  c_create->add_option("-n,--name", a->name, "Session name (letters, digits, '-', '_', '.')");
  auto* c_destroy = cmd->add_subcommand("destroy", "Destroy a session");
  c_destroy->add_option("session", a->session, "Session id or name")->required();
  auto* c_pipeline = cmd->add_subcommand("pipeline", "A session's nodes with state and stats");
  c_pipeline->add_option("session", a->session, "Session id or name")->required();
  auto* c_tune = cmd->add_subcommand("tune", "Change a param of a running node");
  c_tune->add_option("session", a->session, "Session id or name")->required();
  c_tune->add_option("node", a->node, "Node id")->required();
  c_tune->add_option("param", a->param, "Param name")->required();
  c_tune->add_option("value", a->value, "New value, as YAML (0.5, true, text)")->required();
  auto* c_watch = cmd->add_subcommand("watch", "Print session events as JSON lines until Ctrl-C");
  c_watch->add_option("session", a->session, "Only this session's events (id)");
  c_watch->add_flag("--pretty", a->pretty, "Indented JSON");
  auto* c_oneshot = cmd->add_subcommand("oneshot", "Run a oneshot pipeline on the server");
  c_oneshot->add_option("pipeline", a->pipeline, "Pipeline YAML")->required();
  c_oneshot->add_option("output", a->output, "Where the response goes ('-' = standard output)")
      ->required();
  c_oneshot->add_option("-i,--input", a->input,
                        "Media for streamkit::http_input ('-' = standard input)");
  cmd->footer("Exit status: 0 success, 1 the server or the network failed, 2 the server "
              "refused the request (4xx).");

  return [=]() -> int {
    auto url = parse_server_url(a->server);
    if (!url) {
      std::fprintf(stderr, "skit client: %s\n", url.status().message().c_str());
      return 2;
    }
    HttpClient client(*url, a->token);
    if (c_list->parsed()) return list(client, *a);
    if (c_create->parsed()) return create(client, *a);
    if (c_destroy->parsed()) return destroy(client, *a);
    if (c_pipeline->parsed()) return pipeline(client, *a);
    if (c_tune->parsed()) return tune(client, *a);
    if (c_watch->parsed()) return watch(client, *a);
    if (c_oneshot->parsed()) return oneshot(client, *a);
    return 2;
  };
}

}  // namespace skit::cli
