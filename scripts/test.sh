#!/usr/bin/env bash
# `npm test`: every test, on a fresh machine too. Installs what is missing, builds and
# type-checks every project, lints, brings up the local infrastructure (PostgreSQL
# roles, TLS NATS with JetStream, Kafka KRaft with TLS), then runs the unit,
# integration and end-to-end tiers. Extra arguments go to Jest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
export PATH="$PWD/node_modules/.bin:$PATH"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
echo "== build (tsc, strict) and lint"
nx run-many -t build lint --output-style=static
eslint test
echo "== infrastructure"
bash deploy/local/up.sh
# Unit and integration tests run two files at a time; end-to-end files one at a time,
# since each starts real services that answer shared NATS subjects (queue groups).
echo "== unit and integration tests"
jest --ci --passWithNoTests --testPathIgnorePatterns '/node_modules/' '/dist/' '\.e2e\.spec\.ts$' "$@"
echo "== end-to-end tests"
TEST_TIER=e2e jest --ci --passWithNoTests --runInBand "$@"
