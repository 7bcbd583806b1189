// SPDX-License-Identifier: MPL-2.0
// skit validate: compiles and type-checks pipelines without running them, and says where each
// can run: `skit run`, POST /api/v1/process, or a session (the entry rules of
// supervisor/entry_rules.hpp, the same ones the server applies).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "commands.hpp"
#include "skit/supervisor/entry_rules.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"

namespace skit::cli {

namespace {

using nlohmann::json;
using supervisor::EntryPoint;

struct ValidateArgs {
  std::vector<std::string> files;
  bool json = false;
  std::string target = "any";
};

json diagnostic_json(const Status& s) {
  json d{{"message", s.message()}, {"code", error_code_name(s.code())}};
  if (s.where().line > 0) {
    d["line"] = s.where().line;
    d["column"] = s.where().column;
  }
  if (!s.where().node_id.empty()) {
    d["node"] = s.where().node_id;
  }
  if (!s.where().param.empty()) {
    d["param"] = s.where().param;
  }
  return d;
}

json diagnostics_json(const std::vector<Status>& list) {
  json out = json::array();
  for (const auto& s : list) {
    out.push_back(diagnostic_json(s));
  }
  return out;
}

std::string text_of(const Status& s) {
  std::string where;
  if (!s.where().node_id.empty()) {
    where += "node '" + s.where().node_id + "': ";
  }
  if (!s.where().param.empty()) {
    where += "param '" + s.where().param + "': ";
  }
  return where + s.message();
}

/// One document: prints (or appends to `report`) its verdict; returns whether it is valid.
bool validate_one(const std::string& file, const ValidateArgs& a, json& report) {
  json entry{{"file", file}};
  auto text = read_document(file);
  const std::string name = file == "-" ? "<stdin>" : file;
  if (!text) {
    entry["valid"] = false;
    entry["errors"] = json::array({diagnostic_json(text.status())});
    if (!a.json) {
      std::fprintf(stderr, "skit validate: %s\n", text.status().to_string().c_str());
    }
    report.push_back(entry);
    return false;
  }
  auto compiled = supervisor::compile_pipeline_yaml(*text);
  std::vector<Status> errors = compiled.errors;
  std::vector<Status> warnings;
  std::vector<std::string> notes;
  json entry_points = json::object();
  const auto& p = compiled.pipeline;
  const bool dynamic = p.mode() == v1::PIPELINE_MODE_DYNAMIC;
  if (compiled.ok()) {
    warnings = supervisor::unconnected_outputs(p);
    bool has_input = false;
    bool has_output = false;
    for (const auto& n : p.nodes()) {
      has_input = has_input || n.kind() == "streamkit::http_input";
      has_output = has_output || n.kind() == "streamkit::http_output";
    }
    const std::vector<std::pair<EntryPoint, std::string>> entries =
        dynamic ? std::vector<std::pair<EntryPoint, std::string>>{{EntryPoint::kSession, "session"}}
                : std::vector<std::pair<EntryPoint, std::string>>{{EntryPoint::kRun, "run"},
                                                                  {EntryPoint::kProcess, "process"}};
    bool any = false;
    for (const auto& [entry_point, key] : entries) {
      const auto problems =
          supervisor::check_entry(p, entry_point, {.has_input = has_input, .has_output = has_output});
      entry_points[key] = json{{"ok", problems.empty()}, {"problems", diagnostics_json(problems)}};
      any = any || problems.empty();
      const bool required = a.target == key;
      for (const auto& problem : problems) {
        if (required) {
          errors.push_back(problem);
        } else {
          notes.push_back(std::string(supervisor::entry_point_name(entry_point)) +
                          " would refuse it: " + text_of(problem));
        }
      }
    }
    if (!any && a.target == "any") {
      // Nothing can run it: the problems are errors, not notes.
      for (const auto& [entry_point, key] : entries) {
        for (const auto& problem : supervisor::check_entry(
                 p, entry_point, {.has_input = has_input, .has_output = has_output})) {
          errors.push_back(problem);
        }
      }
      notes.clear();
    }
    if (a.target != "any" && !entry_points.contains(a.target)) {
      errors.emplace_back(ErrorCode::kInvalidArgument,
                          std::string("a ") + (dynamic ? "dynamic" : "oneshot") +
                              " pipeline does not run as " + a.target);
    }
  }
  const bool valid = errors.empty();
  entry["valid"] = valid;
  entry["errors"] = diagnostics_json(errors);
  entry["warnings"] = diagnostics_json(warnings);
  entry["notes"] = notes;
  if (compiled.ok()) {
    entry["mode"] = dynamic ? "dynamic" : "oneshot";
    entry["nodes"] = p.nodes_size();
    entry["connections"] = p.connections_size();
    entry["entry_points"] = entry_points;
  }
  report.push_back(entry);
  if (a.json) {
    return valid;
  }
  for (const auto& e : errors) {
    std::fprintf(stderr, "%s\n", supervisor::format_diagnostic(name, e).c_str());
  }
  for (const auto& w : warnings) {
    std::fprintf(stderr, "%s\n", supervisor::format_diagnostic(name, w, "warning").c_str());
  }
  if (!valid) {
    std::fprintf(stderr, "%s: %zu error(s)\n", name.c_str(), errors.size());
    return false;
  }
  std::printf("%s: valid (%d nodes, %d connections, mode %s)\n", name.c_str(), p.nodes_size(),
              p.connections_size(), dynamic ? "dynamic" : "oneshot");
  for (const auto& n : notes) {
    std::printf("%s: note: %s\n", name.c_str(), n.c_str());
  }
  return true;
}

int validate(const ValidateArgs& a) {
  json report = json::array();
  bool all_valid = true;
  for (const auto& f : a.files) {
    all_valid = validate_one(f, a, report) && all_valid;
  }
  if (a.json) {
    std::printf("%s\n", report.dump(2).c_str());
  }
  return all_valid ? 0 : 2;
}

}  // namespace

Command add_validate_command(CLI::App& app) {
  auto args = std::make_shared<ValidateArgs>();
  CLI::App* cmd = app.add_subcommand("validate", "Check pipelines without running them");
  cmd->add_option("pipelines", args->files, "Pipeline YAML files ('-' = standard input)")
      ->required();
  cmd->add_flag("--json", args->json,
                "Print the verdicts as JSON (errors, warnings and notes with line, column, "
                "node and param), for editors");
  cmd->add_option("--for", args->target,
                  "Require that the pipeline runs here: run (skit run), process (POST "
                  "/api/v1/process), session; any: wherever it can")
      ->check(CLI::IsMember({"any", "run", "process", "session"}))
      ->capture_default_str();
  cmd->footer(
      "Every error is printed as FILE:LINE:COLUMN: error: ..., all at once. A oneshot\n"
      "pipeline that only `skit run` can run (files in and out) is valid, with a note that\n"
      "POST /api/v1/process would refuse it; --for process makes that an error.\n"
      "Exit status: 0 valid, 2 invalid.");
  return [args] { return validate(*args); };
}

}  // namespace skit::cli
