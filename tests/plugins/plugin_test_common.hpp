// SPDX-License-Identifier: MPL-2.0
// Shared by the official plugin tests: where the built plugins are, and a metadata check.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "plugin_abi_driver.hpp"

namespace skit::testing {

inline std::string plugin_path(const std::string& name) {
  return std::string(SKIT_PLUGIN_DIR) + "/lib" + name + ".so";
}

/// The checks every official plugin's metadata passes: the expected kind, a description that
/// names the StreamKit role it fills, named pins with concrete types, a JSON-Schema object of
/// params whose properties all have a type and a default, and categories.
inline void expect_valid_metadata(const CNodeMetadata& m, const std::string& kind) {
  EXPECT_EQ(std::string(m.kind), kind);
  ASSERT_NE(m.description, nullptr);
  EXPECT_NE(std::string(m.description).find("StreamKit"), std::string::npos) << m.description;
  ASSERT_GE(m.inputs_count, 1u);
  for (size_t i = 0; i < m.inputs_count; ++i) {
    ASSERT_NE(m.inputs[i].name, nullptr);
    EXPECT_GE(m.inputs[i].accepts_types_count, 1u) << m.inputs[i].name;
  }
  ASSERT_GE(m.outputs_count, 1u);
  for (size_t i = 0; i < m.outputs_count; ++i) {
    ASSERT_NE(m.outputs[i].name, nullptr);
    EXPECT_LE(m.outputs[i].produces_type.type_discriminant, CPacketType_Passthrough);
  }
  ASSERT_NE(m.param_schema, nullptr);
  auto schema = nlohmann::json::parse(m.param_schema, nullptr, false);
  ASSERT_FALSE(schema.is_discarded()) << "param_schema is not JSON: " << m.param_schema;
  EXPECT_EQ(schema.value("type", ""), "object");
  ASSERT_TRUE(schema.contains("properties"));
  for (const auto& [name, prop] : schema["properties"].items()) {
    EXPECT_TRUE(prop.contains("type")) << name;
    EXPECT_TRUE(prop.contains("default")) << name;
    EXPECT_TRUE(prop.contains("description")) << name;
  }
  EXPECT_GE(m.categories_count, 1u);
}

}  // namespace skit::testing
