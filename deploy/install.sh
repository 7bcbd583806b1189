#!/usr/bin/env bash
# Installs skit as a systemd service: binary, unit, sysusers/tmpfiles, default config and the
# sample pipelines. Run as root after building (cmake --preset release && cmake --build
# build/release). Re-running updates the binary and unit and keeps an existing config.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "install.sh: run as root" >&2; exit 1; }
bin=build/release/cli/skit
[[ -x $bin ]] || { echo "install.sh: build first ($bin missing)" >&2; exit 1; }

install -m 0755 "$bin" /usr/local/bin/skit
install -m 0644 deploy/systemd/skit.service /etc/systemd/system/skit.service
install -m 0644 deploy/systemd/skit.sysusers.conf /usr/lib/sysusers.d/skit.conf
install -m 0644 deploy/systemd/skit.tmpfiles.conf /usr/lib/tmpfiles.d/skit.conf
systemd-sysusers /usr/lib/sysusers.d/skit.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/skit.conf
[[ -f /etc/skit/skit.yaml ]] || install -m 0644 deploy/config/skit.yaml /etc/skit/skit.yaml
mkdir -p /var/lib/skit/samples /usr/local/share/doc/skit
cp -r samples/pipelines samples/audio /var/lib/skit/samples/
chown -R skit:skit /var/lib/skit
install -m 0644 docs/deployment.md /usr/local/share/doc/skit/deployment.md
/usr/local/bin/skit config check /etc/skit/skit.yaml
if [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable --now skit.service
  systemctl --no-pager status skit.service || true
else
  echo "install.sh: systemd is not running here; start with: systemctl enable --now skit"
fi
