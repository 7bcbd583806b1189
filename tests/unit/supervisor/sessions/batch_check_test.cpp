// SPDX-License-Identifier: MPL-2.0
// A live batch and a YAML document are judged by the same graph rules (supervisor/graph): every
// sample pipeline replayed as a batch gets the verdict the compiler gives it, and a rule broken
// either way is reported with the same message.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "sessions/batch_check.hpp"
#include "skit/supervisor/pipeline_compiler.hpp"

namespace skit::supervisor::sessions {
namespace {

namespace fs = std::filesystem;

/// The operations that build `p` from nothing: every node, then every connection.
std::vector<BatchOperation> as_batch(const v1::Pipeline& p) {
  std::vector<BatchOperation> ops;
  for (const auto& n : p.nodes()) {
    BatchOperation op;
    op.action = BatchOperation::Action::kAddNode;
    op.node_id = n.id();
    op.kind = n.kind();
    op.params = Json::parse(n.params_json());
    ops.push_back(op);
  }
  for (const auto& c : p.connections()) {
    BatchOperation op;
    op.action = BatchOperation::Action::kConnect;
    op.from_node = c.from_node();
    op.from_pin = c.from_pin();
    op.to_node = c.to_node();
    op.to_pin = c.to_pin();
    ops.push_back(op);
  }
  return ops;
}

std::vector<BatchIssue> check(const std::vector<BatchOperation>& ops) {
  const Session empty;
  const NodePolicy no_policy = [](const v1::NodeSpec&, Json&) { return std::vector<Status>{}; };
  return check_batch(empty, ops, no_policy, 1000);
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(BatchCheck, EverySampleReplayedAsABatchGetsTheCompilersVerdict) {
  int replayed = 0;
  for (const char* dir : {"samples/pipelines/oneshot", "samples/pipelines/dynamic"}) {
    for (const auto& e : fs::directory_iterator(fs::path(SKIT_SOURCE_DIR) / dir)) {
      if (e.path().extension() != ".yml") {
        continue;
      }
      SCOPED_TRACE(e.path().string());
      const CompiledPipeline compiled = compile_pipeline_yaml(read(e.path()));
      ASSERT_TRUE(compiled.ok()) << compiled.error_report();
      const auto issues = check(as_batch(compiled.pipeline));
      EXPECT_TRUE(issues.empty()) << issues.front().message;
      // Connected in reverse order, the same graph: the verdict must not depend on the order.
      auto ops = as_batch(compiled.pipeline);
      std::reverse(ops.begin() + compiled.pipeline.nodes_size(), ops.end());
      EXPECT_TRUE(check(ops).empty());
      ++replayed;
    }
  }
  EXPECT_GE(replayed, 14);
}

// The rule that the two copies used to judge differently: a Passthrough linked to its consumer
// before its own upstream (the batch used to accept it).
TEST(BatchCheck, ATypeMismatchThroughPassthroughIsTheSameMessageAsInYaml) {
  const CompiledPipeline yaml = compile_pipeline_yaml(R"(mode: dynamic
nodes:
  reader: { kind: core::file_reader, params: { path: x.bin } }
  relay: { kind: core::passthrough, needs: reader }
  gain: { kind: audio::gain, needs: relay }
)");
  ASSERT_EQ(yaml.errors.size(), 1U) << yaml.error_report();
  const Status& from_yaml = yaml.errors.front();
  EXPECT_EQ(from_yaml.code(), ErrorCode::kPinTypeMismatch);

  std::vector<BatchOperation> ops(5);
  ops[0].action = ops[1].action = ops[2].action = BatchOperation::Action::kAddNode;
  ops[0].node_id = "reader", ops[0].kind = "core::file_reader", ops[0].params = Json{{"path", "x.bin"}};
  ops[1].node_id = "relay", ops[1].kind = "core::passthrough";
  ops[2].node_id = "gain", ops[2].kind = "audio::gain";
  ops[3].action = ops[4].action = BatchOperation::Action::kConnect;
  ops[3].from_node = "relay", ops[3].from_pin = "out", ops[3].to_node = "gain", ops[3].to_pin = "in";
  ops[4].from_node = "reader", ops[4].from_pin = "out", ops[4].to_node = "relay", ops[4].to_pin = "in";
  const auto issues = check(ops);
  ASSERT_EQ(issues.size(), 1U);
  EXPECT_EQ(issues[0].operation, 3U) << "placed at the connection into the gain";
  EXPECT_EQ(issues[0].code, ErrorCode::kPinTypeMismatch);
  EXPECT_EQ(issues[0].message, "node 'gain': " + from_yaml.message());
}

TEST(BatchCheck, NodeIdsFollowTheYamlRule) {
  std::vector<BatchOperation> ops(1);
  ops[0].node_id = "a.b";
  ops[0].kind = "core::passthrough";
  const auto issues = check(ops);
  ASSERT_EQ(issues.size(), 1U);
  EXPECT_NE(issues[0].message.find("without '.'"), std::string::npos) << issues[0].message;
  const CompiledPipeline yaml =
      compile_pipeline_yaml("nodes:\n  a.b: { kind: core::passthrough }\n");
  ASSERT_EQ(yaml.errors.size(), 1U);
  EXPECT_EQ(issues[0].message, "node 'a.b': " + yaml.errors[0].message());
}

TEST(BatchCheck, ParamProblemsNameTheirParamAndComeAllAtOnce) {
  std::vector<BatchOperation> ops(1);
  ops[0].node_id = "loud";
  ops[0].kind = "audio::gain";
  ops[0].params = Json{{"gain", 9}, {"volume", 1}};
  const auto issues = check(ops);
  ASSERT_EQ(issues.size(), 2U);
  std::set<std::string> params;
  for (const auto& i : issues) {
    params.insert(i.param);
    EXPECT_NE(i.message.find("param '" + i.param + "'"), std::string::npos) << i.message;
  }
  EXPECT_EQ(params, (std::set<std::string>{"gain", "volume"}));
}

TEST(BatchCheck, TheSessionsLimitAndPolicyApply) {
  std::vector<BatchOperation> ops(2);
  ops[0].node_id = "a", ops[0].kind = "core::passthrough";
  ops[1].node_id = "b", ops[1].kind = "core::passthrough";
  const Session empty;
  const NodePolicy refuse_b = [](const v1::NodeSpec& spec, Json&) {
    return spec.id() == "b" ? std::vector<Status>{Status(ErrorCode::kPermissionDenied, "no b")}
                            : std::vector<Status>{};
  };
  const auto issues = check_batch(empty, ops, refuse_b, 1);
  ASSERT_EQ(issues.size(), 2U);
  EXPECT_EQ(issues[0].code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(issues[1].code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(issues[1].operation, 1U);
}

}  // namespace
}  // namespace skit::supervisor::sessions
