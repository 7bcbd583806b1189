// SPDX-License-Identifier: MPL-2.0
// Identifiers and timestamps in the forms the APIs use: UUIDv4 ids (sessions, requests) and
// RFC 3339 UTC times with milliseconds.
#pragma once

#include <chrono>
#include <string>

namespace skit {

/// A random (version 4) UUID: "3f2b8c1e-5d4a-4e7b-9c2d-1a2b3c4d5e6f".
std::string uuid_v4();

/// "2026-12-01T22:50:56.123Z".
std::string rfc3339(std::chrono::system_clock::time_point t);
inline std::string rfc3339_now() { return rfc3339(std::chrono::system_clock::now()); }

}  // namespace skit
