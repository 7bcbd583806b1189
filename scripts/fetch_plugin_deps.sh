#!/usr/bin/env bash
# Fetches the official plugins' dependencies that Debian does not package: for silero_vad,
# sherpa-onnx's prebuilt C library (with onnxruntime) and the Silero VAD v5 model, from npm
# with the committed lock file (plugins/silero_vad/deps), then checks their checksums.
# Idempotent; the build copies them beside the plugin (build/*/plugins/native/silero_vad/).
set -euo pipefail
cd "$(dirname "$0")/../plugins/silero_vad/deps"

# Pinned: sherpa-onnx-linux-x64 1.13.8, @ricky0123/vad-web 0.0.31 (package-lock.json).
declare -A SHA256=(
  [node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx]=2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f
  [node_modules/sherpa-onnx-linux-x64/libsherpa-onnx-c-api.so]=b1019f8c9583e3e576c2ba6032b580677fcf6e2230c241a8b423c65aceded021
  [node_modules/sherpa-onnx-linux-x64/libonnxruntime.so]=4b3607aebd1784b26b6f9b20e4bd974c7ab8287043e4d095cb7d2cb40b5e566e
)

verify() {
  local file
  for file in "${!SHA256[@]}"; do
    [[ -f $file ]] || return 1
    echo "${SHA256[$file]}  $file" | sha256sum --quiet -c - >/dev/null 2>&1 || return 1
  done
}

if verify; then
  exit 0
fi
echo "== plugin deps: npm ci in plugins/silero_vad/deps (sherpa-onnx, Silero VAD model)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
for file in "${!SHA256[@]}"; do
  echo "${SHA256[$file]}  $file" | sha256sum -c --quiet - ||
    { echo "fetch_plugin_deps: checksum mismatch for $file" >&2; exit 1; }
done
