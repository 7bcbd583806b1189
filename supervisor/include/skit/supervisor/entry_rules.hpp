// SPDX-License-Identifier: MPL-2.0
// The rules that depend on where a pipeline runs, written once for every front end. Oneshot
// pipelines talk to their caller through the host-side markers streamkit::http_input (the
// upload, or `skit run --input`) and streamkit::http_output (the response, or `--output`);
// POST /api/v1/process, `skit run` and dynamic sessions each accept a different use of them.
#pragma once

#include <string_view>
#include <vector>

#include "skit/core/status.hpp"
#include "skit/v1/pipeline.pb.h"

namespace skit::supervisor {

enum class EntryPoint : std::uint8_t {
  kProcess,  // POST /api/v1/process and gRPC Process: optional media in, one response out
  kRun,      // skit run: -i feeds http_input, -o takes http_output; files in and out are fine
  kSession,  // a dynamic session: no host-side nodes
};

std::string_view entry_point_name(EntryPoint entry);

/// What the caller brings: an upload / --input, and (skit run) an --output.
struct EntryIo {
  bool has_input = false;
  bool has_output = false;
};

/// Every rule of `entry` that `pipeline` breaks, each naming its node and line where there is
/// one (kInvalidArgument).
std::vector<Status> check_entry(const v1::Pipeline& pipeline, EntryPoint entry, EntryIo io);

/// Output pins connected to nothing (their packets are dropped): one warning each, with the
/// node's place. Sinks and writers have no outputs and never appear.
std::vector<Status> unconnected_outputs(const v1::Pipeline& pipeline);

}  // namespace skit::supervisor
