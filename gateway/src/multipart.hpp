// SPDX-License-Identifier: MPL-2.0
// A streaming multipart/form-data reader: parts are read in order, each part's bytes as they
// arrive, so an upload never has to sit whole in memory.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "skit/core/status.hpp"

namespace skit::gateway {

struct PartHeaders {
  std::string name;      // form field name
  std::string filename;  // empty when not a file
  std::string content_type;
};

class MultipartReader {
 public:
  /// `pull` fills the buffer with the next body bytes, returning 0 at the end of the body.
  using Pull = std::function<Result<std::size_t>(std::span<char>)>;
  MultipartReader(Pull pull, std::string boundary);

  /// Moves to the next part (skipping what is left of the current one). nullopt at the end.
  Result<std::optional<PartHeaders>> next_part();
  /// Reads bytes of the current part; 0 at its end.
  Result<std::size_t> read(std::span<char> out);

  /// The boundary parameter of a multipart/form-data Content-Type, or empty.
  static std::string boundary_of(std::string_view content_type);

 private:
  Status fill(std::size_t want);
  std::optional<std::size_t> find_delimiter() const;

  Pull pull_;
  std::string delimiter_;  // "\r\n--" + boundary
  std::string buf_;
  bool body_done_ = false;
  bool in_part_ = false;
  bool finished_ = false;
  bool started_ = false;
};

}  // namespace skit::gateway
