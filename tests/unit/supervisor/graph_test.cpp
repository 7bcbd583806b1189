// SPDX-License-Identifier: MPL-2.0
// The graph model's rules, once for YAML documents and live batches: ids, kinds, params, pins,
// inputs used twice, cycles, packet types through Passthrough whatever the order of the edits,
// and required inputs of a oneshot pipeline.
#include <gtest/gtest.h>

#include "skit/supervisor/graph.hpp"

namespace skit::supervisor {
namespace {

GraphNode node(const std::string& id, const std::string& kind, Json params = Json::object(),
               int operation = -1) {
  GraphNode n;
  n.id = id;
  n.kind = kind;
  n.params = std::move(params);
  n.where.operation = operation;
  return n;
}

GraphConnection link(const std::string& from, const std::string& to, int operation = -1,
                     const std::string& to_pin = "in") {
  GraphConnection c;
  c.from_node = from;
  c.to_node = to;
  c.to_pin = to_pin;
  c.where.operation = operation;
  return c;
}

bool has(const std::vector<Status>& errors, const std::string& text) {
  return std::any_of(errors.begin(), errors.end(), [&](const Status& s) {
    return s.message().find(text) != std::string::npos;
  });
}

TEST(Graph, NodeIdsKindsAndParamsAreCheckedAsTheyJoin) {
  PipelineGraph g;
  EXPECT_TRUE(has(g.add_node(node("a.b", "core::passthrough")), "without '.'"));
  EXPECT_TRUE(has(g.add_node(node("x", "audio::gian")), "did you mean 'audio::gain'?"));
  EXPECT_TRUE(g.add_node(node("g", "audio::gain")).empty());
  EXPECT_TRUE(has(g.add_node(node("g", "audio::gain")), "duplicate node id"));
  const auto bad = g.add_node(node("loud", "audio::gain", Json{{"gain", 9}, {"volume", 1}}));
  ASSERT_EQ(bad.size(), 2U) << "every param problem at once";
  EXPECT_NE(g.find("loud"), nullptr) << "a node with bad params joins: its links are checked";
  EXPECT_EQ(g.find("a.b"), nullptr);
  EXPECT_EQ(g.find("x"), nullptr);
}

TEST(Graph, PinsAndInputsAreCheckedAsTheyConnect) {
  PipelineGraph g;
  ASSERT_TRUE(g.add_node(node("src", "core::file_reader", Json{{"path", "x"}})).empty());
  ASSERT_TRUE(g.add_node(node("mix", "audio::mixer")).empty());
  ASSERT_TRUE(g.add_node(node("sink", "core::sink")).empty());
  EXPECT_NE(g.connect(link("src", "nobody")).message().find("no node 'nobody'"), std::string::npos);
  EXPECT_NE(g.connect(link("sink", "mix", -1, "in_0")).message().find("has no output 'out'"),
            std::string::npos);
  EXPECT_NE(g.connect(link("src", "mix", -1, "left")).message().find("has no input 'left'"),
            std::string::npos);
  EXPECT_TRUE(g.connect(link("src", "mix", -1, "in_3")).is_ok()) << "any member of a family";
  EXPECT_TRUE(g.connect(link("src", "sink")).is_ok());
  EXPECT_NE(g.connect(link("src", "sink")).message().find("connected twice"), std::string::npos);
  EXPECT_NE(g.connect(link("sink", "sink")).message().find("cannot need itself"), std::string::npos);
  EXPECT_EQ(g.family_members("mix", "in"), 1U);
}

// The order of the edits must not matter: a Passthrough linked to its consumer before its own
// upstream is judged by what finally flows through it.
TEST(Graph, TypesAreResolvedThroughPassthroughOnTheWholeGraph) {
  PipelineGraph g;
  ASSERT_TRUE(g.add_node(node("reader", "core::file_reader", Json{{"path", "x"}}, 0)).empty());
  ASSERT_TRUE(g.add_node(node("relay", "core::passthrough", Json::object(), 1)).empty());
  ASSERT_TRUE(g.add_node(node("gain", "audio::gain", Json::object(), 2)).empty());
  ASSERT_TRUE(g.connect(link("relay", "gain", 3)).is_ok());
  ASSERT_TRUE(g.connect(link("reader", "relay", 4)).is_ok());
  const auto errors = g.check({.mode = GraphMode::kDynamic});
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].code(), ErrorCode::kPinTypeMismatch);
  EXPECT_NE(errors[0].message().find("'relay.out' produces Binary but 'gain.in' accepts RawAudio"),
            std::string::npos)
      << errors[0].message();
  EXPECT_EQ(errors[0].where().operation, 3) << "placed at the connection that carries it";
  EXPECT_EQ(g.output_type("relay", "out").kind, PacketKind::kBinary);
}

TEST(Graph, CyclesAreFoundWithTheirPathAndPlacedAtTheClosingOperation) {
  PipelineGraph g;
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(g.add_node(node(id, "core::passthrough")).empty());
  }
  ASSERT_TRUE(g.connect(link("a", "b")).is_ok());
  ASSERT_TRUE(g.connect(link("b", "c")).is_ok());
  ASSERT_TRUE(g.connect(link("c", "a", 7)).is_ok());
  const auto errors = g.check({.mode = GraphMode::kDynamic});
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].message().find("circular dependency: a -> b -> c -> a"), std::string::npos)
      << errors[0].message();
  EXPECT_EQ(errors[0].where().operation, 7);
}

TEST(Graph, OnlyAOneshotPipelineNeedsEveryInputConnected) {
  PipelineGraph g;
  ASSERT_TRUE(g.add_node(node("sink", "core::sink")).empty());
  EXPECT_TRUE(g.check({.mode = GraphMode::kDynamic}).empty());
  const auto oneshot = g.check({.mode = GraphMode::kOneshot});
  ASSERT_EQ(oneshot.size(), 1U);
  EXPECT_NE(oneshot[0].message().find("required input 'in' is not connected"), std::string::npos);
  EXPECT_TRUE(g.check({.mode = GraphMode::kOneshot, .inputs_explained = {"sink"}}).empty());
}

TEST(Graph, RemovingANodeRemovesItsConnections) {
  PipelineGraph g;
  ASSERT_TRUE(g.add_node(node("a", "core::passthrough")).empty());
  ASSERT_TRUE(g.add_node(node("b", "core::passthrough")).empty());
  ASSERT_TRUE(g.connect(link("a", "b")).is_ok());
  EXPECT_TRUE(g.remove_node("a").is_ok());
  EXPECT_TRUE(g.connections().empty());
  EXPECT_EQ(g.remove_node("a").code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace skit::supervisor
