// SPDX-License-Identifier: MPL-2.0
// POST /api/v1/validate {yaml, mode?}: a pipeline checked as the server would run it (oneshot:
// as POST /api/v1/process compiles it; dynamic: a session's entry rules and the confined
// paths), with every problem and its place, and the compiled model for the editor.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "http_routes.hpp"
#include "skit/supervisor/entry_rules.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"

namespace skit::gateway {

using nlohmann::json;

namespace {

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
    if (n.isolation() == v1::ISOLATION_DEDICATED) {
      nodes[n.id()]["isolation"] = "dedicated";
    }
    order.push_back(n.id());
  }
  json connections = json::array();
  for (const auto& c : p.connections()) {
    json j{{"from_node", c.from_node()},
           {"from_pin", c.from_pin()},
           {"to_node", c.to_node()},
           {"to_pin", c.to_pin()}};
    if (c.mode() == v1::CONNECTION_MODE_BEST_EFFORT) {
      j["mode"] = "best_effort";
    }
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
    if (!e.where().node_id.empty()) {
      item["node"] = e.where().node_id;
    }
    if (!e.where().param.empty()) {
      item["param"] = e.where().param;
    }
    list.push_back(item);
  }
  return list;
}

}  // namespace

HttpReply validate(HttpContext& ctx, HttpExchange& ex) {
  HttpReply error;
  auto body_text = ex.read_body(2 * ctx.config.max_config_bytes + 64 * 1024, error);
  if (!body_text) {
    return error;
  }
  const json body = json::parse(*body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("yaml") ||
      !body["yaml"].is_string()) {
    return HttpReply::text(
        400, "expected a JSON object {\"yaml\": string, \"mode\"?: \"oneshot\"|\"dynamic\"}");
  }
  const std::string yaml = body["yaml"].get<std::string>();
  if (yaml.size() > ctx.config.max_config_bytes) {
    return HttpReply::text(413, "'yaml' is " + std::to_string(yaml.size()) +
                                    " bytes; limits.max_config_bytes is " +
                                    std::to_string(ctx.config.max_config_bytes));
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
  if (mode.empty()) {
    mode = declared;
  }
  if (errors.empty()) {
    if (mode != declared) {
      errors.emplace_back(ErrorCode::kInvalidArgument,
                          "the pipeline's mode is " + declared + ", not " + mode);
    } else if (mode == "oneshot") {
      const auto& nodes = plain.pipeline.nodes();
      const bool has_media = std::any_of(nodes.begin(), nodes.end(), [](const v1::NodeSpec& n) {
        return n.kind() == "streamkit::http_input";
      });
      auto compiled = ctx.engine.compile_oneshot(yaml, has_media);
      errors = compiled.errors;
      if (compiled.ok()) {
        pipeline = model_json(plain.pipeline);  // params as written (not the confined paths)
      }
    } else {
      // A session's rules, as the session manager applies them (supervisor/entry_rules).
      errors = supervisor::check_entry(plain.pipeline, supervisor::EntryPoint::kSession, {});
      v1::Pipeline confined = plain.pipeline;
      for (auto& s : ctx.engine.path_policy().confine_pipeline(confined)) {
        errors.push_back(std::move(s));
      }
      if (errors.empty()) {
        pipeline = model_json(plain.pipeline);
      }
    }
  }
  return HttpReply::json(json{{"valid", errors.empty()},
                              {"mode", mode},
                              {"errors", diagnostics_json(errors)},
                              {"pipeline", pipeline}}
                             .dump());
}

}  // namespace skit::gateway
