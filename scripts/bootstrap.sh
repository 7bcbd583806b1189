#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and benchmarking skit needs.
# Idempotent: packages already present are skipped by apt.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # libraries
  libboost-dev libzmq3-dev cppzmq-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libprotobuf-dev protobuf-compiler libseccomp-dev
  libgtest-dev libgmock-dev libcli11-dev
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev
  libgrpc++-dev protobuf-compiler-grpc libsystemd-dev
  # server.tls (HTTPS/WSS); the openssl tool makes the tests' certificates
  libssl-dev openssl
  # engines and models of the official plugins (plugins/)
  libespeak-ng-dev libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us pocketsphinx-testdata
  apertium apertium-eng-spa apertium-dev libwebrtc-audio-processing-dev
  # HTTP client of core::script fetch and transport::http::fetcher
  libcurl4-openssl-dev
  # transport::webrtc::whip/whep: GStreamer's webrtcbin, libnice's ICE, DTLS-SRTP
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-bad gstreamer1.0-nice
  # media tools used by tests and benchmarks to generate and check media
  ffmpeg sox espeak-ng
  # the reference pipelines that benchmarks compare against
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  # process/shm inspection used by tests
  procps psmisc bc time python3 curl systemd
  # the web UI's browser tests (playwright-core drives Debian's Chromium)
  chromium fonts-dejavu-core
)
# The web UI's build: Debian's nodejs and npm where no node is installed already (Debian 12
# ships nodejs 18, which the UI's toolchain supports; a newer node is left alone).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "bootstrap: all ${#PACKAGES[@]} packages present"
