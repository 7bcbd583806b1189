#!/usr/bin/env bash
# Builds the web UI (ui/dist, served by `skit serve` at /): `npm ci` from the committed lock
# file (skipped when node_modules already matches it), then the TypeScript check and Vite.
# Works with Debian 12's nodejs 18 and with Node 20+.
set -euo pipefail
cd "$(dirname "$0")/../ui"

if ! command -v npm >/dev/null; then
  echo "build_ui: npm is missing (scripts/bootstrap.sh installs Debian's nodejs and npm)" >&2
  exit 1
fi
stamp=node_modules/.skit-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "== npm ci (ui/, node $(node --version))"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
echo "== ui build"
npm run build --silent
echo "build_ui: ui/dist ready ($(du -sh dist | cut -f1))"
