// SPDX-License-Identifier: MPL-2.0
// skit nodes: every node kind with its pins and params, like gst-inspect.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "commands.hpp"
#include "skit/core/registry.hpp"
#include "skit/supervisor/plugins.hpp"

namespace skit::cli {

namespace {

struct NodesArgs {
  std::string kind;
  bool json = false;
  std::string plugins_dir;
};

void print_kind(const NodeDescriptor& d) {
  std::printf("%s  [%s]%s\n  %s\n", d.kind.c_str(), d.category.c_str(),
              d.execution == NodeExecution::kHost ? "  (host-side)" : "", d.summary.c_str());
  for (const auto& in : d.inputs) {
    std::string types;
    for (const auto& t : in.accepts) {
      types += (types.empty() ? "" : " | ") + to_string(t);
    }
    std::printf("  in  %-10s %s%s\n", in.name.c_str(), types.c_str(),
                in.cardinality == Cardinality::kDynamic ? "  (in_0, in_1, ...)" : "");
  }
  for (const auto& out : d.outputs) {
    std::printf("  out %-10s %s\n", out.name.c_str(), to_string(out.produces).c_str());
  }
  for (const auto& f : d.params->fields()) {
    std::string extra;
    if (!f.numeric_choices.empty()) {
      std::string values;
      for (const double v : f.numeric_choices) {
        values += (values.empty() ? "" : "|") + format_number(v);
      }
      extra += "  one of " + values;
    } else if (f.min || f.max) {
      extra += "  range " + (f.min ? format_number(*f.min) : std::string("-inf")) + ".." +
               (f.max ? format_number(*f.max) : std::string("inf"));
    }
    if (!f.choices.empty()) {
      std::string choices;
      for (const auto& c : f.choices) {
        choices += (choices.empty() ? "" : "|") + c;
      }
      extra += "  one of " + choices;
    }
    if (f.file_access != FileAccess::kNone) {
      extra += f.file_access == FileAccess::kRead ? "  file (read)" : "  file (write)";
    }
    if (f.tunable) {
      extra += "  tunable";
    }
    static constexpr const char* kTypes[] = {"bool", "integer", "number", "string", "object",
                                             "list"};
    const std::string presence = f.required ? "required" : "default " + f.default_value.dump();
    std::printf("  param %-22s %-7s %s%s\n      %s\n", f.name.c_str(),
                kTypes[static_cast<int>(f.type)], presence.c_str(), extra.c_str(),
                f.doc.c_str());
  }
  std::printf("\n");
}

int nodes(const NodesArgs& a) {
  const auto& registry = NodeRegistry::builtin();
  // Plugins are probed by sandboxed workers, as the server does; none is loaded here.
  std::unique_ptr<supervisor::PluginCatalog> plugins;
  if (!a.plugins_dir.empty()) {
    supervisor::PluginCatalogOptions o;
    o.directory = a.plugins_dir;
    o.worker_executable = self_executable();
    plugins = std::make_unique<supervisor::PluginCatalog>(o);
    for (const auto& error : plugins->load_directory()) {
      std::fprintf(stderr, "skit nodes: %s\n", error.message().c_str());
    }
  }
  if (!a.kind.empty() && registry.find(a.kind) == nullptr) {
    const std::string closest = registry.closest_kind(a.kind);
    std::fprintf(stderr, "skit nodes: unknown kind '%s'%s\n", a.kind.c_str(),
                 closest.empty() ? " (skit nodes lists them all)"
                                 : (" (did you mean '" + closest + "'?)").c_str());
    return 2;
  }
  const auto all = registry.all();
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto* d : all) {
      if (a.kind.empty() || d->kind == a.kind) {
        out.push_back(d->to_json());
      }
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  for (const auto* d : all) {
    if (a.kind.empty() || d->kind == a.kind) {
      print_kind(*d);
    }
  }
  return 0;
}

}  // namespace

Command add_nodes_command(CLI::App& app) {
  auto args = std::make_shared<NodesArgs>();
  CLI::App* cmd = app.add_subcommand("nodes", "List every node kind with its pins and params");
  cmd->add_option("kind", args->kind, "Show only this kind");
  cmd->add_flag("--json", args->json,
                "Print the schema as JSON (what GET /api/v1/schema/nodes serves)");
  cmd->add_option("--plugins-dir", args->plugins_dir,
                  "Also list the native plugins in DIR/native (plugins.directory)");
  cmd->footer("Types, defaults, ranges and accepted values come from each kind's params "
              "schema.\nExit status: 0, or 2 for an unknown kind.");
  return [args] { return nodes(*args); };
}

}  // namespace skit::cli
