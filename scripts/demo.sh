#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds skit and its web UI, and starts `skit serve` with
# the UI on http://127.0.0.1:4545/ (Ctrl-C stops it). The sample-pipeline demo without the
# server is scripts/demo_pipelines.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
cmake --preset release >/dev/null
cmake --build build/release -j"$(nproc)" --target skit
bash scripts/build_ui.sh

listen=${SKIT_LISTEN:-127.0.0.1:4545}
echo
echo "== skit serve: open http://${listen}/ (Design, Monitor, Convert); Ctrl-C stops it"
exec build/release/cli/skit serve --listen "$listen" "$@"
