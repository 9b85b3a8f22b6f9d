#!/usr/bin/env bash
# `npm start`: install what is missing, build, bring up the local infrastructure, run
# all seven services and print their URLs. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
export PATH="$PWD/node_modules/.bin:$PATH"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
t0=$(date +%s.%N)
nx run-many -t build --output-style=static
# Remember whether NATS and Kafka were already running, so Ctrl-C stops only ours.
started_infra=""
if ! bash deploy/local/nats.sh status >/dev/null 2>&1 || ! bash deploy/local/kafka.sh status >/dev/null 2>&1; then
  started_infra="--started-infra"
fi
PALISADE_NATS_PERMISSIONS=deployed bash deploy/local/up.sh # no test permissions (deploy/local/nats.sh)
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "build + infrastructure: %.1f s\n", b - a }'
exec node scripts/start.js $started_infra
