// SPDX-License-Identifier: MPL-2.0
// Typed node params: one description per params struct drives JSON decoding, range checks,
// live-tuning rules and the JSON Schema published by `skit nodes` and the schema API.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "skit/core/files.hpp"
#include "skit/core/status.hpp"

namespace skit {

using Json = nlohmann::json;

enum class ParamType : std::uint8_t { kBool, kInteger, kNumber, kString, kObject, kStringList };

/// One documented param of a node kind.
struct ParamField {
  std::string name;
  std::string doc;
  ParamType type = ParamType::kString;
  bool required = false;
  bool tunable = false;
  std::optional<double> min;
  std::optional<double> max;
  std::vector<std::string> choices;  // for enumerated strings
  std::vector<double> numeric_choices;  // for enumerated numbers (an Opus frame size)
  // A file path the node opens: checked against the server's allow-lists by the supervisor,
  // opened by the node through NodeContext::open_file().
  FileAccess file_access = FileAccess::kNone;
  // A URL the node downloads: checked against security.allowed_fetch_urls by the supervisor
  // (and each connection's address again by the node, after DNS resolution).
  bool fetch_url = false;
  // A port the node listens on: must lie in the server's transports.listen_ports.
  bool listen_port = false;
  // A stream key, a passphrase: shown as "***" wherever a session's params leave the server.
  bool secret = false;
  Json default_value;
  std::function<Status(void* params, const Json& value)> assign;
  std::function<Json(const void* params)> read;
};

/// The full description of a params struct; type-erased so the registry can hold it.
class ParamSchema {
 public:
  [[nodiscard]] const std::vector<ParamField>& fields() const { return fields_; }
  [[nodiscard]] const ParamField* find(std::string_view name) const;
  /// JSON Schema (draft 2020-12 subset) with "tunable": true on live-tunable properties.
  [[nodiscard]] Json json_schema() const;

  /// Decodes `params` (an object or null) into `*out`, which holds the defaults already.
  /// Every problem is appended to `errors` with SourceLocation::param set. With `tuning`,
  /// fields that are not tunable are rejected.
  void decode(void* out, const Json& params, bool tuning, std::vector<Status>& errors) const;
  /// Encodes `*params` back to JSON (all fields).
  [[nodiscard]] Json encode(const void* params) const;
  /// `params` with the value of every secret field that is set replaced by "***".
  [[nodiscard]] Json redacted(Json params) const;

  std::vector<ParamField>& mutable_fields() { return fields_; }

 private:
  std::vector<ParamField> fields_;
};

/// Fluent handle returned by ParamSchemaBuilder::field().
class ParamFieldRef {
 public:
  explicit ParamFieldRef(ParamField& field) : field_(&field) {}
  ParamFieldRef& range(double min, double max) {
    field_->min = min;
    field_->max = max;
    return *this;
  }
  ParamFieldRef& min(double value) {
    field_->min = value;
    return *this;
  }
  ParamFieldRef& required() {
    field_->required = true;
    return *this;
  }
  ParamFieldRef& tunable() {
    field_->tunable = true;
    return *this;
  }
  /// The param is a path of a file that the node reads or writes.
  ParamFieldRef& file_path(FileAccess access) {
    field_->file_access = access;
    return *this;
  }
  /// The param is a URL that the node downloads.
  ParamFieldRef& fetch_url() {
    field_->fetch_url = true;
    return *this;
  }
  /// The param is a secret (published as JSON Schema "writeOnly"; redacted in session views).
  ParamFieldRef& secret() {
    field_->secret = true;
    return *this;
  }
  /// The param is a port that the node listens on.
  ParamFieldRef& listen_port() {
    field_->listen_port = true;
    return *this;
  }
  /// The only numbers accepted (published as a JSON Schema "enum").
  ParamFieldRef& one_of(std::vector<double> values) {
    field_->numeric_choices = std::move(values);
    return *this;
  }
  ParamFieldRef& choices(std::vector<std::string> values) {
    field_->choices = std::move(values);
    return *this;
  }

 private:
  ParamField* field_;
};

namespace detail {
Status param_type_error(const ParamField& field, const Json& value);
Status check_range(const ParamField& field, double value);
Status check_choice(const ParamField& field, const std::string& value);
Status check_numeric_choice(const ParamField& field, double value);
}  // namespace detail

/// A number as people write it: integers exactly (16777216, 4294967295, not 1.67772e+07),
/// others in their shortest round-trip form (0.25, 1e-06).
std::string format_number(double value);

/// Builds the ParamSchema of params struct T from member pointers.
template <typename T>
class ParamSchemaBuilder {
 public:
  template <typename M>
  ParamFieldRef field(std::string name, M T::*member, std::string doc) {
    ParamField f;
    f.name = std::move(name);
    f.doc = std::move(doc);
    f.type = type_of<M>();
    f.default_value = Json(T{}.*member);
    f.read = [member](const void* obj) { return Json(static_cast<const T*>(obj)->*member); };
    // The closure finds its field by index: the schema lives in a static builder and never
    // moves, while the vector of fields may reallocate as more are added.
    const std::size_t index = schema_.fields().size();
    f.assign = [schema = &schema_, index, member](void* obj, const Json& value) {
      return assign_value(schema->fields()[index], static_cast<T*>(obj)->*member, value);
    };
    schema_.mutable_fields().push_back(std::move(f));
    ParamField& stored = schema_.mutable_fields().back();
    return ParamFieldRef(stored);
  }

  ParamSchema build() && { return std::move(schema_); }

  /// Binds field closures to the schema that will own them; used by make_param_schema.
  ParamSchema& schema() { return schema_; }

 private:
  template <typename M>
  static constexpr ParamType type_of() {
    if constexpr (std::is_same_v<M, bool>) {
      return ParamType::kBool;
    } else if constexpr (std::is_integral_v<M>) {
      return ParamType::kInteger;
    } else if constexpr (std::is_floating_point_v<M>) {
      return ParamType::kNumber;
    } else if constexpr (std::is_same_v<M, std::string>) {
      return ParamType::kString;
    } else if constexpr (std::is_same_v<M, std::vector<std::string>>) {
      return ParamType::kStringList;
    } else {
      static_assert(std::is_same_v<M, Json>, "unsupported param member type");
      return ParamType::kObject;
    }
  }

  template <typename M>
  static Status assign_value(const ParamField& fld, M& target, const Json& value) {
    if constexpr (std::is_same_v<M, bool>) {
      if (!value.is_boolean()) {
        return detail::param_type_error(fld, value);
      }
      target = value.get<bool>();
    } else if constexpr (std::is_integral_v<M>) {
      // Integers, or floats with an integral value (YAML "2.0"); checked before converting,
      // since converting an out-of-range double is undefined.
      bool fits = false;
      double as_double = 0;
      if (value.is_number_unsigned()) {
        const auto u = value.get<std::uint64_t>();
        fits = std::in_range<M>(u);
        as_double = static_cast<double>(u);
        if (fits) {
          target = static_cast<M>(u);
        }
      } else if (value.is_number_integer()) {
        const auto v = value.get<std::int64_t>();
        fits = std::in_range<M>(v);
        as_double = static_cast<double>(v);
        if (fits) {
          target = static_cast<M>(v);
        }
      } else if (value.is_number_float()) {
        as_double = value.get<double>();
        if (!std::isfinite(as_double) || as_double != std::trunc(as_double)) {
          return detail::param_type_error(fld, value);
        }
        fits = as_double >= static_cast<double>(std::numeric_limits<M>::min()) &&
               as_double <= static_cast<double>(std::numeric_limits<M>::max()) &&
               std::abs(as_double) < 9.0e18;
        if (fits) {
          target = static_cast<M>(static_cast<std::int64_t>(as_double));
        }
      } else {
        return detail::param_type_error(fld, value);
      }
      SKIT_RETURN_IF_ERROR(detail::check_range(fld, as_double));
      SKIT_RETURN_IF_ERROR(detail::check_numeric_choice(fld, as_double));
      if (!fits) {
        return Status(ErrorCode::kInvalidParam, "value " + value.dump() + " does not fit",
                      {.param = fld.name});
      }
    } else if constexpr (std::is_floating_point_v<M>) {
      if (!value.is_number()) {
        return detail::param_type_error(fld, value);
      }
      const double v = value.get<double>();
      SKIT_RETURN_IF_ERROR(detail::check_range(fld, v));
      SKIT_RETURN_IF_ERROR(detail::check_numeric_choice(fld, v));
      target = static_cast<M>(v);
    } else if constexpr (std::is_same_v<M, std::string>) {
      if (!value.is_string()) {
        return detail::param_type_error(fld, value);
      }
      SKIT_RETURN_IF_ERROR(detail::check_choice(fld, value.get<std::string>()));
      target = value.get<std::string>();
    } else if constexpr (std::is_same_v<M, std::vector<std::string>>) {
      if (!value.is_array()) {
        return detail::param_type_error(fld, value);
      }
      std::vector<std::string> items;
      for (const auto& item : value) {
        if (!item.is_string()) {
          return Status(ErrorCode::kInvalidParam,
                        "expected a list of strings, got an item " + item.dump(),
                        {.param = fld.name});
        }
        SKIT_RETURN_IF_ERROR(detail::check_choice(fld, item.get<std::string>()));
        items.push_back(item.get<std::string>());
      }
      target = std::move(items);
    } else {
      target = value;
    }
    return Status::ok();
  }

  ParamSchema schema_;
};

/// A params struct describes itself with `static void describe(ParamSchemaBuilder<T>&)` and may
/// add cross-field rules with `Status validate() const`.
template <typename T>
concept DescribedParams = requires(ParamSchemaBuilder<T>& b) { T::describe(b); };

template <typename T>
concept SelfValidating = requires(const T& t) {
  { t.validate() } -> std::same_as<Status>;
};

/// The schema of T, built once. Its closures refer to the static instance, so it never moves.
template <DescribedParams T>
const ParamSchema& param_schema_of() {
  static const ParamSchema& kSchema = []() -> const ParamSchema& {
    static ParamSchemaBuilder<T> builder;
    T::describe(builder);
    return builder.schema();
  }();
  return kSchema;
}

/// Decodes and validates params of type T; all problems are returned together.
template <DescribedParams T>
Result<T> decode_params(const Json& params, std::vector<Status>* all_errors = nullptr) {
  T out{};
  std::vector<Status> errors;
  param_schema_of<T>().decode(&out, params, /*tuning=*/false, errors);
  if constexpr (SelfValidating<T>) {
    // Cross-field rules only: a rule over a field that failed to decode would judge its
    // default. Rules about one field belong to the field (range, one_of, choices), so that
    // they are reported together with every other field's problem.
    if (errors.empty()) {
      Status extra = out.validate();
      if (!extra.is_ok()) {
        errors.push_back(std::move(extra));
      }
    }
  }
  if (!errors.empty()) {
    Status first = errors.front();
    if (all_errors != nullptr) {
      *all_errors = std::move(errors);
    }
    return first;
  }
  return out;
}

}  // namespace skit
