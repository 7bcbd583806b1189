// SPDX-License-Identifier: MPL-2.0
// The one authorization check of every front end: a role's permissions (StreamKit's names),
// the refusal naming the least role that may, and the token comparisons.
#include "authorization.hpp"

#include <gtest/gtest.h>

namespace skit::gateway {
namespace {

TEST(Authorization, ViewersReadOperatorsAndAdminsChangeOnlyAdminsManagePlugins) {
  for (const Role role : {Role::kViewer, Role::kOperator, Role::kAdmin}) {
    const bool writes = role != Role::kViewer;
    const auto p = permissions_of(role);
    EXPECT_EQ(p.size(), 16U);
    for (const char* read : {"list_sessions", "list_nodes", "list_samples", "read_samples"}) {
      EXPECT_TRUE(p.at(read).get<bool>()) << role_name(role) << " " << read;
    }
    for (const char* write : {"create_sessions", "destroy_sessions", "modify_sessions",
                              "tune_nodes", "write_samples", "delete_samples", "upload_assets",
                              "delete_assets", "process_oneshot"}) {
      EXPECT_EQ(p.at(write).get<bool>(), writes) << role_name(role) << " " << write;
    }
    // An operator works on its own sessions; a viewer watches all, an admin runs all.
    EXPECT_EQ(p.at("access_all_sessions").get<bool>(), role != Role::kOperator) << role_name(role);
    // Plugins run native code: only admins manage them.
    EXPECT_EQ(p.at("load_plugins").get<bool>(), role == Role::kAdmin);
    EXPECT_EQ(p.at("delete_plugins").get<bool>(), role == Role::kAdmin);
  }
}

TEST(Authorization, AnOperatorReachesOnlyTheSessionsOfItsOwnToken) {
  const Caller alice{"alice", Role::kOperator};
  EXPECT_TRUE(may_access_session(alice, "alice"));
  EXPECT_FALSE(may_access_session(alice, "bob"));
  EXPECT_FALSE(may_access_session(alice, "")) << "a session of no token is the admin's";
  EXPECT_TRUE(may_access_session({"carol", Role::kViewer}, "bob"));
  EXPECT_TRUE(may_access_session({"root", Role::kAdmin}, "bob"));
  EXPECT_TRUE(may_access_session({}, "")) << "without auth every caller is the admin";
}

TEST(Authorization, ARefusalNamesTheRoleAndTheLeastRoleThatMay) {
  EXPECT_TRUE(authorize(Role::kOperator, Permission::kTuneNodes, "tune nodes").is_ok());
  const Status denied = authorize(Role::kViewer, Permission::kTuneNodes, "tune nodes");
  EXPECT_EQ(denied.code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(denied.message(), "role 'viewer' may not tune nodes (needs operator)");
  EXPECT_TRUE(authorize(Role::kAdmin, Permission::kLoadPlugins, "load plugins").is_ok());
  const Status op = authorize(Role::kOperator, Permission::kLoadPlugins, "load plugins");
  EXPECT_EQ(op.code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(op.message(), "role 'operator' may not load plugins (needs admin)");
}

TEST(Authorization, BearerTokensInAnyCaseOfTheScheme) {
  EXPECT_EQ(bearer_token("Bearer abc").value_or("-"), "abc");
  EXPECT_EQ(bearer_token("bearer   abc").value_or("-"), "abc");
  EXPECT_EQ(bearer_token("BEARER abc").value_or("-"), "abc");
  EXPECT_FALSE(bearer_token("Basic abc"));
  EXPECT_FALSE(bearer_token("Bearerabc"));
  EXPECT_FALSE(bearer_token("Bearer"));
}

TEST(Authorization, TokensMatchWholeAndOnlyWhole) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secre"));
  EXPECT_FALSE(constant_time_equal("secret", "secret!"));
  EXPECT_FALSE(constant_time_equal("secret", "Secret"));
  const std::vector<TokenConfig> tokens{{.name = "a", .token = "tok-a", .role = Role::kViewer},
                                        {.name = "b", .token = "tok-b", .role = Role::kOperator}};
  const TokenConfig* b = find_token(tokens, "tok-b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->name, "b");
  EXPECT_EQ(find_token(tokens, "tok-"), nullptr);
  EXPECT_EQ(find_token(tokens, ""), nullptr);
}

}  // namespace
}  // namespace skit::gateway
