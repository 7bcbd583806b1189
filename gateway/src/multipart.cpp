// SPDX-License-Identifier: MPL-2.0
#include "multipart.hpp"

#include <algorithm>
#include <cctype>

namespace skit::gateway {

namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

/// The value of `key=` in a header like `form-data; name="config"; filename="a.yml"`.
std::string param_of(const std::string& header, const std::string& key) {
  const std::string l = lower(header);
  std::size_t pos = 0;
  while ((pos = l.find(key + "=", pos)) != std::string::npos) {
    if (pos == 0 || l[pos - 1] == ';' || l[pos - 1] == ' ') {
      std::size_t v = pos + key.size() + 1;
      if (v < header.size() && header[v] == '"') {
        const std::size_t end = header.find('"', v + 1);
        return header.substr(v + 1, end == std::string::npos ? std::string::npos : end - v - 1);
      }
      const std::size_t end = header.find(';', v);
      std::string out = header.substr(v, end == std::string::npos ? std::string::npos : end - v);
      while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
      return out;
    }
    ++pos;
  }
  return {};
}
}  // namespace

std::string MultipartReader::boundary_of(std::string_view content_type) {
  const std::string ct(content_type);
  if (lower(ct).rfind("multipart/form-data", 0) != 0) {
    return {};
  }
  return param_of(ct, "boundary");
}

MultipartReader::MultipartReader(Pull pull, std::string boundary)
    : pull_(std::move(pull)), delimiter_("\r\n--" + boundary) {
  // The first boundary has no leading CRLF: pretend it had one.
  buf_ = "\r\n";
}

Status MultipartReader::fill(std::size_t want) {
  char chunk[16 * 1024];
  while (buf_.size() < want && !body_done_) {
    auto n = pull_(chunk);
    if (!n) {
      return n.status();
    }
    if (*n == 0) {
      body_done_ = true;
      break;
    }
    buf_.append(chunk, *n);
  }
  return Status::ok();
}

std::optional<std::size_t> MultipartReader::find_delimiter() const {
  const auto pos = buf_.find(delimiter_);
  if (pos == std::string::npos) {
    return std::nullopt;
  }
  return pos;
}

Result<std::optional<PartHeaders>> MultipartReader::next_part() {
  if (finished_) {
    return std::optional<PartHeaders>{};
  }
  // Skip the rest of the current part (or the preamble) up to the next delimiter.
  while (true) {
    if (auto pos = find_delimiter()) {
      buf_.erase(0, *pos + delimiter_.size());
      break;
    }
    if (body_done_) {
      return Status(ErrorCode::kInvalidArgument, "multipart body ended without its closing boundary");
    }
    // Keep a tail that may hold the start of the delimiter.
    if (buf_.size() > delimiter_.size()) {
      buf_.erase(0, buf_.size() - delimiter_.size());
    }
    SKIT_RETURN_IF_ERROR(fill(buf_.size() + 16 * 1024));
  }
  started_ = true;
  SKIT_RETURN_IF_ERROR(fill(2));
  if (buf_.rfind("--", 0) == 0) {  // closing delimiter
    finished_ = true;
    in_part_ = false;
    return std::optional<PartHeaders>{};
  }
  // Headers end at an empty line.
  std::size_t end = std::string::npos;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (buf_.size() > 16 * 1024) {
      return Status(ErrorCode::kInvalidArgument, "multipart part headers are too large");
    }
    if (body_done_) {
      return Status(ErrorCode::kInvalidArgument, "multipart body ended inside part headers");
    }
    SKIT_RETURN_IF_ERROR(fill(buf_.size() + 1024));
  }
  PartHeaders headers;
  std::size_t line_start = buf_.find("\r\n") == 0 ? 2 : 0;
  while (line_start < end) {
    std::size_t line_end = buf_.find("\r\n", line_start);
    if (line_end == std::string::npos || line_end > end) {
      line_end = end;
    }
    const std::string line = buf_.substr(line_start, line_end - line_start);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      const std::string key = lower(line.substr(0, colon));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      if (key == "content-disposition") {
        headers.name = param_of(value, "name");
        headers.filename = param_of(value, "filename");
      } else if (key == "content-type") {
        headers.content_type = value;
      }
    }
    line_start = line_end + 2;
  }
  buf_.erase(0, end + 4);
  in_part_ = true;
  return std::optional<PartHeaders>{headers};
}

Result<std::size_t> MultipartReader::read(std::span<char> out) {
  if (!in_part_ || out.empty()) {
    return std::size_t{0};
  }
  while (true) {
    if (auto pos = find_delimiter()) {
      if (*pos == 0) {
        in_part_ = false;
        return std::size_t{0};
      }
      const std::size_t n = std::min(*pos, out.size());
      std::copy_n(buf_.data(), n, out.data());
      buf_.erase(0, n);
      return n;
    }
    // Bytes that cannot be the start of a delimiter are safe to hand out.
    const std::size_t safe = buf_.size() > delimiter_.size() ? buf_.size() - delimiter_.size() : 0;
    if (safe > 0) {
      const std::size_t n = std::min(safe, out.size());
      std::copy_n(buf_.data(), n, out.data());
      buf_.erase(0, n);
      return n;
    }
    if (body_done_) {
      return Status(ErrorCode::kInvalidArgument, "multipart body ended inside a part");
    }
    SKIT_RETURN_IF_ERROR(fill(buf_.size() + 64 * 1024));
  }
}

}  // namespace skit::gateway
