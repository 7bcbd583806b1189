// SPDX-License-Identifier: MPL-2.0
// The pipeline YAML compiler: every validation error carries its code, node id and exact
// line (and column), all errors of a document are reported at once sorted by line, and valid
// documents compile into the expected nodes and connections.
#include "skit/supervisor/pipeline_compiler.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "skit/core/registry.hpp"

namespace skit::supervisor {
namespace {

// ---- test-only node kinds -------------------------------------------------------------------

/// Accepts only raw audio (any rate, any channel count).
class AudioSinkNode final : public NodeWithParams<NoParams> {
 public:
  static constexpr std::string_view kKind = "test::audio_sink";
  static constexpr std::string_view kSummary = "Consumes RawAudio.";
  static constexpr std::string_view kCategory = "test";
  static std::vector<InputPinSpec> inputs() { return {{"in", {PacketType::raw_audio()}}}; }
  static std::vector<OutputPinSpec> outputs() { return {}; }
  using NodeWithParams::NodeWithParams;
};

/// Produces 48 kHz stereo raw audio on `out` and text on `captions`.
class AudioSourceNode final : public NodeWithParams<NoParams> {
 public:
  static constexpr std::string_view kKind = "test::audio_source";
  static constexpr std::string_view kSummary = "Produces RawAudio and Text.";
  static constexpr std::string_view kCategory = "test";
  static std::vector<InputPinSpec> inputs() { return {}; }
  static std::vector<OutputPinSpec> outputs() {
    return {{"out", PacketType::raw_audio(48000, 2)}, {"captions", PacketType::text()}};
  }
  using NodeWithParams::NodeWithParams;
};

/// A dynamic input family `in_0, in_1, ...`, like an audio mixer.
class MixerNode final : public NodeWithParams<NoParams> {
 public:
  static constexpr std::string_view kKind = "test::mixer";
  static constexpr std::string_view kSummary = "Mixes any number of inputs.";
  static constexpr std::string_view kCategory = "test";
  static std::vector<InputPinSpec> inputs() {
    return {{"in", {PacketType::any()}, Cardinality::kDynamic}};
  }
  static std::vector<OutputPinSpec> outputs() { return {{"out", PacketType::passthrough()}}; }
  using NodeWithParams::NodeWithParams;
};

/// Takes one free-form JSON param, to observe how YAML scalars are converted.
struct BagParams {
  Json options;
  static void describe(ParamSchemaBuilder<BagParams>& b) {
    b.field("options", &BagParams::options, "Anything.");
  }
};

class BagNode final : public NodeWithParams<BagParams> {
 public:
  static constexpr std::string_view kKind = "test::bag";
  static constexpr std::string_view kSummary = "Holds free-form params.";
  static constexpr std::string_view kCategory = "test";
  static std::vector<InputPinSpec> inputs() { return {}; }
  static std::vector<OutputPinSpec> outputs() { return {}; }
  using NodeWithParams::NodeWithParams;
};

/// The built-in kinds plus the test kinds above.
const NodeRegistry& test_registry() {
  static const NodeRegistry registry = [] {
    NodeRegistry r;
    for (const NodeDescriptor* d : NodeRegistry::builtin().all()) {
      r.add(*d);
    }
    r.add(describe_node<AudioSinkNode>());
    r.add(describe_node<AudioSourceNode>());
    r.add(describe_node<MixerNode>());
    r.add(describe_node<BagNode>());
    return r;
  }();
  return registry;
}

CompiledPipeline compile(std::string_view yaml) {
  return compile_pipeline_yaml(yaml, test_registry());
}

std::string report(const CompiledPipeline& c) {
  return c.errors.empty() ? std::string("(no errors)") : c.error_report("test.yml");
}

/// What an error should be.
struct Expected {
  ErrorCode code;
  std::string node_id;
  int line;
  int column = 0;  // 0: not checked
  std::string param;
};

void expect_error(const Status& e, const Expected& want) {
  EXPECT_EQ(error_code_name(e.code()), error_code_name(want.code)) << e.to_string();
  EXPECT_EQ(e.where().node_id, want.node_id) << e.to_string();
  EXPECT_EQ(e.where().line, want.line) << e.to_string();
  if (want.column != 0) {
    EXPECT_EQ(e.where().column, want.column) << e.to_string();
  }
  EXPECT_EQ(e.where().param, want.param) << e.to_string();
}

/// Compiles `yaml`, expects exactly one error, as described, and returns its message.
std::string expect_single_error(std::string_view yaml, const Expected& want) {
  const CompiledPipeline c = compile(yaml);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.errors.size(), 1U) << report(c);
  if (c.errors.empty()) {
    return {};
  }
  expect_error(c.errors.front(), want);
  return c.errors.front().message();
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

/// The first error whose message contains `needle`, or null.
const Status* find_error(const CompiledPipeline& c, std::string_view needle) {
  for (const auto& e : c.errors) {
    if (contains(e.message(), needle)) {
      return &e;
    }
  }
  return nullptr;
}

const v1::NodeSpec* find_node(const v1::Pipeline& p, std::string_view id) {
  for (const auto& n : p.nodes()) {
    if (n.id() == id) {
      return &n;
    }
  }
  return nullptr;
}

/// "from.pin->to.pin", for compact connection assertions.
std::vector<std::string> edges(const v1::Pipeline& p) {
  std::vector<std::string> out;
  for (const auto& c : p.connections()) {
    out.push_back(c.from_node() + "." + c.from_pin() + "->" + c.to_node() + "." + c.to_pin());
  }
  return out;
}

// ---- each validation error, with its position -----------------------------------------------

TEST(PipelineCompiler, ReportsUnknownKindWithNodeIdAndLine) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params:
      path: in.bin
  out:
    kind: core::nope
    needs: src
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kUnknownKind, "out", 7, 11});
  EXPECT_TRUE(contains(e, "core::nope")) << e;
}

TEST(PipelineCompiler, SuggestsTheRegisteredKindForAnUnknownKindWithAKnownName) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  out:
    kind: transport::sink
    needs: src
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kUnknownKind, "out", 6, 11});
  EXPECT_TRUE(contains(e, "did you mean 'core::sink'")) << e;
}

TEST(PipelineCompiler, ReportsUnknownParamWithNodeIdParamAndLine) {
  constexpr std::string_view kYaml = R"(name: unknown param
nodes:
  src:
    kind: core::file_reader
    params:
      path: in.bin
      chunk: 4096
  out:
    kind: core::sink
    needs: src
)";
  const std::string e =
      expect_single_error(kYaml, {ErrorCode::kInvalidParam, "src", 7, 7, "chunk"});
  EXPECT_TRUE(contains(e, "unknown param")) << e;
}

TEST(PipelineCompiler, ReportsStringWhereNumberExpectedWithParamAndLine) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params:
      path: in.bin
      chunk_size: big
  out:
    kind: core::sink
    needs: src
)";
  const std::string e =
      expect_single_error(kYaml, {ErrorCode::kInvalidParam, "src", 6, 7, "chunk_size"});
  EXPECT_TRUE(contains(e, "expected integer")) << e;
  EXPECT_TRUE(contains(e, "string")) << e;
}

TEST(PipelineCompiler, ReportsQuotedNumberAsMistypedParam) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin, chunk_size: "4096"}
  out:
    kind: core::sink
    needs: src
)";
  expect_single_error(kYaml, {ErrorCode::kInvalidParam, "src", 4, 28, "chunk_size"});
}

TEST(PipelineCompiler, ReportsOutOfRangeIntegerWithParamAndLine) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params:
      path: in.bin
      chunk_size: 0
  out:
    kind: core::sink
    needs: src
)";
  const std::string e =
      expect_single_error(kYaml, {ErrorCode::kInvalidParam, "src", 6, 7, "chunk_size"});
  EXPECT_TRUE(contains(e, ">= 1")) << e;
}

TEST(PipelineCompiler, ReportsOutOfRangeNumberWithParamAndLine) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params:
      path: in.bin
  pace:
    kind: core::pacer
    needs: src
    params:
      speed: 5000
  out:
    kind: core::sink
    needs: pace
)";
  const std::string e =
      expect_single_error(kYaml, {ErrorCode::kInvalidParam, "pace", 10, 7, "speed"});
  EXPECT_TRUE(contains(e, "<= 1000")) << e;
}

TEST(PipelineCompiler, AcceptsParamsExactlyAtTheirRangeBounds) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin, chunk_size: 16777216}
  pace:
    kind: core::pacer
    needs: src
    params: {speed: 0.01, buffer_size: 1}
  out:
    kind: core::sink
    needs: pace
)";
  const CompiledPipeline c = compile(kYaml);
  EXPECT_TRUE(c.ok()) << report(c);
}

TEST(PipelineCompiler, ReportsOutOfRangeJustOutsideTheBounds) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin, chunk_size: 16777217}
  pace:
    kind: core::pacer
    needs: src
    params: {speed: 0.0099}
  out:
    kind: core::sink
    needs: pace
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 2U) << report(c);
  expect_error(c.errors[0], {ErrorCode::kInvalidParam, "src", 4, 28, "chunk_size"});
  expect_error(c.errors[1], {ErrorCode::kInvalidParam, "pace", 8, 14, "speed"});
}

TEST(PipelineCompiler, ReportsInvalidEnumValueWithParamAndLine) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  boom:
    kind: testing::fault
    needs: src
    params:
      after_packets: 3
      mode: explode
)";
  const std::string e =
      expect_single_error(kYaml, {ErrorCode::kInvalidParam, "boom", 10, 7, "mode"});
  EXPECT_TRUE(contains(e, "explode")) << e;
}

TEST(PipelineCompiler, ReportsMissingRequiredParamAtTheNodeWhenParamsAreAbsent) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
  out:
    kind: core::sink
    needs: src
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kInvalidParam, "src", 2, 3, "path"});
  EXPECT_TRUE(contains(e, "required")) << e;
}

TEST(PipelineCompiler, ReportsMissingRequiredParamAtTheParamsBlock) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params:
      chunk_size: 1024
  out:
    kind: core::sink
    needs: src
)";
  expect_single_error(kYaml, {ErrorCode::kInvalidParam, "src", 5, 7, "path"});
}

TEST(PipelineCompiler, ReportsMissingRequiredParamInStepsAtTheStep) {
  constexpr std::string_view kYaml = R"(steps:
  - kind: core::file_reader
    params:
      chunk_size: 1024
  - kind: core::file_writer
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 2U) << report(c);
  expect_error(c.errors[0], {ErrorCode::kInvalidParam, "step_0", 4, 7, "path"});
  expect_error(c.errors[1], {ErrorCode::kInvalidParam, "step_1", 5, 5, "path"});
}

TEST(PipelineCompiler, ReportsMissingRequiredInputAtTheNode) {
  constexpr std::string_view kYaml = R"(mode: oneshot
nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  out:
    kind: core::sink
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kGraphError, "out", 6, 3});
  EXPECT_TRUE(contains(e, "required input 'in'")) << e;
}

// A session may connect inputs later, so a dynamic document (StreamKit's default mode) may
// leave one open, as a batch may: the same graph is accepted both ways.
TEST(PipelineCompiler, ADynamicDocumentMayLeaveAnInputForLater) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  out:
    kind: core::sink
)";
  const CompiledPipeline c = compile(kYaml);
  EXPECT_TRUE(c.ok()) << report(c);
}

TEST(PipelineCompiler, ReportsPinTypeMismatchAtTheNeedsEntry) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  play:
    kind: test::audio_sink
    needs: src
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kPinTypeMismatch, "play", 7, 12});
  EXPECT_TRUE(contains(e, "Binary")) << e;
  EXPECT_TRUE(contains(e, "RawAudio")) << e;
}

TEST(PipelineCompiler, ReportsPinTypeMismatchOfADottedSourcePin) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
  play:
    kind: test::audio_sink
    needs: mic.captions
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kPinTypeMismatch, "play", 6, 12});
  EXPECT_TRUE(contains(e, "mic.captions")) << e;
  EXPECT_TRUE(contains(e, "Text")) << e;
}

TEST(PipelineCompiler, ReportsPinTypeMismatchIntoABuiltinBinaryInput) {
  // (streamkit::http_output takes any kind, as StreamKit's; core::file_writer takes Binary.)
  constexpr std::string_view kYaml = R"(mode: dynamic
steps:
  - kind: test::audio_source
  - kind: core::file_writer
    params: {path: out.bin}
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kPinTypeMismatch, "step_1", 4, 5});
  EXPECT_TRUE(contains(e, "RawAudio")) << e;
  EXPECT_TRUE(contains(e, "Binary")) << e;
}

TEST(PipelineCompiler, HttpOutputAcceptsAnyPacketKind) {
  const CompiledPipeline c = compile(R"(mode: oneshot
steps:
  - kind: test::audio_source
  - kind: streamkit::http_output
)");
  EXPECT_TRUE(c.errors.empty()) << report(c);
}

TEST(PipelineCompiler, ADynamicPipelineMayHaveNoNodesYet) {
  const CompiledPipeline dynamic = compile("mode: dynamic\nnodes: {}\n");
  EXPECT_TRUE(dynamic.errors.empty()) << report(dynamic);
  EXPECT_EQ(dynamic.pipeline.nodes_size(), 0);
  const CompiledPipeline oneshot = compile("mode: oneshot\nnodes: {}\n");
  ASSERT_FALSE(oneshot.errors.empty());
  EXPECT_TRUE(contains(oneshot.errors[0].message(), "non-empty")) << report(oneshot);
}

TEST(PipelineCompiler, InfersPassthroughTypeFromUpstreamAndReportsTheMismatchDownstream) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  relay:
    kind: core::passthrough
    needs: src
  play:
    kind: test::audio_sink
    needs: relay
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kPinTypeMismatch, "play", 10, 12});
  EXPECT_TRUE(contains(e, "Binary")) << e;
  EXPECT_TRUE(contains(e, "relay.out")) << e;
}

TEST(PipelineCompiler, InfersPassthroughTypeThroughAChainOfPassthroughs) {
  constexpr std::string_view kYaml = R"(steps:
  - kind: core::file_reader
    params: {path: in.bin}
  - kind: core::pacer
  - kind: core::passthrough
  - kind: test::audio_sink
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kPinTypeMismatch, "step_3", 6, 5});
  EXPECT_TRUE(contains(e, "Binary")) << e;
}

TEST(PipelineCompiler, AcceptsPassthroughOfTheRightTypeIntoATypedInput) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
  relay:
    kind: core::passthrough
    needs: mic
  play:
    kind: test::audio_sink
    needs: relay
)";
  const CompiledPipeline c = compile(kYaml);
  EXPECT_TRUE(c.ok()) << report(c);
}

TEST(PipelineCompiler, ReportsDanglingNeedsWithNodeIdAndLine) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  out:
    kind: core::sink
    needs: ghost
)";
  const CompiledPipeline c = compile(kYaml);
  EXPECT_FALSE(c.ok());
  const Status* e = find_error(c, "needs 'ghost'");
  ASSERT_NE(e, nullptr) << report(c);
  expect_error(*e, {ErrorCode::kGraphError, "out", 7, 12});
  EXPECT_TRUE(contains(e->message(), "not a node of this pipeline")) << e->message();
}

TEST(PipelineCompiler, ReportsDanglingNeedsInAListAtItsEntry) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  mix:
    kind: test::mixer
    needs:
      - a
      - ghost
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kGraphError, "mix", 8, 9});
  EXPECT_TRUE(contains(e, "ghost")) << e;
}

TEST(PipelineCompiler, ReportsUnknownSourcePinWithTheAvailableOutputs) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  out:
    kind: core::sink
    needs: src.video
)";
  const CompiledPipeline c = compile(kYaml);
  const Status* e = find_error(c, "no output 'video'");
  ASSERT_NE(e, nullptr) << report(c);
  expect_error(*e, {ErrorCode::kGraphError, "out", 7, 12});
  EXPECT_TRUE(contains(e->message(), "(outputs: out)")) << e->message();
}

TEST(PipelineCompiler, ReportsCycleWithItsPathAtTheNodeWhereTheSearchEnteredIt) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: core::passthrough
    needs: c
  b:
    kind: core::passthrough
    needs: a
  c:
    kind: core::passthrough
    needs: b
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kGraphError, "a", 2, 3});
  EXPECT_TRUE(contains(e, "circular dependency: a -> b -> c -> a")) << e;
}

TEST(PipelineCompiler, ReportsSelfNeedAtTheNeedsEntry) {
  constexpr std::string_view kYaml = R"(nodes:
  loop:
    kind: core::passthrough
    needs: loop
)";
  const CompiledPipeline c = compile(kYaml);
  const Status* e = find_error(c, "cannot need itself");
  ASSERT_NE(e, nullptr) << report(c);
  expect_error(*e, {ErrorCode::kGraphError, "loop", 4, 12});
}

TEST(PipelineCompiler, ReportsDuplicateIdAtTheSecondDefinitionNamingTheFirstLine) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: a.bin}
  src:
    kind: core::file_reader
    params: {path: b.bin}
  out:
    kind: core::sink
    needs: src
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kGraphError, "src", 5, 3});
  EXPECT_TRUE(contains(e, "duplicate")) << e;
  EXPECT_TRUE(contains(e, "line 2")) << e;
}

TEST(PipelineCompiler, ReportsYamlSyntaxErrorWithLineAndColumn) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin
  out:
    kind: core::sink
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 1U) << report(c);
  const Status& e = c.errors.front();
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.to_string();
  EXPECT_TRUE(contains(e.message(), "YAML syntax error")) << e.message();
  EXPECT_GT(e.where().line, 0) << e.to_string();
  EXPECT_GT(e.where().column, 0) << e.to_string();
  EXPECT_EQ(c.pipeline.nodes_size(), 0);
}

TEST(PipelineCompiler, ReportsYamlSyntaxErrorAtTheOffendingLineAndColumn) {
  constexpr std::string_view kYaml = R"(name: broken
nodes:
  src:
    kind: core: file_reader
  out:
    kind: core::sink
    needs: src
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 1U) << report(c);
  const Status& e = c.errors.front();
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.where().line, 4) << e.to_string();
  EXPECT_EQ(e.where().column, 15) << e.to_string();  // the second ':'
  EXPECT_EQ(e.where().node_id, "");
}

TEST(PipelineCompiler, ReportsAStrayFlowBracketAtItsPosition) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  mix:
    kind: test::mixer
    needs: [a, a]]
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 1U) << report(c);
  EXPECT_EQ(c.errors.front().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.errors.front().where().line, 6) << c.errors.front().to_string();
  EXPECT_EQ(c.errors.front().where().column, 18) << c.errors.front().to_string();
}

TEST(PipelineCompiler, ReportsBadIndentationAsSyntaxErrorOnItsLine) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
   params: {path: in.bin}
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 1U) << report(c);
  EXPECT_EQ(c.errors.front().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.errors.front().where().line, 4) << c.errors.front().to_string();
}

TEST(PipelineCompiler, ReportsStepsAndNodesBothPresent) {
  constexpr std::string_view kYaml = R"(name: both
steps:
  - kind: core::file_reader
    params: {path: in.bin}
nodes:
  out:
    kind: core::sink
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 1U) << report(c);
  const Status& e = c.errors.front();
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(contains(e.message(), "either 'steps' or 'nodes'")) << e.message();
  EXPECT_EQ(e.where().node_id, "");
  // The error points into the second section, `nodes`, at its first entry (as errors about
  // a mapping's value do elsewhere, e.g. a missing param points at the params block).
  EXPECT_EQ(e.where().line, 6) << e.to_string();
  EXPECT_EQ(e.where().column, 3) << e.to_string();
  EXPECT_EQ(c.pipeline.nodes_size(), 0);
}

TEST(PipelineCompiler, ReportsNeitherStepsNorNodes) {
  const CompiledPipeline c = compile("name: empty\n");
  ASSERT_EQ(c.errors.size(), 1U) << report(c);
  EXPECT_EQ(c.errors.front().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(contains(c.errors.front().message(), "neither")) << report(c);
}

TEST(PipelineCompiler, ReportsAnEmptyDocument) {
  const CompiledPipeline c = compile("");
  ASSERT_EQ(c.errors.size(), 1U) << report(c);
  EXPECT_EQ(c.errors.front().code(), ErrorCode::kInvalidArgument);
}

TEST(PipelineCompiler, ReportsBadConnectionModeAtTheModeValue) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  out:
    kind: core::sink
    needs:
      node: src
      mode: fast
)";
  const CompiledPipeline c = compile(kYaml);
  const Status* e = find_error(c, "connection mode");
  ASSERT_NE(e, nullptr) << report(c);
  expect_error(*e, {ErrorCode::kInvalidArgument, "out", 9, 13});
  EXPECT_TRUE(contains(e->message(), "'reliable' or 'best_effort' (got 'fast')")) << e->message();
}

TEST(PipelineCompiler, ReportsBadConnectionModeInAListEntry) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  b:
    kind: test::audio_source
  mix:
    kind: test::mixer
    needs:
      - a
      - {node: b, mode: lossy}
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kInvalidArgument, "mix", 10, 25});
  EXPECT_TRUE(contains(e, "lossy")) << e;
}

TEST(PipelineCompiler, ReportsBadPipelineModeAtItsValue) {
  constexpr std::string_view kYaml = R"(name: x
mode: streaming
steps:
  - kind: test::audio_source
  - kind: test::audio_sink
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kInvalidArgument, "", 2, 7});
  EXPECT_TRUE(contains(e, "streaming")) << e;
}

TEST(PipelineCompiler, ReportsUnknownTopLevelKeyAtTheKey) {
  constexpr std::string_view kYaml = R"(name: x
steps:
  - kind: test::audio_source
  - kind: test::audio_sink
version: 2
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kInvalidArgument, "", 5, 1});
  EXPECT_TRUE(contains(e, "version")) << e;
}

TEST(PipelineCompiler, ReportsUnknownNodeKeyAtTheKey) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
    parms: {}
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kInvalidArgument, "mic", 4, 5});
  EXPECT_TRUE(contains(e, "parms")) << e;
}

TEST(PipelineCompiler, ReportsNeedsInStepsAsUnknownKey) {
  constexpr std::string_view kYaml = R"(steps:
  - kind: test::audio_source
  - kind: test::audio_sink
    needs: step_0
)";
  expect_single_error(kYaml, {ErrorCode::kInvalidArgument, "step_1", 4, 5});
}

TEST(PipelineCompiler, ReportsBadIsolationAtItsValue) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
    isolation: sandboxed
)";
  expect_single_error(kYaml, {ErrorCode::kInvalidArgument, "mic", 4, 16});
}

TEST(PipelineCompiler, ReportsNodeWithoutKindAtTheNode) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
  play:
    needs: mic
)";
  expect_single_error(kYaml, {ErrorCode::kInvalidArgument, "play", 4, 3});
}

TEST(PipelineCompiler, ReportsNeedsOnANodeWithoutInputs) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  b:
    kind: test::audio_source
    needs: a
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kGraphError, "b", 6, 12});
  EXPECT_TRUE(contains(e, "no inputs")) << e;
}

TEST(PipelineCompiler, ReportsTwoNeedsOnASingleInputNode) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  b:
    kind: test::audio_source
  play:
    kind: test::audio_sink
    needs: [a, b]
)";
  const CompiledPipeline c = compile(kYaml);
  EXPECT_FALSE(c.ok());
  const Status* e = find_error(c, "has no input 'in_1'");
  ASSERT_NE(e, nullptr) << report(c);
  expect_error(*e, {ErrorCode::kGraphError, "play", 8, 16});
  EXPECT_TRUE(contains(e->message(), "(inputs: in)")) << e->message();
}

TEST(PipelineCompiler, ReportsTheSameInputPinConnectedTwice) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  b:
    kind: test::audio_source
  mix:
    kind: test::mixer
    needs:
      in_0: a
      in_0: b
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kGraphError, "mix", 10, 13});
  EXPECT_TRUE(contains(e, "'in_0' is connected twice")) << e;
}

TEST(PipelineCompiler, ReportsAPinKeyedNeedsEntryForAnUnknownInput) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  play:
    kind: test::audio_sink
    needs:
      audio: a
)";
  const CompiledPipeline c = compile(kYaml);
  const Status* e = find_error(c, "no input 'audio'");
  ASSERT_NE(e, nullptr) << report(c);
  expect_error(*e, {ErrorCode::kGraphError, "play", 7, 14});
}

// ---- several errors at once -----------------------------------------------------------------

TEST(PipelineCompiler, ReportsAllDistinctErrorsAtOnceSortedByLine) {
  constexpr std::string_view kYaml = R"(name: many problems
mode: oneshot
nodes:
  src:
    kind: core::file_reader
    params:
      path: in.bin
      chunk_size: 0
  relay:
    kind: core::passthrough
    needs: src
    params:
      bogus: 1
  play:
    kind: test::audio_sink
    needs: relay
  boom:
    kind: testing::fault
    needs: src
    params: {mode: explode}
  odd:
    kind: core::frobnicator
  lonely:
    kind: core::sink
  pace:
    kind: core::pacer
    needs: src
    params:
      speed: fast
    isolation: sometimes
version: 2
)";
  const CompiledPipeline c = compile(kYaml);
  struct Row {
    int line;
    ErrorCode code;
    std::string node;
    std::string param;
  };
  const std::vector<Row> want = {
      {8, ErrorCode::kInvalidParam, "src", "chunk_size"},
      {13, ErrorCode::kInvalidParam, "relay", "bogus"},
      {16, ErrorCode::kPinTypeMismatch, "play", ""},
      {20, ErrorCode::kInvalidParam, "boom", "mode"},
      {22, ErrorCode::kUnknownKind, "odd", ""},
      {23, ErrorCode::kGraphError, "lonely", ""},
      {29, ErrorCode::kInvalidParam, "pace", "speed"},
      {30, ErrorCode::kInvalidArgument, "pace", ""},
      {31, ErrorCode::kInvalidArgument, "", ""},
  };
  ASSERT_EQ(c.errors.size(), want.size()) << report(c);
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("error #" + std::to_string(i) + ": " + c.errors[i].to_string());
    EXPECT_EQ(c.errors[i].where().line, want[i].line);
    EXPECT_EQ(error_code_name(c.errors[i].code()), error_code_name(want[i].code));
    EXPECT_EQ(c.errors[i].where().node_id, want[i].node);
    EXPECT_EQ(c.errors[i].where().param, want[i].param);
  }
  EXPECT_EQ(c.pipeline.nodes_size(), 0) << "an invalid pipeline emits no nodes";
}

TEST(PipelineCompiler, SortsErrorsOnOneLineByColumn) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {chunk_size: 0, path: 7, extra: x}
  out:
    kind: core::sink
    needs: src
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 3U) << report(c);
  std::vector<std::string> params;
  for (const auto& e : c.errors) {
    EXPECT_EQ(e.where().line, 4) << e.to_string();
    params.push_back(e.where().param);
  }
  EXPECT_EQ(params, (std::vector<std::string>{"chunk_size", "path", "extra"}));
  EXPECT_LT(c.errors[0].where().column, c.errors[1].where().column);
  EXPECT_LT(c.errors[1].where().column, c.errors[2].where().column);
}

TEST(PipelineCompiler, FormatsTheErrorReportWithSourceLineAndColumn) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin, chunk_size: 0}
  out:
    kind: core::nope
    needs: src
)";
  const CompiledPipeline c = compile(kYaml);
  const std::string text = c.error_report("pipeline.yml");
  EXPECT_TRUE(contains(text, "pipeline.yml:4:28: error: node 'src': param 'chunk_size': must be"))
      << text;
  EXPECT_TRUE(contains(text, "pipeline.yml:6:11: error: node 'out': unknown node kind")) << text;
  EXPECT_LT(text.find("pipeline.yml:4:"), text.find("pipeline.yml:6:")) << text;
}

// ---- valid documents ------------------------------------------------------------------------

TEST(PipelineCompiler, CompilesStepsIntoStepIdsChainedByReliableConnections) {
  constexpr std::string_view kYaml = R"(name: copy
steps:
  - kind: core::file_reader
    params: {path: in.bin}
  - kind: core::passthrough
  - kind: core::file_writer
    params: {path: out.bin}
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  const v1::Pipeline& p = c.pipeline;
  ASSERT_EQ(p.nodes_size(), 3);
  EXPECT_EQ(p.nodes(0).id(), "step_0");
  EXPECT_EQ(p.nodes(0).kind(), "core::file_reader");
  EXPECT_EQ(p.nodes(1).id(), "step_1");
  EXPECT_EQ(p.nodes(1).kind(), "core::passthrough");
  EXPECT_EQ(p.nodes(2).id(), "step_2");
  EXPECT_EQ(p.nodes(2).kind(), "core::file_writer");
  EXPECT_EQ(edges(p), (std::vector<std::string>{"step_0.out->step_1.in", "step_1.out->step_2.in"}));
  for (const auto& conn : p.connections()) {
    EXPECT_EQ(conn.mode(), v1::CONNECTION_MODE_RELIABLE);
  }
  EXPECT_EQ(p.nodes(1).position().line(), 5);
  EXPECT_EQ(p.nodes(1).position().column(), 5);
}

TEST(PipelineCompiler, DefaultsToDynamicMode) {
  const CompiledPipeline c = compile("steps:\n  - kind: test::audio_source\n");
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(c.pipeline.mode(), v1::PIPELINE_MODE_DYNAMIC);
}

TEST(PipelineCompiler, ReadsOneshotAndDynamicModes) {
  const CompiledPipeline oneshot = compile("mode: oneshot\nsteps:\n  - kind: test::audio_source\n");
  ASSERT_TRUE(oneshot.ok()) << report(oneshot);
  EXPECT_EQ(oneshot.pipeline.mode(), v1::PIPELINE_MODE_ONESHOT);
  const CompiledPipeline dynamic = compile("mode: dynamic\nsteps:\n  - kind: test::audio_source\n");
  ASSERT_TRUE(dynamic.ok()) << report(dynamic);
  EXPECT_EQ(dynamic.pipeline.mode(), v1::PIPELINE_MODE_DYNAMIC);
}

TEST(PipelineCompiler, PreservesNameAndDescription) {
  constexpr std::string_view kYaml = R"(name: Radio relay
description: |
  Reads a file
  and plays it.
steps:
  - kind: test::audio_source
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(c.pipeline.name(), "Radio relay");
  EXPECT_EQ(c.pipeline.description(), "Reads a file\nand plays it.\n");
}

TEST(PipelineCompiler, AcceptsStreamKitMetadataKeys) {
  constexpr std::string_view kYaml = R"(name: x
client: web
category: audio
tags: [a, b]
steps:
  - kind: test::audio_source
)";
  const CompiledPipeline c = compile(kYaml);
  EXPECT_TRUE(c.ok()) << report(c);
}

TEST(PipelineCompiler, MapsANeedsListToDynamicInputsInOrder) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  b:
    kind: test::audio_source
  c:
    kind: test::audio_source
  mix:
    kind: test::mixer
    needs: [a, b, c]
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(edges(c.pipeline),
            (std::vector<std::string>{"a.out->mix.in_0", "b.out->mix.in_1", "c.out->mix.in_2"}));
}

TEST(PipelineCompiler, MapsAOneEntryNeedsListToTheSingleInput) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
  play:
    kind: test::audio_sink
    needs: [mic]
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(edges(c.pipeline), (std::vector<std::string>{"mic.out->play.in"}));
}

TEST(PipelineCompiler, ReadsBestEffortModeFromANeedsObject) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
  play:
    kind: test::audio_sink
    needs: {node: mic, mode: best_effort}
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  ASSERT_EQ(c.pipeline.connections_size(), 1);
  const auto& conn = c.pipeline.connections(0);
  EXPECT_EQ(conn.from_node(), "mic");
  EXPECT_EQ(conn.from_pin(), "out");
  EXPECT_EQ(conn.to_node(), "play");
  EXPECT_EQ(conn.to_pin(), "in");
  EXPECT_EQ(conn.mode(), v1::CONNECTION_MODE_BEST_EFFORT);
  EXPECT_EQ(conn.position().line(), 6);
}

TEST(PipelineCompiler, ReadsExplicitReliableModeFromANeedsObject) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
  play:
    kind: test::audio_sink
    needs: {node: mic, mode: reliable}
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  ASSERT_EQ(c.pipeline.connections_size(), 1);
  EXPECT_EQ(c.pipeline.connections(0).mode(), v1::CONNECTION_MODE_RELIABLE);
}

TEST(PipelineCompiler, MixesPlainAndObjectEntriesInANeedsList) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  b:
    kind: test::audio_source
  mix:
    kind: test::mixer
    needs:
      - a
      - node: b
        mode: best_effort
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(edges(c.pipeline), (std::vector<std::string>{"a.out->mix.in_0", "b.out->mix.in_1"}));
  EXPECT_EQ(c.pipeline.connections(0).mode(), v1::CONNECTION_MODE_RELIABLE);
  EXPECT_EQ(c.pipeline.connections(1).mode(), v1::CONNECTION_MODE_BEST_EFFORT);
  EXPECT_EQ(c.pipeline.connections(1).position().line(), 10);
}

TEST(PipelineCompiler, ReadsADottedSourcePin) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
  subs:
    kind: core::sink
    needs: mic.captions
  play:
    kind: test::audio_sink
    needs: mic.out
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(edges(c.pipeline),
            (std::vector<std::string>{"mic.captions->subs.in", "mic.out->play.in"}));
}

TEST(PipelineCompiler, ReadsADottedSourcePinInANeedsObject) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
  subs:
    kind: core::sink
    needs: {node: mic.captions, mode: best_effort}
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(edges(c.pipeline), (std::vector<std::string>{"mic.captions->subs.in"}));
  EXPECT_EQ(c.pipeline.connections(0).mode(), v1::CONNECTION_MODE_BEST_EFFORT);
}

TEST(PipelineCompiler, ReadsNeedsKeyedByTargetPin) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  b:
    kind: test::audio_source
  mix:
    kind: test::mixer
    needs:
      in_1: a
      in_0: b.out
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(edges(c.pipeline), (std::vector<std::string>{"a.out->mix.in_1", "b.out->mix.in_0"}));
}

TEST(PipelineCompiler, KeepsNodesInDocumentOrderWithPositionsAndIsolation) {
  constexpr std::string_view kYaml = R"(nodes:
  zeta:
    kind: test::audio_source
    isolation: dedicated
  alpha:
    kind: test::audio_sink
    needs: zeta
    isolation: default
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  ASSERT_EQ(c.pipeline.nodes_size(), 2);
  EXPECT_EQ(c.pipeline.nodes(0).id(), "zeta");
  EXPECT_EQ(c.pipeline.nodes(0).isolation(), v1::ISOLATION_DEDICATED);
  EXPECT_EQ(c.pipeline.nodes(0).position().line(), 2);
  EXPECT_EQ(c.pipeline.nodes(0).position().column(), 3);
  EXPECT_EQ(c.pipeline.nodes(1).id(), "alpha");
  EXPECT_EQ(c.pipeline.nodes(1).isolation(), v1::ISOLATION_DEFAULT);
  EXPECT_EQ(c.pipeline.nodes(1).position().line(), 5);
  ASSERT_EQ(c.pipeline.connections_size(), 1);
  EXPECT_EQ(c.pipeline.connections(0).position().line(), 7);
  EXPECT_EQ(c.pipeline.connections(0).position().column(), 12);
}

TEST(PipelineCompiler, EmitsParamsJsonWithYamlScalarTypes) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params:
      path: "123"
      chunk_size: 123
  pace:
    kind: core::pacer
    needs: src
    params:
      speed: 1.5
      buffer_size: 8
  boom:
    kind: testing::fault
    needs: pace
    params:
      mode: 'error'
      after_packets: 0
  out:
    kind: streamkit::http_output
    needs: boom
    params:
      content_type: audio/ogg
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  const auto params_of = [&](std::string_view id) {
    const v1::NodeSpec* n = find_node(c.pipeline, id);
    EXPECT_NE(n, nullptr) << id;
    return n == nullptr ? Json() : Json::parse(n->params_json());
  };
  const Json src = params_of("src");
  EXPECT_EQ(src, (Json{{"path", "123"}, {"chunk_size", 123}})) << src.dump();
  EXPECT_TRUE(src["path"].is_string());
  EXPECT_TRUE(src["chunk_size"].is_number_integer());
  const Json pace = params_of("pace");
  EXPECT_TRUE(pace["speed"].is_number_float()) << pace.dump();
  EXPECT_DOUBLE_EQ(pace["speed"].get<double>(), 1.5);
  EXPECT_TRUE(pace["buffer_size"].is_number_integer()) << pace.dump();
  EXPECT_EQ(params_of("boom"), (Json{{"mode", "error"}, {"after_packets", 0}}));
  EXPECT_EQ(params_of("out"), (Json{{"content_type", "audio/ogg"}}));
}

TEST(PipelineCompiler, ConvertsYamlScalarsToJsonTypes) {
  constexpr std::string_view kYaml = R"(nodes:
  bag:
    kind: test::bag
    params:
      options:
        flag: true
        off: false
        quoted_flag: "true"
        nothing: ~
        empty:
        negative: -42
        ratio: 1.5
        exp: 1e3
        word: hello
        single: '7'
        list: [1, "2", x]
        nested: {a: 1, b: [true]}
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  const Json got = Json::parse(c.pipeline.nodes(0).params_json());
  const Json want = Json::parse(R"({"options": {
      "flag": true, "off": false, "quoted_flag": "true", "nothing": null, "empty": null,
      "negative": -42, "ratio": 1.5, "exp": 1000.0, "word": "hello", "single": "7",
      "list": [1, "2", "x"], "nested": {"a": 1, "b": [true]}}})");
  EXPECT_EQ(got, want) << got.dump();
  EXPECT_TRUE(got["options"]["negative"].is_number_integer());
  EXPECT_TRUE(got["options"]["exp"].is_number_float());
}

TEST(PipelineCompiler, ReportsAParamGivenTwiceAtTheSecondKey) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params:
      path: a.bin
      path: b.bin
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_FALSE(c.errors.empty()) << report(c);
  expect_error(c.errors.front(), {ErrorCode::kInvalidParam, "src", 6, 7, "path"});
  EXPECT_TRUE(contains(c.errors.front().message(), "twice")) << report(c);
}

TEST(PipelineCompiler, PassesBooleanParamsAsJsonBooleans) {
  // A boolean where a string is expected is reported as a boolean, and "true" quoted is a
  // string and accepted.
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: streamkit::http_input
    params:
      field: true
  out:
    kind: streamkit::http_output
    needs: src
    params:
      content_type: "true"
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 1U) << report(c);
  expect_error(c.errors[0], {ErrorCode::kInvalidParam, "src", 5, 7, "field"});
  EXPECT_TRUE(contains(c.errors[0].message(), "got boolean")) << c.errors[0].message();
}

TEST(PipelineCompiler, PassesAFloatAsANumberIntoAnIntegerParam) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin, chunk_size: 1.5}
)";
  const std::string e =
      expect_single_error(kYaml, {ErrorCode::kInvalidParam, "src", 4, 28, "chunk_size"});
  EXPECT_TRUE(contains(e, "got number 1.5")) << e;
}

TEST(PipelineCompiler, EmitsEmptyObjectForANodeWithoutParams) {
  const CompiledPipeline c = compile("steps:\n  - kind: test::audio_source\n");
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(c.pipeline.nodes(0).params_json(), "{}");
}

TEST(PipelineCompiler, CompilesWithTheBuiltinRegistryByDefault) {
  constexpr std::string_view kYaml = R"(mode: oneshot
steps:
  - kind: streamkit::http_input
  - kind: core::pacer
    params: {speed: 2}
  - kind: streamkit::http_output
    params: {content_type: audio/ogg}
)";
  const CompiledPipeline c = compile_pipeline_yaml(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(c.pipeline.nodes_size(), 3);
  EXPECT_EQ(c.pipeline.connections_size(), 2);
}

TEST(PipelineCompiler, DoesNotKnowTestKindsInTheBuiltinRegistry) {
  const CompiledPipeline c = compile_pipeline_yaml("steps:\n  - kind: test::audio_source\n");
  ASSERT_EQ(c.errors.size(), 1U) << report(c);
  expect_error(c.errors[0], {ErrorCode::kUnknownKind, "step_0", 2, 11});
}

// ---- known bugs: these fail until the compiler is fixed -----------------------------------

TEST(PipelineCompiler, ReportsDanglingNeedsOnceWithoutASpuriousMissingInput) {
  // `needs: ghost` is one mistake; "required input 'in' is not connected (add 'needs: ...')"
  // on top of it tells the user to add what they already wrote.
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  out:
    kind: core::sink
    needs: ghost
)";
  expect_single_error(kYaml, {ErrorCode::kGraphError, "out", 7, 12});
}

TEST(PipelineCompiler, ReportsBadConnectionModeOnceWithoutASpuriousMissingInput) {
  // The need names its node; only the mode is wrong. "required input 'in' is not connected"
  // on top of that is a second, misleading error for the same mistake.
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_reader
    params: {path: in.bin}
  out:
    kind: core::sink
    needs:
      node: src
      mode: fast
)";
  expect_single_error(kYaml, {ErrorCode::kInvalidArgument, "out", 9, 13});
}

TEST(PipelineCompiler, ReportsUnknownUpstreamKindOnceWithoutASpuriousMissingInput) {
  // One mistyped kind must not also make every node that needs it report "required input
  // 'in' is not connected": its needs are there, the upstream kind is the only problem.
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: core::file_raeder
    params: {path: in.bin}
  out:
    kind: core::sink
    needs: src
)";
  expect_single_error(kYaml, {ErrorCode::kUnknownKind, "src", 3, 11});
}

TEST(PipelineCompiler, MapsASingleNeedOnADynamicFamilyToItsFirstMember) {
  // pipeline_compiler.cpp: "A single need on a node with a dynamic family maps to its first
  // member", i.e. in_0, the same pin `needs: [a, b]` would give the first entry.
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: test::audio_source
  mix1:
    kind: test::mixer
    needs: a
  mix2:
    kind: test::mixer
    needs: [a]
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  EXPECT_EQ(edges(c.pipeline), (std::vector<std::string>{"a.out->mix1.in_0", "a.out->mix2.in_0"}));
}

TEST(PipelineCompiler, KeepsPlainNanAndInfWordsAsStrings) {
  // YAML spells the special floats .nan and .inf; the plain words nan, inf and infinity are
  // strings (YAML 1.1 and 1.2 alike; yaml-cpp's own as<double>() does not read them).
  constexpr std::string_view kYaml = R"(nodes:
  bag:
    kind: test::bag
    params:
      options: {a: nan, b: inf, c: infinity, d: -inf}
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_TRUE(c.ok()) << report(c);
  const Json got = Json::parse(c.pipeline.nodes(0).params_json());
  EXPECT_EQ(got, Json::parse(R"({"options": {"a": "nan", "b": "inf", "c": "infinity",
                                             "d": "-inf"}})"))
      << got.dump();
}

TEST(PipelineCompiler, AcceptsTheWordNanForAStringParam) {
  constexpr std::string_view kYaml = R"(nodes:
  src:
    kind: streamkit::http_input
    params:
      field: nan
  out:
    kind: streamkit::http_output
    needs: src
    params:
      content_type: inf
)";
  const CompiledPipeline c = compile(kYaml);
  EXPECT_TRUE(c.ok()) << report(c);
}

TEST(PipelineCompiler, ReportsEachOfTwoDisjointCycles) {
  constexpr std::string_view kYaml = R"(nodes:
  a:
    kind: core::passthrough
    needs: b
  b:
    kind: core::passthrough
    needs: a
  c:
    kind: core::passthrough
    needs: d
  d:
    kind: core::passthrough
    needs: c
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_EQ(c.errors.size(), 2U) << report(c);
  expect_error(c.errors[0], {ErrorCode::kGraphError, "a", 2, 3});
  expect_error(c.errors[1], {ErrorCode::kGraphError, "c", 8, 3});
  EXPECT_TRUE(contains(c.errors[1].message(), "circular dependency: c -> d -> c"))
      << c.errors[1].message();
}

TEST(PipelineCompiler, ReportsANodeWithAnEmptyBodyOnItsOwnLine) {
  // `empty:` has no value; the error must point at `empty` (line 2), not at the next node.
  constexpr std::string_view kYaml = R"(nodes:
  empty:
  mic:
    kind: test::audio_source
)";
  const std::string e = expect_single_error(kYaml, {ErrorCode::kInvalidArgument, "empty", 2, 3});
  EXPECT_TRUE(contains(e, "must be a mapping")) << e;
}

TEST(PipelineCompiler, ReportsADuplicateTopLevelSection) {
  // YAML forbids duplicate keys; yaml-cpp keeps both, and root["nodes"] sees only one of
  // them, so the other section must not be dropped silently.
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
nodes:
  play:
    kind: test::audio_sink
    needs: mic
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_FALSE(c.ok()) << "compiled " << c.pipeline.nodes_size() << " node(s) silently";
  EXPECT_EQ(c.errors.front().where().line, 4) << report(c);
}

TEST(PipelineCompiler, ReportsAKindGivenTwice) {
  constexpr std::string_view kYaml = R"(nodes:
  mic:
    kind: test::audio_source
    kind: core::file_reader
)";
  const CompiledPipeline c = compile(kYaml);
  ASSERT_FALSE(c.ok()) << "kind of mic: " << c.pipeline.nodes(0).kind();
  EXPECT_EQ(c.errors.front().where().line, 4) << report(c);
  EXPECT_EQ(c.errors.front().where().node_id, "mic") << report(c);
}

}  // namespace
}  // namespace skit::supervisor
