#!/usr/bin/env bash
# Checks that #include "skit/<component>/..." respects the dependency arrows:
#   cli -> supervisor, worker, core;  supervisor -> runtime, ipc, core, proto;
#   worker -> runtime, ipc, core, proto, plugins (the plugin host);  runtime -> ipc, core;
#   nodes -> core;  plugins -> core;  ipc -> core.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A allowed=(
  [core]="core"
  [ipc]="core ipc"
  [runtime]="core ipc runtime"
  [nodes]="core"
  [plugins]="core plugins"
  [worker]="core ipc runtime worker plugins v1"
  [supervisor]="core ipc runtime supervisor plugins v1"
  [gateway]="core supervisor gateway v1"
  [cli]="core supervisor worker gateway v1"
)
status=0
for component in "${!allowed[@]}"; do
  [[ -d $component ]] || continue
  while IFS=: read -r file _ include; do
    dep=$(sed -E 's|.*"skit/([a-z0-9_]+)/.*|\1|' <<<"$include")
    if [[ " ${allowed[$component]} " != *" $dep "* ]]; then
      echo "layering: $file includes skit/$dep/ (allowed for $component: ${allowed[$component]})"
      status=1
    fi
  done < <(grep -rn --include='*.cpp' --include='*.hpp' '#include "skit/' "$component" || true)
done
[[ $status -eq 0 ]] && echo "layering: ok"
exit $status
