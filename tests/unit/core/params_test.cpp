// SPDX-License-Identifier: MPL-2.0
// Typed node params: decoding with defaults, range and type checks, live tuning and the
// published JSON Schema.
#include "skit/core/params.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "skit/core/node.hpp"
#include "skit/core/registry.hpp"

namespace skit {
namespace {

struct TestParams {
  bool enabled = true;
  std::int64_t count = 4;
  std::int64_t offset = 0;
  int small = 7;
  std::int64_t big = 0;
  double gain = 1.0;
  std::string label = "default";
  std::string mode = "fast";
  std::string path;

  static void describe(ParamSchemaBuilder<TestParams>& b) {
    b.field("enabled", &TestParams::enabled, "Whether the node does anything.");
    b.field("count", &TestParams::count, "How many.").range(1, 100);
    b.field("offset", &TestParams::offset, "Signed shift.").range(-100, 100);
    b.field("small", &TestParams::small, "A 32-bit integer without a range.");
    b.field("big", &TestParams::big, "A 64-bit integer without a range.");
    b.field("gain", &TestParams::gain, "Linear gain.").range(0.0, 4.0).tunable();
    b.field("label", &TestParams::label, "Free text.");
    b.field("mode", &TestParams::mode, "Processing mode.").choices({"fast", "slow"}).tunable();
    b.field("path", &TestParams::path, "Where to read.").required();
  }
};

/// Cross-field rule: low must not exceed high.
struct BoundsParams {
  std::int64_t low = 0;
  std::int64_t high = 10;

  static void describe(ParamSchemaBuilder<BoundsParams>& b) {
    b.field("low", &BoundsParams::low, "Lower bound.").tunable();
    b.field("high", &BoundsParams::high, "Upper bound.").tunable();
  }
  [[nodiscard]] Status validate() const {
    if (low > high) {
      return Status(ErrorCode::kInvalidParam, "low must not exceed high", {.param = "low"});
    }
    return Status::ok();
  }
};

class TestNode final : public NodeWithParams<TestParams> {
 public:
  using NodeWithParams::NodeWithParams;
  [[nodiscard]] const TestParams& current() const { return params(); }
};

class BoundsNode final : public NodeWithParams<BoundsParams> {
 public:
  using NodeWithParams::NodeWithParams;
  [[nodiscard]] const BoundsParams& current() const { return params(); }
};

/// Minimal valid params plus `extra`.
Json with_path(Json extra = Json::object()) {
  extra["path"] = "in.wav";
  return extra;
}

/// Decodes `params` and returns every error.
std::vector<Status> errors_of(const Json& params) {
  std::vector<Status> errors;
  auto decoded = decode_params<TestParams>(params, &errors);
  EXPECT_EQ(decoded.is_ok(), errors.empty());
  return errors;
}

/// Decodes `params`, expecting exactly one kInvalidParam error about `param`.
void expect_single_param_error(const Json& params, const std::string& param) {
  const auto errors = errors_of(params);
  ASSERT_EQ(errors.size(), 1U) << params.dump();
  EXPECT_EQ(errors[0].code(), ErrorCode::kInvalidParam) << errors[0].to_string();
  EXPECT_EQ(errors[0].where().param, param) << errors[0].to_string();
}

TestParams decode_ok(const Json& params) {
  auto decoded = decode_params<TestParams>(params);
  EXPECT_TRUE(decoded.is_ok()) << params.dump() << ": " << decoded.status().to_string();
  return decoded.is_ok() ? decoded.value() : TestParams{};
}

// ---- decoding -------------------------------------------------------------------------------

TEST(Params, DecodesDefaultsForEveryParamNotGiven) {
  const TestParams p = decode_ok(with_path());
  EXPECT_TRUE(p.enabled);
  EXPECT_EQ(p.count, 4);
  EXPECT_EQ(p.offset, 0);
  EXPECT_EQ(p.small, 7);
  EXPECT_DOUBLE_EQ(p.gain, 1.0);
  EXPECT_EQ(p.label, "default");
  EXPECT_EQ(p.mode, "fast");
  EXPECT_EQ(p.path, "in.wav");
}

TEST(Params, DecodesEveryFieldTypeFromJson) {
  const TestParams p = decode_ok(with_path({{"enabled", false},
                                            {"count", 42},
                                            {"small", 123456},
                                            {"gain", 2.5},
                                            {"label", "hello"},
                                            {"mode", "slow"}}));
  EXPECT_FALSE(p.enabled);
  EXPECT_EQ(p.count, 42);
  EXPECT_EQ(p.small, 123456);
  EXPECT_DOUBLE_EQ(p.gain, 2.5);
  EXPECT_EQ(p.label, "hello");
  EXPECT_EQ(p.mode, "slow");
}

TEST(Params, AcceptsAnIntegerForANumberParam) {
  EXPECT_DOUBLE_EQ(decode_ok(with_path({{"gain", 3}})).gain, 3.0);
}

TEST(Params, AcceptsAWholeFloatForAnIntegerParam) {
  EXPECT_EQ(decode_ok(with_path({{"count", 5.0}})).count, 5);
}

TEST(Params, AcceptsIntegerRangeBoundsExactly) {
  EXPECT_EQ(decode_ok(with_path({{"count", 1}})).count, 1);
  EXPECT_EQ(decode_ok(with_path({{"count", 100}})).count, 100);
}

TEST(Params, RejectsIntegerJustBelowMinimumNamingTheParam) {
  expect_single_param_error(with_path({{"count", 0}}), "count");
  const auto errors = errors_of(with_path({{"count", 0}}));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].message().find(">= 1"), std::string::npos) << errors[0].message();
}

TEST(Params, RejectsIntegerJustAboveMaximumNamingTheParam) {
  expect_single_param_error(with_path({{"count", 101}}), "count");
  const auto errors = errors_of(with_path({{"count", 101}}));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].message().find("<= 100"), std::string::npos) << errors[0].message();
}

TEST(Params, AcceptsNumberRangeBoundsExactly) {
  EXPECT_DOUBLE_EQ(decode_ok(with_path({{"gain", 0.0}})).gain, 0.0);
  EXPECT_DOUBLE_EQ(decode_ok(with_path({{"gain", 4.0}})).gain, 4.0);
}

TEST(Params, RejectsNumberJustOutsideTheRange) {
  expect_single_param_error(with_path({{"gain", -0.001}}), "gain");
  expect_single_param_error(with_path({{"gain", 4.001}}), "gain");
  expect_single_param_error(with_path({{"gain", std::nextafter(4.0, 5.0)}}), "gain");
}

TEST(Params, RejectsAnUnsignedValueAboveInt64MaxForAnInt64Param) {
  // 2^63 arrives as an unsigned JSON integer; it must not wrap to a negative value.
  expect_single_param_error(with_path({{"big", std::uint64_t{1} << 63}}), "big");
}

TEST(Params, RejectsAHugeFloatForAnIntegerParam) {
  expect_single_param_error(with_path({{"big", 1e300}}), "big");
}

TEST(Params, RejectsNegativeIntegerJustBelowASignedRange) {
  expect_single_param_error(with_path({{"offset", -101}}), "offset");
}

TEST(Params, RejectsAnIntegerThatDoesNotFitAThirtyTwoBitField) {
  expect_single_param_error(with_path({{"small", std::int64_t{1} << 40}}), "small");
}

TEST(Params, RejectsNaNAndInfinityForANumberParam) {
  expect_single_param_error(with_path({{"gain", std::numeric_limits<double>::quiet_NaN()}}),
                            "gain");
  expect_single_param_error(with_path({{"gain", std::numeric_limits<double>::infinity()}}), "gain");
  expect_single_param_error(with_path({{"gain", -std::numeric_limits<double>::infinity()}}),
                            "gain");
}

TEST(Params, RejectsNaNAndInfinityForAnIntegerParam) {
  expect_single_param_error(with_path({{"count", std::numeric_limits<double>::quiet_NaN()}}),
                            "count");
  expect_single_param_error(with_path({{"count", std::numeric_limits<double>::infinity()}}),
                            "count");
}

TEST(Params, RejectsAFractionalNumberForAnIntegerParam) {
  expect_single_param_error(with_path({{"count", 2.5}}), "count");
}

TEST(Params, NullMeansNotSetAndKeepsTheDefault) {
  // StreamKit writes optional params as `key: null` (e.g. sync_timeout_ms: null).
  const auto p = decode_ok(with_path({{"label", nullptr}, {"count", nullptr}}));
  EXPECT_EQ(p.label, TestParams{}.label);
  EXPECT_EQ(p.count, TestParams{}.count);
  expect_single_param_error(Json{{"path", nullptr}}, "path");  // a required param stays required
}

TEST(Params, RejectsWrongJsonTypesWithExpectedAndActualType) {
  expect_single_param_error(with_path({{"enabled", 1}}), "enabled");
  expect_single_param_error(with_path({{"enabled", "true"}}), "enabled");
  expect_single_param_error(with_path({{"count", "5"}}), "count");
  expect_single_param_error(with_path({{"count", true}}), "count");
  expect_single_param_error(with_path({{"gain", "1.0"}}), "gain");
  expect_single_param_error(with_path({{"gain", false}}), "gain");
  expect_single_param_error(with_path({{"label", 5}}), "label");
  expect_single_param_error(with_path({{"label", Json::array({"a"})}}), "label");

  const auto errors = errors_of(with_path({{"count", "five"}}));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].message().find("expected integer"), std::string::npos) << errors[0].message();
  EXPECT_NE(errors[0].message().find("string"), std::string::npos) << errors[0].message();
}

TEST(Params, RejectsAValueOutsideTheEnumListingTheChoices) {
  const auto errors = errors_of(with_path({{"mode", "medium"}}));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].where().param, "mode");
  EXPECT_NE(errors[0].message().find("fast, slow"), std::string::npos) << errors[0].message();
  EXPECT_NE(errors[0].message().find("medium"), std::string::npos) << errors[0].message();
}

TEST(Params, RejectsAnUnknownParamNamingItAndListingTheKnownOnes) {
  const auto errors = errors_of(with_path({{"colour", "red"}}));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].code(), ErrorCode::kInvalidParam);
  EXPECT_EQ(errors[0].where().param, "colour");
  EXPECT_NE(errors[0].message().find("unknown param"), std::string::npos) << errors[0].message();
  EXPECT_NE(errors[0].message().find("gain"), std::string::npos) << errors[0].message();
}

TEST(Params, RejectsAMissingRequiredParam) {
  const auto errors = errors_of(Json::object());
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].code(), ErrorCode::kInvalidParam);
  EXPECT_EQ(errors[0].where().param, "path");
  EXPECT_NE(errors[0].message().find("required"), std::string::npos) << errors[0].message();
}

TEST(Params, NullParamsMeanAllDefaultsButStillRequireRequiredParams) {
  const auto errors = errors_of(Json());
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].where().param, "path");

  auto bounds = decode_params<BoundsParams>(Json());
  ASSERT_TRUE(bounds.is_ok()) << bounds.status().to_string();
  EXPECT_EQ(bounds->low, 0);
  EXPECT_EQ(bounds->high, 10);
}

TEST(Params, RejectsParamsThatAreNotAnObject) {
  const auto errors = errors_of(Json::array({1, 2}));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].code(), ErrorCode::kInvalidParam);
  EXPECT_NE(errors[0].message().find("mapping"), std::string::npos) << errors[0].message();
}

TEST(Params, ReportsEveryProblemAtOnceAndReturnsTheFirst) {
  std::vector<Status> errors;
  auto decoded = decode_params<TestParams>(
      Json{{"count", 0}, {"gain", "loud"}, {"bogus", 1}, {"mode", "medium"}}, &errors);
  ASSERT_FALSE(decoded.is_ok());
  std::vector<std::string> params;
  for (const auto& e : errors) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidParam) << e.to_string();
    params.push_back(e.where().param);
  }
  std::sort(params.begin(), params.end());
  EXPECT_EQ(params, (std::vector<std::string>{"bogus", "count", "gain", "mode", "path"}));
  EXPECT_EQ(decoded.status().where().param, errors.front().where().param);
}

TEST(Params, RunsTheCrossFieldRuleOnlyAfterTheFieldsDecode) {
  auto bad = decode_params<BoundsParams>(Json{{"low", 20}, {"high", 5}});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().message(), "low must not exceed high");

  std::vector<Status> errors;
  (void)decode_params<BoundsParams>(Json{{"low", 20}, {"high", "x"}}, &errors);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].where().param, "high");
}

TEST(Params, EncodesEveryFieldBack) {
  const TestParams p = decode_ok(with_path({{"count", 9}, {"label", "x"}}));
  const Json j = param_schema_of<TestParams>().encode(&p);
  EXPECT_EQ(j, (Json{{"enabled", true},
                     {"count", 9},
                     {"offset", 0},
                     {"small", 7},
                     {"big", 0},
                     {"gain", 1.0},
                     {"label", "x"},
                     {"mode", "fast"},
                     {"path", "in.wav"}}));
}

// ---- live tuning ----------------------------------------------------------------------------

TestParams base_params() {
  return decode_ok(with_path({{"count", 3}}));
}

TEST(ParamsTuning, AcceptsATunableParam) {
  TestNode node(base_params());
  const Status s = node.tune(Json{{"gain", 2.5}});
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_DOUBLE_EQ(node.current().gain, 2.5);
  EXPECT_EQ(node.current().count, 3);
  EXPECT_EQ(node.current().path, "in.wav");
}

TEST(ParamsTuning, AcceptsSeveralTunableParamsInOnePatch) {
  TestNode node(base_params());
  ASSERT_TRUE(node.tune(Json{{"gain", 0.5}, {"mode", "slow"}}).is_ok());
  EXPECT_DOUBLE_EQ(node.current().gain, 0.5);
  EXPECT_EQ(node.current().mode, "slow");
}

TEST(ParamsTuning, RejectsANonTunableParamAndKeepsTheOldValue) {
  TestNode node(base_params());
  const Status s = node.tune(Json{{"count", 5}});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), ErrorCode::kInvalidParam);
  EXPECT_EQ(s.where().param, "count");
  EXPECT_NE(s.message().find("while running"), std::string::npos) << s.message();
  EXPECT_EQ(node.current().count, 3);
}

TEST(ParamsTuning, RejectsTheWholePatchWhenOneParamIsNotTunable) {
  TestNode node(base_params());
  const Status s = node.tune(Json{{"gain", 3.0}, {"path", "other.wav"}});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.where().param, "path");
  EXPECT_DOUBLE_EQ(node.current().gain, 1.0);
  EXPECT_EQ(node.current().path, "in.wav");
}

TEST(ParamsTuning, RejectsAnOutOfRangeValueForATunableParam) {
  TestNode node(base_params());
  const Status s = node.tune(Json{{"gain", 4.5}});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.where().param, "gain");
  EXPECT_DOUBLE_EQ(node.current().gain, 1.0);
}

TEST(ParamsTuning, RejectsAnInvalidChoiceForATunableEnum) {
  TestNode node(base_params());
  const Status s = node.tune(Json{{"mode", "warp"}});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.where().param, "mode");
  EXPECT_EQ(node.current().mode, "fast");
}

TEST(ParamsTuning, RejectsAnUnknownParam) {
  TestNode node(base_params());
  const Status s = node.tune(Json{{"volume", 1}});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.where().param, "volume");
}

TEST(ParamsTuning, DoesNotRequireRequiredParamsInAPatch) {
  TestNode node(base_params());
  EXPECT_TRUE(node.tune(Json{{"gain", 2.0}}).is_ok());
  EXPECT_TRUE(node.tune(Json::object()).is_ok());
  EXPECT_EQ(node.current().path, "in.wav");
}

TEST(ParamsTuning, AppliesTheCrossFieldRuleToThePatchedParams) {
  BoundsNode node(BoundsParams{});
  EXPECT_FALSE(node.tune(Json{{"low", 11}}).is_ok());
  EXPECT_EQ(node.current().low, 0);
  EXPECT_TRUE(node.tune(Json{{"low", 10}}).is_ok());
  EXPECT_EQ(node.current().low, 10);
}

// ---- JSON Schema ----------------------------------------------------------------------------

TEST(ParamsJsonSchema, IsAClosedObjectWithOnePropertyPerField) {
  const Json schema = param_schema_of<TestParams>().json_schema();
  EXPECT_EQ(schema["type"], "object");
  EXPECT_EQ(schema["additionalProperties"], false);
  ASSERT_TRUE(schema["properties"].is_object());
  EXPECT_EQ(schema["properties"].size(), 9U);
}

TEST(ParamsJsonSchema, GivesEachPropertyItsJsonTypeAndDescription) {
  const Json props = param_schema_of<TestParams>().json_schema()["properties"];
  EXPECT_EQ(props["enabled"]["type"], "boolean");
  EXPECT_EQ(props["count"]["type"], "integer");
  EXPECT_EQ(props["small"]["type"], "integer");
  EXPECT_EQ(props["gain"]["type"], "number");
  EXPECT_EQ(props["label"]["type"], "string");
  EXPECT_EQ(props["mode"]["type"], "string");
  EXPECT_EQ(props["gain"]["description"], "Linear gain.");
}

TEST(ParamsJsonSchema, PublishesDefaultsOfOptionalParams) {
  const Json props = param_schema_of<TestParams>().json_schema()["properties"];
  EXPECT_EQ(props["enabled"]["default"], true);
  EXPECT_EQ(props["count"]["default"], 4);
  EXPECT_TRUE(props["count"]["default"].is_number_integer());
  EXPECT_EQ(props["gain"]["default"], 1.0);
  EXPECT_EQ(props["label"]["default"], "default");
  EXPECT_EQ(props["mode"]["default"], "fast");
  EXPECT_FALSE(props["path"].contains("default"));
}

TEST(ParamsJsonSchema, PublishesMinimumAndMaximumOnlyForRangedParams) {
  const Json props = param_schema_of<TestParams>().json_schema()["properties"];
  EXPECT_EQ(props["count"]["minimum"], 1);
  EXPECT_EQ(props["count"]["maximum"], 100);
  EXPECT_EQ(props["offset"]["minimum"], -100);
  EXPECT_EQ(props["gain"]["minimum"], 0.0);
  EXPECT_EQ(props["gain"]["maximum"], 4.0);
  EXPECT_FALSE(props["small"].contains("minimum"));
  EXPECT_FALSE(props["small"].contains("maximum"));
}

TEST(ParamsJsonSchema, PublishesEnumChoices) {
  const Json props = param_schema_of<TestParams>().json_schema()["properties"];
  EXPECT_EQ(props["mode"]["enum"], Json::array({"fast", "slow"}));
  EXPECT_FALSE(props["label"].contains("enum"));
}

TEST(ParamsJsonSchema, ListsRequiredParams) {
  const Json schema = param_schema_of<TestParams>().json_schema();
  EXPECT_EQ(schema["required"], Json::array({"path"}));
  EXPECT_FALSE(param_schema_of<BoundsParams>().json_schema().contains("required"));
}

TEST(ParamsJsonSchema, MarksOnlyTunableParamsTunable) {
  const Json props = param_schema_of<TestParams>().json_schema()["properties"];
  EXPECT_EQ(props["gain"]["tunable"], true);
  EXPECT_EQ(props["mode"]["tunable"], true);
  for (const char* name : {"enabled", "count", "offset", "small", "big", "label", "path"}) {
    EXPECT_FALSE(props[name].contains("tunable")) << name;
  }
}

TEST(ParamsJsonSchema, OfAKindWithoutParamsIsAnEmptyClosedObject) {
  const Json schema = param_schema_of<NoParams>().json_schema();
  EXPECT_EQ(schema["type"], "object");
  EXPECT_TRUE(schema["properties"].empty());
  EXPECT_FALSE(schema.contains("required"));
}

// ---- known bug: negative integers are rejected as "does not fit" (params.hpp) ---------------

TEST(Params, AcceptsNegativeIntegersWithinASignedRange) {
  // offset has range(-100, 100): every value in it, including the negative bound, is valid.
  EXPECT_EQ(decode_ok(with_path({{"offset", -100}})).offset, -100);
  EXPECT_EQ(decode_ok(with_path({{"offset", -1}})).offset, -1);
  EXPECT_EQ(decode_ok(with_path({{"offset", 100}})).offset, 100);
}

TEST(Params, AcceptsNegativeValuesForAnUnboundedIntParam) {
  EXPECT_EQ(decode_ok(with_path({{"small", -5}})).small, -5);
}

TEST(Params, AcceptsNegativeValuesForAnUnboundedInt64Param) {
  EXPECT_EQ(decode_ok(with_path({{"big", -5}})).big, -5);
  EXPECT_EQ(decode_ok(with_path({{"big", std::numeric_limits<std::int64_t>::min()}})).big,
            std::numeric_limits<std::int64_t>::min());
}

}  // namespace
}  // namespace skit

namespace skit {
namespace {
TEST(FormatNumber, IntegersExactlyOthersShortest) {
  EXPECT_EQ(format_number(16777216), "16777216");
  EXPECT_EQ(format_number(4294967295.0), "4294967295");
  EXPECT_EQ(format_number(-5), "-5");
  EXPECT_EQ(format_number(0.25), "0.25");
  EXPECT_EQ(format_number(1e-6), "1e-06");
  EXPECT_EQ(format_number(44100.5), "44100.5");
}
}  // namespace
}  // namespace skit
