#!/usr/bin/env bash
# `npm run bench [-- <name>…]`: builds, brings up the local infrastructure and runs the
# benchmarks; each writes bench/results/<name>.json and the run prints a summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
export PATH="$PWD/node_modules/.bin:$PATH"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
nx run-many -t build --output-style=static >/dev/null
bash deploy/local/up.sh
set -a; . .palisade/env; set +a
exec node bench/dist/run.js "$@"
