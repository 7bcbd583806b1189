// SPDX-License-Identifier: MPL-2.0
#include "skit/core/script_policy.hpp"

#include <cstdlib>

namespace skit {

Json ScriptPolicy::to_json() const {
  Json secrets_json = Json::object();
  for (const auto& [name, s] : secrets) {
    secrets_json[name] = {{"env", s.env},
                          {"type", s.type},
                          {"description", s.description},
                          {"allowed_fetch_urls", s.allowed_fetch_urls}};
  }
  return {{"default_timeout_ms", default_timeout_ms},
          {"default_memory_limit_mb", default_memory_limit_mb},
          {"global_fetch_allowlist", skit::to_json(fetch_allowlist)},
          {"secrets", secrets_json},
          {"fetch_max_inflight", fetch_max_inflight},
          {"fetch_timeout_ms", fetch_timeout_ms},
          {"fetch_max_response_bytes", fetch_max_response_bytes}};
}

Result<ScriptPolicy> ScriptPolicy::from_json(const Json& j) {
  ScriptPolicy p;
  if (!j.is_object()) {
    return Status(ErrorCode::kInvalidArgument, "script policy must be an object");
  }
  try {
    p.default_timeout_ms = j.value("default_timeout_ms", p.default_timeout_ms);
    p.default_memory_limit_mb = j.value("default_memory_limit_mb", p.default_memory_limit_mb);
    p.fetch_max_inflight = j.value("fetch_max_inflight", p.fetch_max_inflight);
    p.fetch_timeout_ms = j.value("fetch_timeout_ms", p.fetch_timeout_ms);
    p.fetch_max_response_bytes = j.value("fetch_max_response_bytes", p.fetch_max_response_bytes);
    auto rules = url_rules_from_json(j.value("global_fetch_allowlist", Json::array()));
    if (!rules) {
      return rules.status();
    }
    p.fetch_allowlist = std::move(rules).value();
    const Json secrets = j.contains("secrets") ? j["secrets"] : Json::object();
    if (!secrets.is_object()) {
      return Status(ErrorCode::kInvalidArgument, "script secrets must be an object");
    }
    for (const auto& [name, s] : secrets.items()) {
      ScriptSecret secret;
      secret.env = s.value("env", "");
      secret.type = s.value("type", "string");
      secret.description = s.value("description", "");
      secret.allowed_fetch_urls = s.value("allowed_fetch_urls", std::vector<std::string>{});
      p.secrets[name] = std::move(secret);
    }
  } catch (const Json::exception& e) {
    return Status(ErrorCode::kInvalidArgument, std::string("bad script policy: ") + e.what());
  }
  return p;
}

Result<ScriptPolicy> ScriptPolicy::from_environment() {
  const char* text = std::getenv(kEnvVar);  // NOLINT(concurrency-mt-unsafe): read-only after start
  if (text == nullptr || *text == '\0') {
    return ScriptPolicy{};
  }
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status(ErrorCode::kInvalidArgument, std::string(kEnvVar) + " is not valid JSON");
  }
  return from_json(j);
}

}  // namespace skit
