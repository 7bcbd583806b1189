// SPDX-License-Identifier: MPL-2.0
// The node registry: every node kind with its pins, params schema and factory.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/pins.hpp"

namespace skit {

/// Where a node runs.
enum class NodeExecution : std::uint8_t {
  kWorker,  // in a sandboxed worker process (every media node)
  kHost,    // in the supervisor, fed by the request (streamkit::http_input/http_output)
};

/// A kind implemented by a native plugin (plugin::native::*): workers load `library_path`, the
/// server's private copy of the plugin, and run it; the server itself never loads it.
struct NativePluginRef {
  std::string library_path;
  std::string metadata_json;  // the plugin's metadata as read by the probe worker
  /// Longest single plugin call before the node is declared hung (plugins.native_call_timeout_secs).
  std::optional<std::chrono::milliseconds> call_timeout;
};

struct NodeDescriptor {
  std::string kind;
  std::string summary;
  std::string category;
  std::vector<InputPinSpec> inputs;
  std::vector<OutputPinSpec> outputs;
  const ParamSchema* params = nullptr;
  std::shared_ptr<const ParamSchema> owned_params;  // a plugin's schema, built at load time
  /// Set for plugin kinds: such a node always runs in a worker of its own.
  std::shared_ptr<const NativePluginRef> native_plugin;
  std::vector<std::string> categories;  // beyond `category` (plugins declare several)
  NodeExecution execution = NodeExecution::kWorker;
  bool pulls_input = false;  // runs produce() and reads input 0 with ctx.read_input()
  /// A param that counts the connected members of the kind's dynamic input family; a oneshot
  /// pipeline's compiler fills it in (the mixer's num_inputs). Empty: none.
  std::string input_count_param;
  /// The node opens network sockets (a fetcher, a transport): its worker's sandbox allows
  /// AF_INET/AF_INET6 (others' do not).
  bool needs_network = false;
  /// The HTTP family whose requests reach this node (Node::on_request): "whip" serves
  /// POST/DELETE /whip/{session}/{node id}[/{resource}], "whep" likewise. Empty: none.
  std::string http_endpoint;
  /// Returns every problem with `params` (empty = valid).
  std::function<std::vector<Status>(const Json& params)> validate_params;
  /// Creates an instance from already-validated params.
  std::function<Result<std::unique_ptr<Node>>(const Json& params)> create;
  /// Largest packet the node writes on an output, from its params (sizes shm slots).
  std::function<std::size_t(const Json& params)> max_packet_bytes;

  [[nodiscard]] Json to_json() const;
};

/// The kinds a process knows. Thread-safe: plugin kinds are added, replaced and removed while
/// the server runs. A descriptor pointer handed out stays valid for the registry's lifetime
/// (replaced and removed descriptors are retired, not freed), so a session that resolved a kind
/// keeps it while its nodes live.
class NodeRegistry {
 public:
  /// The process-wide registry: the built-in kinds (filled by SKIT_REGISTER_NODE) and, in the
  /// server, the loaded plugins.
  static NodeRegistry& builtin();

  NodeRegistry() = default;
  NodeRegistry(const NodeRegistry& other);
  NodeRegistry& operator=(const NodeRegistry&) = delete;

  /// Adds a kind; false if the kind exists.
  bool add(NodeDescriptor descriptor);
  /// Adds or replaces a kind.
  void put(NodeDescriptor descriptor);
  /// Removes a kind; false if it was unknown.
  bool remove(std::string_view kind);
  [[nodiscard]] const NodeDescriptor* find(std::string_view kind) const;
  [[nodiscard]] std::vector<const NodeDescriptor*> all() const;
  /// The registered kind a mistyped `kind` most likely meant ("audio::gian" -> "audio::gain",
  /// "opus::decoder" -> "audio::opus::decoder"), or "" when none is close.
  [[nodiscard]] std::string closest_kind(std::string_view kind) const;

 private:
  mutable std::shared_mutex mutex_;
  std::map<std::string, std::shared_ptr<const NodeDescriptor>, std::less<>> kinds_;
  std::vector<std::shared_ptr<const NodeDescriptor>> retired_;
};

/// Default packet bound for nodes that do not declare one.
inline constexpr std::size_t kDefaultMaxPacketBytes = 64 * 1024;

template <typename N>
concept SizesOwnPackets = requires(const typename N::Params& p) {
  { N::max_packet_bytes(p) } -> std::convertible_to<std::size_t>;
};

/// Builds the descriptor of node class N from its static members:
/// kKind, kSummary, kCategory, inputs(), outputs(), Params; optionally kExecution, kPullsInput,
/// kInputCountParam, kNeedsNetwork, kHttpEndpoint and max_packet_bytes(const Params&).
template <typename N>
NodeDescriptor describe_node() {
  using P = typename N::Params;
  NodeDescriptor d;
  d.kind = std::string(N::kKind);
  d.summary = std::string(N::kSummary);
  d.category = std::string(N::kCategory);
  d.inputs = N::inputs();
  d.outputs = N::outputs();
  d.params = &param_schema_of<P>();
  if constexpr (requires { N::kExecution; }) {
    d.execution = N::kExecution;
  }
  if constexpr (requires { N::kPullsInput; }) {
    d.pulls_input = N::kPullsInput;
  }
  if constexpr (requires { N::kInputCountParam; }) {
    d.input_count_param = std::string(N::kInputCountParam);
  }
  if constexpr (requires { N::kNeedsNetwork; }) {
    d.needs_network = N::kNeedsNetwork;
  }
  if constexpr (requires { N::kHttpEndpoint; }) {
    d.http_endpoint = std::string(N::kHttpEndpoint);
  }
  d.validate_params = [](const Json& params) {
    std::vector<Status> errors;
    (void)decode_params<P>(params, &errors);
    return errors;
  };
  d.create = [](const Json& params) -> Result<std::unique_ptr<Node>> {
    auto decoded = decode_params<P>(params);
    if (!decoded) {
      return decoded.status();
    }
    return std::unique_ptr<Node>(std::make_unique<N>(std::move(decoded).value()));
  };
  d.max_packet_bytes = [](const Json& params) -> std::size_t {
    if constexpr (SizesOwnPackets<N>) {
      auto decoded = decode_params<P>(params);
      return decoded ? N::max_packet_bytes(*decoded) : kDefaultMaxPacketBytes;
    } else {
      (void)params;
      return kDefaultMaxPacketBytes;
    }
  };
  return d;
}

/// Params struct for nodes that take none.
struct NoParams {
  static void describe(ParamSchemaBuilder<NoParams>& /*b*/) {}
};

}  // namespace skit

/// One line at the end of a node's .cpp registers it. Node sources are linked as an object
/// library, so the registrar is never dropped by the linker.
#define SKIT_REGISTER_NODE(Type)                                    \
  [[maybe_unused]] static const bool skit_registered_##Type##_ = \
      ::skit::NodeRegistry::builtin().add(::skit::describe_node<Type>())
