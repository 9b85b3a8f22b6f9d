#!/usr/bin/env bash
# Installs the workspace's npm dependencies when they are missing or older than the
# lockfile. Node 24 itself arrives this way (the `node` devDependency); npm runs
# scripts with node_modules/.bin first on PATH, so everything after this uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.package-lock.json
if [ ! -x node_modules/.bin/node ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "ensure-deps: installing npm dependencies (npm ci)" >&2
  # npm 11 rejects a lockfile whose optional platform packages the registry does not
  # serve (npm/cli#9846: unrs-resolver's bindings for other platforms, pulled in by
  # Jest). Then install from the same lockfile with `npm install`, which accepts it.
  if ! npm ci --no-audit --no-fund --loglevel=error 2>/tmp/palisade-npm-ci.$$; then
    if grep -q 'EUSAGE' /tmp/palisade-npm-ci.$$; then
      echo "ensure-deps: npm ci refused the lockfile (npm/cli#9846); installing from it with npm install" >&2
      npm install --no-audit --no-fund --loglevel=error
    else
      cat /tmp/palisade-npm-ci.$$ >&2
      rm -f /tmp/palisade-npm-ci.$$
      exit 1
    fi
  fi
  rm -f /tmp/palisade-npm-ci.$$
fi
node_major="$(node_modules/.bin/node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" = "24" ] || { echo "ensure-deps: expected Node 24 in node_modules/.bin, found $node_major" >&2; exit 1; }
