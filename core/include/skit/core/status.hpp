// SPDX-License-Identifier: MPL-2.0
// Status and Result<T>: the error type used at every module boundary (no exceptions cross them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace skit {

/// Error codes; they map onto HTTP statuses and gRPC codes at the gateway.
enum class ErrorCode : std::uint8_t {
  kOk = 0,
  kInvalidArgument,   // malformed request or YAML
  kInvalidParam,      // a node param has the wrong type or value
  kUnknownKind,       // node kind not registered
  kPinTypeMismatch,   // connection between incompatible pins
  kGraphError,        // dangling needs, cycle, duplicate id, missing input
  kCorruptMedia,      // input data cannot be parsed
  kNotFound,
  kPermissionDenied,
  kResourceExhausted, // limits: memory, slots, sessions
  kUnavailable,       // a worker or peer went away
  kCancelled,
  kDeadlineExceeded,
  kAlreadyExists,     // a session name is taken
  kInternal,
  kFailedPrecondition,  // not in a state that allows it (tuning a node that has stopped)
};

std::string_view error_code_name(ErrorCode code);

/// Where an error happened in a pipeline document. Fields are optional; line/column are 1-based.
struct SourceLocation {
  std::string node_id;
  std::string param;
  int line = 0;
  int column = 0;
  int operation = -1;  // index of the edit in a batch (0-based); -1: not from a batch
};

/// A success or an error with a code, a message and where it happened.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message, SourceLocation where = {})
      : code_(code), message_(std::move(message)), where_(std::move(where)) {}

  static Status ok() { return {}; }

  [[nodiscard]] bool is_ok() const { return code_ == ErrorCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  [[nodiscard]] ErrorCode code() const { return code_; }
  [[nodiscard]] const std::string& message() const { return message_; }
  [[nodiscard]] const SourceLocation& where() const { return where_; }
  SourceLocation& where() { return where_; }

  /// "line 12, column 5: node 'gain': param 'gain': must be <= 4 (got 9)"; from a batch,
  /// "operation 2: node 'gain': ...".
  [[nodiscard]] std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  SourceLocation where_;
};

/// A value or an error Status (std::expected needs C++23 on g++ 12).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor): like expected
  Result(Status status) : value_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool is_ok() const { return std::holds_alternative<T>(value_); }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T&& operator*() && { return std::move(value()); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  [[nodiscard]] const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(value_);
  }

 private:
  std::variant<T, Status> value_;
};

}  // namespace skit

/// Propagates a non-ok Status from an expression returning Status.
#define SKIT_RETURN_IF_ERROR(expr)        \
  do {                                    \
    ::skit::Status skit_status_ = (expr); \
    if (!skit_status_.is_ok()) {          \
      return skit_status_;                \
    }                                     \
  } while (false)
