#!/usr/bin/env bash
# Installs the workspace's npm dependencies when they are missing or older than the
# lockfile. Node 24 itself arrives this way (the `node` devDependency); npm runs
# scripts with node_modules/.bin first on PATH, so everything after this uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.package-lock.json
if [ ! -x node_modules/.bin/node ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "ensure-deps: installing npm dependencies (npm ci)" >&2
  # The lockfile is complete (every platform's optional packages are listed), so
  # npm ci takes it as it is and never rewrites it: installs are reproducible.
  npm ci --no-audit --no-fund --loglevel=error
fi
node_major="$(node_modules/.bin/node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" = "24" ] || { echo "ensure-deps: expected Node 24 in node_modules/.bin, found $node_major" >&2; exit 1; }
