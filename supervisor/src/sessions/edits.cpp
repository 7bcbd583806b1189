// SPDX-License-Identifier: MPL-2.0
#include "edits.hpp"

#include "batch_check.hpp"
#include "skit/supervisor/entry_rules.hpp"

namespace skit::supervisor::sessions {

namespace {

Json params_of(const v1::NodeSpec& spec) {
  Json params = Json::parse(spec.params_json().empty() ? "{}" : spec.params_json(), nullptr,
                            /*allow_exceptions=*/false);
  return params.is_object() ? params : Json::object();
}

}  // namespace

/// The session rules, then the path allow-lists. `worker_params` receives the node's params
/// with their file paths as checked (canonical): what its worker is given.
std::vector<Status> LiveEdits::policy_of(const v1::NodeSpec& spec, Json& worker_params) const {
  v1::Pipeline alone;
  v1::NodeSpec& confined = *alone.add_nodes();
  confined = spec;
  std::vector<Status> out = check_entry(alone, EntryPoint::kSession, {});
  if (core_.config.paths) {
    for (Status& s : core_.config.paths->confine_node(confined)) {
      out.push_back(std::move(s));
    }
  }
  worker_params = params_of(confined);
  return out;
}

std::vector<BatchIssue> LiveEdits::check(const Session& s, const std::vector<BatchOperation>& ops,
                                       std::map<std::size_t, Json>* worker_params) const {
  return check_batch(
      s, ops, [this](const v1::NodeSpec& spec, Json& confined) { return policy_of(spec, confined); },
      core_.config.max_nodes_per_session, worker_params);
}

void LiveEdits::emit_node_added(const Session& s, const LiveNode& n) {
  SessionEvent e;
  e.kind = SessionEvent::Kind::kNodeAdded;
  e.node_id = n.id;
  e.node_kind = n.kind;
  e.params = n.shown_params();
  core_.emit(s, std::move(e));
}

void LiveEdits::emit_connection_added(const Session& s, const LiveConnection& c) {
  SessionEvent e;
  e.kind = SessionEvent::Kind::kConnectionAdded;
  e.connection = view_of(c);
  core_.emit(s, std::move(e));
}

Status LiveEdits::apply(Session& s, const std::vector<BatchOperation>& ops,
                        std::vector<BatchIssue>* issues_out) {
  std::map<std::size_t, Json> worker_params;
  auto issues = check(s, ops, &worker_params);
  if (!issues.empty()) {
    Status refused = batch_error(issues);
    if (issues_out != nullptr) {
      *issues_out = std::move(issues);
    }
    return refused;
  }
  Rewires rewires;
  std::vector<std::uint32_t> to_spawn;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const BatchOperation& op = ops[i];
    switch (op.action) {
      case BatchOperation::Action::kAddNode: {
        Json params = op.params.is_null() ? Json::object() : op.params;
        LiveNode& n = planner_.add_node(s, op.node_id, op.kind, params, worker_params[i],
                                        NodeRegistry::builtin().find(op.kind));
        n.worker = planner_.add_worker_slot(s);
        s.workers.at(n.worker).nodes.push_back(n.id);
        to_spawn.push_back(n.worker);
        emit_node_added(s, n);
        break;
      }
      case BatchOperation::Action::kConnect: {
        Status st = planner_.add_connection(s, op.from_node, op.from_pin, op.to_node,
                                            op.to_pin, op.mode);
        if (!st.is_ok()) {
          return st;  // checked above; a failure here is a shared-memory error
        }
        const auto& c = s.connections.back();
        planner_.attach(s, rewires, c);
        emit_connection_added(s, c);
        break;
      }
      case BatchOperation::Action::kDisconnect: {
        auto it = Planner::find_connection(s, op.from_node, op.from_pin, op.to_node,
                                                     op.to_pin);
        planner_.disconnect(s, rewires, it, /*consumer_removed=*/false);
        break;
      }
      case BatchOperation::Action::kRemoveNode:
        planner_.remove_node(s, rewires, op.node_id);
        break;
    }
  }
  planner_.send(s, rewires);
  for (const std::uint32_t slot : to_spawn) {
    LiveWorker& w = s.workers.at(slot);
    Status st = fleet_.spawn(s, w);
    if (!st.is_ok()) {
      fleet_.fail_worker(s, w, "could not start its worker: " + st.message());
    }
  }
  return Status::ok();
}

Result<std::uint64_t> LiveEdits::tune(Session& s, const std::string& node_id,
                                      const Json& patch) {
  auto it = s.nodes.find(node_id);
  if (it == s.nodes.end()) {
    return Status(ErrorCode::kNotFound, "node '" + node_id + "' not found in session " + s.name,
                  {.node_id = node_id});
  }
  LiveNode& n = it->second;
  if (!patch.is_object() || patch.empty()) {
    return Status(ErrorCode::kInvalidParam, "a tune carries an object of params to change",
                  {.node_id = node_id});
  }
  for (const auto& [key, value] : patch.items()) {
    const ParamField* field =
        n.descriptor->params != nullptr ? n.descriptor->params->find(key) : nullptr;
    if (field == nullptr) {
      return Status(ErrorCode::kInvalidParam, n.kind + " has no param '" + key + "'",
                    {.node_id = node_id, .param = key});
    }
    if (!field->tunable) {
      return Status(ErrorCode::kInvalidParam,
                    "param '" + key + "' of " + n.kind + " cannot change while running",
                    {.node_id = node_id, .param = key});
    }
  }
  Json merged = n.params;
  merged.merge_patch(patch);
  const auto errors = n.descriptor->validate_params(merged);
  if (!errors.empty()) {
    Status e = errors.front();
    e.where().node_id = node_id;
    return e;
  }
  Json worker_merged = n.worker_params;
  worker_merged.merge_patch(patch);
  if (core_.config.paths) {
    const auto refused = core_.config.paths->confine(*n.descriptor, worker_merged);
    if (!refused.empty()) {
      Status e = refused.front();
      e.where().node_id = node_id;
      return e;
    }
  }
  Json sent = patch;
  for (auto& [key, value] : sent.items()) {
    value = worker_merged[key];  // a tuned path goes to the node as the path that was checked
  }
  if (n.ended()) {
    // Not a fault of the server nor a reason to retry: the node is no longer in a state
    // that takes params.
    return Status(ErrorCode::kFailedPrecondition,
                  "node '" + node_id + "' is " +
                      (n.state == LiveState::kStopped ? "stopped" : "failed"),
                  {.node_id = node_id});
  }
  n.params = merged;
  n.worker_params = worker_merged;
  SessionEvent changed;
  changed.kind = SessionEvent::Kind::kNodeParamsChanged;
  changed.node_id = node_id;
  changed.params = n.shown_params();
  core_.emit(s, std::move(changed));
  LiveWorker& w = s.workers.at(n.worker);
  if (!w.hello || w.exited || !w.process.running()) {
    return std::uint64_t{0};  // applied when the worker (re)starts, from the model
  }
  const std::uint64_t op = core_.next_op++;
  v1::SupervisorMessage msg;
  msg.mutable_tune()->set_node_id(node_id);
  msg.mutable_tune()->set_params_json(sent.dump());
  msg.mutable_tune()->set_op_id(op);
  core_.send(w, msg);
  core_.tune_waits[op] = TuneWait{std::nullopt, Clock::now()};
  return op;
}

Result<std::uint64_t> LiveEdits::request(Session& s, const std::string& node_id,
                                         NodeRequest request) {
  auto it = s.nodes.find(node_id);
  if (it == s.nodes.end()) {
    return Status(ErrorCode::kNotFound, "session '" + s.name + "' has no node '" + node_id + "'",
                  {.node_id = node_id});
  }
  LiveNode& n = it->second;
  if (n.ended()) {
    return Status(ErrorCode::kUnavailable,
                  "node '" + node_id + "' is " +
                      (n.state == LiveState::kStopped ? "stopped" : "failed"),
                  {.node_id = node_id});
  }
  LiveWorker& w = s.workers.at(n.worker);
  if (!w.hello || w.exited || !w.process.running()) {
    return Status(ErrorCode::kUnavailable, "node '" + node_id + "' is (re)starting; try again",
                  {.node_id = node_id});
  }
  const std::uint64_t id = core_.next_op++;
  v1::SupervisorMessage msg;
  auto& q = *msg.mutable_request();
  q.set_request_id(id);
  q.set_node_id(node_id);
  q.set_method(request.method);
  q.set_resource(request.resource);
  q.set_content_type(request.content_type);
  q.set_body(std::move(request.body));
  core_.send(w, msg);
  core_.request_waits[id] = RequestWait{s.id, node_id, w.gid, std::nullopt, Clock::now()};
  return id;
}

std::optional<Result<NodeReply>> LiveEdits::request_result(std::uint64_t id, bool give_up) {
  auto it = core_.request_waits.find(id);
  if (it == core_.request_waits.end()) {
    return Result<NodeReply>(Status(ErrorCode::kInternal, "unknown request"));
  }
  if (it->second.reply) {
    NodeReply r = std::move(*it->second.reply);
    core_.request_waits.erase(it);
    return Result<NodeReply>(std::move(r));
  }
  if (give_up) {
    const std::string node = it->second.node_id;
    core_.request_waits.erase(it);
    return Result<NodeReply>(Status(ErrorCode::kDeadlineExceeded,
                                    "node '" + node + "' did not answer in time",
                                    {.node_id = node}));
  }
  return std::nullopt;
}

std::optional<Status> LiveEdits::tune_result(std::uint64_t op, bool give_up) {
  auto it = core_.tune_waits.find(op);
  if (it == core_.tune_waits.end()) {
    return Status::ok();
  }
  if (it->second.result) {
    Status r = *it->second.result;
    core_.tune_waits.erase(it);
    return r;
  }
  if (give_up) {
    core_.tune_waits.erase(it);
    return Status(ErrorCode::kDeadlineExceeded,
                  "the node has not applied the change yet (busy or blocked); it stays queued");
  }
  return std::nullopt;
}

}  // namespace skit::supervisor::sessions
