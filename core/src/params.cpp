// SPDX-License-Identifier: MPL-2.0
#include "skit/core/params.hpp"

#include <charconv>
#include <cmath>

namespace skit {

namespace {
std::string_view type_name(ParamType t) {
  switch (t) {
    case ParamType::kBool: return "boolean";
    case ParamType::kInteger: return "integer";
    case ParamType::kNumber: return "number";
    case ParamType::kString: return "string";
    case ParamType::kObject: return "object";
    case ParamType::kStringList: return "array";
  }
  return "?";
}

std::string_view json_type_name(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

}  // namespace

std::string format_number(double value) {
  if (std::isfinite(value) && value == std::trunc(value) && std::abs(value) < 9.0e15) {
    return std::to_string(static_cast<long long>(value));
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

namespace detail {
Status param_type_error(const ParamField& field, const Json& value) {
  return Status(ErrorCode::kInvalidParam,
                "expected " + std::string(type_name(field.type)) + ", got " +
                    std::string(json_type_name(value)) + " " + value.dump(),
                {.param = field.name});
}

Status check_range(const ParamField& field, double value) {
  if (!std::isfinite(value)) {
    return Status(ErrorCode::kInvalidParam, "must be a finite number", {.param = field.name});
  }
  if (field.min && value < *field.min) {
    return Status(ErrorCode::kInvalidParam,
                  "must be >= " + format_number(*field.min) + " (got " + format_number(value) + ")",
                  {.param = field.name});
  }
  if (field.max && value > *field.max) {
    return Status(ErrorCode::kInvalidParam,
                  "must be <= " + format_number(*field.max) + " (got " + format_number(value) + ")",
                  {.param = field.name});
  }
  return Status::ok();
}

Status check_choice(const ParamField& field, const std::string& value) {
  if (field.choices.empty()) {
    return Status::ok();
  }
  for (const auto& c : field.choices) {
    if (c == value) {
      return Status::ok();
    }
  }
  std::string all;
  for (const auto& c : field.choices) {
    all += (all.empty() ? "" : ", ") + c;
  }
  return Status(ErrorCode::kInvalidParam, "must be one of " + all + " (got '" + value + "')",
                {.param = field.name});
}
Status check_numeric_choice(const ParamField& field, double value) {
  if (field.numeric_choices.empty() ||
      std::find(field.numeric_choices.begin(), field.numeric_choices.end(), value) !=
          field.numeric_choices.end()) {
    return Status::ok();
  }
  std::string all;
  for (const double c : field.numeric_choices) {
    all += (all.empty() ? "" : ", ") + format_number(c);
  }
  return Status(ErrorCode::kInvalidParam,
                "must be one of " + all + " (got " + format_number(value) + ")",
                {.param = field.name});
}
}  // namespace detail

const ParamField* ParamSchema::find(std::string_view name) const {
  for (const auto& f : fields_) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

Json ParamSchema::redacted(Json params) const {
  if (!params.is_object()) {
    return params;
  }
  for (const auto& f : fields_) {
    if (f.secret && params.contains(f.name)) {
      params[f.name] = "***";
    }
  }
  return params;
}

Json ParamSchema::json_schema() const {
  Json props = Json::object();
  Json required = Json::array();
  for (const auto& f : fields_) {
    Json p{{"type", type_name(f.type)}, {"description", f.doc}};
    if (!f.required) {
      p["default"] = f.default_value;
    }
    if (f.min) {
      p["minimum"] = *f.min;
    }
    if (f.max) {
      p["maximum"] = *f.max;
    }
    if (f.type == ParamType::kStringList) {
      p["items"] = Json{{"type", "string"}};
      if (!f.choices.empty()) {
        p["items"]["enum"] = f.choices;
      }
    } else if (!f.choices.empty()) {
      p["enum"] = f.choices;
    }
    if (!f.numeric_choices.empty()) {
      Json values = Json::array();
      for (const double c : f.numeric_choices) {
        values.push_back(f.type == ParamType::kInteger || c == std::trunc(c)
                             ? Json(static_cast<std::int64_t>(c))
                             : Json(c));
      }
      p["enum"] = values;
    }
    if (f.tunable) {
      p["tunable"] = true;
    }
    if (f.secret) {
      p["writeOnly"] = true;
    }
    if (f.required) {
      required.push_back(f.name);
    }
    props[f.name] = std::move(p);
  }
  Json schema{{"type", "object"}, {"properties", props}, {"additionalProperties", false}};
  if (!required.empty()) {
    schema["required"] = required;
  }
  return schema;
}

void ParamSchema::decode(void* out, const Json& params, bool tuning,
                         std::vector<Status>& errors) const {
  if (!params.is_null() && !params.is_object()) {
    errors.emplace_back(ErrorCode::kInvalidParam,
                        "params must be a mapping, got " + std::string(json_type_name(params)));
    return;
  }
  if (params.is_object()) {
    for (const auto& [key, value] : params.items()) {
      const ParamField* f = find(key);
      if (f == nullptr) {
        std::string known;
        for (const auto& k : fields_) {
          known += (known.empty() ? "" : ", ") + k.name;
        }
        errors.emplace_back(ErrorCode::kInvalidParam,
                            "unknown param" + (known.empty() ? std::string(" (this kind takes none)")
                                                             : " (known: " + known + ")"),
                            SourceLocation{.param = key});
        continue;
      }
      if (value.is_null() && !f->required) {
        continue;  // null means "not set": keep the default (StreamKit's optional fields)
      }
      if (tuning && !f->tunable) {
        errors.emplace_back(ErrorCode::kInvalidParam, "cannot be changed while running",
                            SourceLocation{.param = key});
        continue;
      }
      Status s = f->assign(out, value);
      if (!s.is_ok()) {
        errors.push_back(std::move(s));
      }
    }
  }
  if (!tuning) {
    for (const auto& f : fields_) {
      if (f.required && (!params.is_object() || !params.contains(f.name))) {
        errors.emplace_back(ErrorCode::kInvalidParam, "required param is missing",
                            SourceLocation{.param = f.name});
      }
    }
  }
}

Json ParamSchema::encode(const void* params) const {
  Json out = Json::object();
  for (const auto& f : fields_) {
    out[f.name] = f.read(params);
  }
  return out;
}

}  // namespace skit
