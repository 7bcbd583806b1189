// SPDX-License-Identifier: MPL-2.0
#include "skit/plugins/plugin_kinds.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "native_plugin_node.hpp"

namespace skit::plugins {

std::string native_kind(std::string_view kind) {
  return std::string(kNativeKindPrefix) + std::string(kind);
}

namespace {

// The JSON Schema "type" of a property: a string or a list with "null" (optional values).
std::optional<ParamType> param_type(const Json& property) {
  Json type = property.value("type", Json());
  if (type.is_array()) {
    Json first;
    for (const auto& t : type) {
      if (t.is_string() && t.get<std::string>() != "null") {
        first = t;
        break;
      }
    }
    type = first;
  }
  if (!type.is_string()) {
    return ParamType::kObject;  // untyped: any JSON value
  }
  const auto name = type.get<std::string>();
  if (name == "boolean") return ParamType::kBool;
  if (name == "integer") return ParamType::kInteger;
  if (name == "number") return ParamType::kNumber;
  if (name == "string") return ParamType::kString;
  if (name == "object" || name == "array") return ParamType::kObject;
  return std::nullopt;
}

Status check_value(const ParamField& f, const Json& value) {
  switch (f.type) {
    case ParamType::kBool:
      if (!value.is_boolean()) return detail::param_type_error(f, value);
      return Status::ok();
    case ParamType::kInteger: {
      if (!value.is_number()) return detail::param_type_error(f, value);
      const double v = value.get<double>();
      if (std::trunc(v) != v) return detail::param_type_error(f, value);
      SKIT_RETURN_IF_ERROR(detail::check_range(f, v));
      return f.numeric_choices.empty() ? Status::ok() : detail::check_numeric_choice(f, v);
    }
    case ParamType::kNumber: {
      if (!value.is_number()) return detail::param_type_error(f, value);
      const double v = value.get<double>();
      SKIT_RETURN_IF_ERROR(detail::check_range(f, v));
      return f.numeric_choices.empty() ? Status::ok() : detail::check_numeric_choice(f, v);
    }
    case ParamType::kString:
      if (!value.is_string()) return detail::param_type_error(f, value);
      return f.choices.empty() ? Status::ok() : detail::check_choice(f, value.get<std::string>());
    case ParamType::kStringList:
      if (!value.is_array() ||
          !std::all_of(value.begin(), value.end(), [](const Json& v) { return v.is_string(); })) {
        return detail::param_type_error(f, value);
      }
      return Status::ok();
    case ParamType::kObject:
      return Status::ok();
  }
  return Status::ok();
}

}  // namespace

Result<std::shared_ptr<const ParamSchema>> schema_from_json_schema(const Json& schema) {
  auto out = std::make_shared<ParamSchema>();
  if (!schema.is_object()) {
    return Status(ErrorCode::kInvalidArgument, "param_schema must be a JSON object");
  }
  const Json properties = schema.value("properties", Json::object());
  if (!properties.is_object()) {
    return Status(ErrorCode::kInvalidArgument, "param_schema.properties must be an object");
  }
  std::set<std::string> required;
  for (const auto& r : schema.value("required", Json::array())) {
    if (r.is_string()) {
      required.insert(r.get<std::string>());
    }
  }
  auto& fields = out->mutable_fields();
  for (const auto& [name, property] : properties.items()) {
    if (!property.is_object()) {
      return Status(ErrorCode::kInvalidArgument,
                    "param_schema property '" + name + "' is not an object");
    }
    auto type = param_type(property);
    if (!type) {
      return Status(ErrorCode::kInvalidArgument, "param_schema property '" + name +
                                                     "' has an unknown type " +
                                                     property["type"].dump());
    }
    ParamField f;
    f.name = name;
    f.doc = property.value("description", "");
    f.type = *type;
    f.required = required.contains(name);
    f.tunable = property.value("tunable", true);
    if (property.contains("minimum") && property["minimum"].is_number()) {
      f.min = property["minimum"].get<double>();
    }
    if (property.contains("maximum") && property["maximum"].is_number()) {
      f.max = property["maximum"].get<double>();
    }
    if (property.contains("enum") && property["enum"].is_array()) {
      for (const auto& e : property["enum"]) {
        if (e.is_string()) {
          f.choices.push_back(e.get<std::string>());
        } else if (e.is_number()) {
          f.numeric_choices.push_back(e.get<double>());
        }
      }
    }
    f.default_value = property.value("default", Json());
    // Plugin params are JSON objects: a field writes its checked value into the object.
    const std::size_t index = fields.size();
    const ParamSchema* self = out.get();
    f.assign = [self, index](void* params, const Json& value) -> Status {
      const ParamField& field = self->fields()[index];
      SKIT_RETURN_IF_ERROR(check_value(field, value));
      (*static_cast<Json*>(params))[field.name] = value;
      return Status::ok();
    };
    f.read = [self, index](const void* params) -> Json {
      const ParamField& field = self->fields()[index];
      const Json& obj = *static_cast<const Json*>(params);
      return obj.contains(field.name) ? obj[field.name] : field.default_value;
    };
    fields.push_back(std::move(f));
  }
  return std::shared_ptr<const ParamSchema>(std::move(out));
}

namespace {

Result<PacketType> packet_type(const Json& t) {
  const std::string type = t.value("type", "");
  if (type == "RawAudio") {
    return PacketType::raw_audio(t.value("sample_rate", 0U),
                                 static_cast<std::uint16_t>(t.value("channels", 0U)));
  }
  if (type == "OpusAudio") return PacketType::encoded_audio("opus");
  if (type == "Text") return PacketType::text();
  if (type == "Transcription") return PacketType{.kind = PacketKind::kTranscription};
  if (type == "Custom") {
    return PacketType{.kind = PacketKind::kCustom, .type_id = t.value("type_id", "")};
  }
  if (type == "Binary") return PacketType::binary();
  if (type == "Any") return PacketType::any();
  if (type == "Passthrough") return PacketType::passthrough();
  return Status(ErrorCode::kInvalidArgument, "unknown packet type " + t.dump());
}

}  // namespace

Result<NodeDescriptor> native_descriptor(const Json& metadata, const std::string& library_path,
                                         std::optional<std::chrono::milliseconds> call_timeout) {
  NodeDescriptor d;
  try {
    d.kind = native_kind(metadata.at("kind").get<std::string>());
    std::string description = metadata.value("description", "");
    d.summary = description.empty() ? "Native plugin " + metadata["kind"].get<std::string>()
                                    : description.substr(0, description.find('\n'));
    for (const auto& c : metadata.value("categories", Json::array())) {
      d.categories.push_back(c.get<std::string>());
    }
    d.category = d.categories.empty() ? "plugins" : d.categories.front();
    for (const auto& in : metadata.at("inputs")) {
      InputPinSpec pin;
      pin.name = in.at("name").get<std::string>();
      for (const auto& t : in.at("accepts_types")) {
        auto type = packet_type(t);
        if (!type) {
          return type.status();
        }
        pin.accepts.push_back(*type);
      }
      d.inputs.push_back(std::move(pin));
    }
    for (const auto& out : metadata.at("outputs")) {
      auto type = packet_type(out.at("produces_type"));
      if (!type) {
        return type.status();
      }
      d.outputs.push_back({out.at("name").get<std::string>(), *type});
    }
  } catch (const Json::exception& e) {
    return Status(ErrorCode::kInvalidArgument, std::string("plugin metadata: ") + e.what());
  }
  auto schema = schema_from_json_schema(metadata.value("param_schema", Json::object()));
  if (!schema) {
    return schema.status();
  }
  d.owned_params = *schema;
  d.params = d.owned_params.get();
  auto ref = std::make_shared<NativePluginRef>();
  ref->library_path = library_path;
  ref->metadata_json = metadata.dump();
  ref->call_timeout = call_timeout;
  d.native_plugin = ref;
  const std::shared_ptr<const ParamSchema> params = d.owned_params;
  d.validate_params = [params](const Json& p) {
    std::vector<Status> errors;
    Json decoded = Json::object();
    params->decode(&decoded, p, /*tuning=*/false, errors);
    return errors;
  };
  const std::string kind = d.kind;
  d.create = [ref, params, kind, inputs = d.inputs,
              outputs = d.outputs](const Json& p) -> Result<std::unique_ptr<Node>> {
    std::vector<Status> errors;
    Json decoded = Json::object();
    params->decode(&decoded, p, /*tuning=*/false, errors);
    if (!errors.empty()) {
      return errors.front();
    }
    std::vector<std::string> input_pins;
    for (const auto& in : inputs) {
      input_pins.push_back(in.name);
    }
    std::vector<std::string> output_pins;
    for (const auto& out : outputs) {
      output_pins.push_back(out.name);
    }
    return std::unique_ptr<Node>(std::make_unique<NativePluginNode>(
        ref, kind, params, p.is_object() ? p : Json::object(), std::move(input_pins),
        std::move(output_pins)));
  };
  d.max_packet_bytes = [](const Json& /*params*/) -> std::size_t {
    return NativePluginNode::kMaxPacketBytes;
  };
  return d;
}

}  // namespace skit::plugins
