#!/usr/bin/env bash
# Creates (idempotently) every Palisade database and its two roles by running
# database.psql once per database, as a PostgreSQL superuser:
#
#   palisade_<service>   for each of the seven services (`-` in a name becomes `_`)
#   palisade_test        for integration tests
#
# each with the roles palisade_<x>_owner (owns the database and its schema
# `palisade`; runs migrations) and palisade_<x> (the application: CONNECT on its own
# database, USAGE on the schema, SELECT/INSERT on what the owner creates).
#
# Used by deploy/local/postgres.sh and, mounted into /docker-entrypoint-initdb.d,
# by the docker-compose postgres container. Connection: the usual libpq variables
# (PGHOST, PGPORT) and PG_SUPERUSER (default: POSTGRES_USER, then postgres).
# Optional passwords: PG_PASSWORD_<ROLE in upper case>, e.g. PG_PASSWORD_PALISADE_AUTH
# and PG_PASSWORD_PALISADE_AUTH_OWNER.
set -euo pipefail

# The service registry is libs/contracts/src/services.ts; deploy/compose.unit.spec.ts
# checks that this list matches it.
PALISADE_DATABASES=(auth policy credential sandbox_orchestrator audit llm_router billing test)

palisade_init_databases() {
  local sql_dir="${PALISADE_PG_SQL_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
  local superuser="${PG_SUPERUSER:-${POSTGRES_USER:-postgres}}"
  local name db owner app owner_var app_var
  for name in "${PALISADE_DATABASES[@]}"; do
    db="palisade_${name}"
    owner="${db}_owner"
    app="${db}"
    owner_var="PG_PASSWORD_${owner^^}"
    app_var="PG_PASSWORD_${app^^}"
    PALISADE_PG_OWNER_PASSWORD="${!owner_var:-}" PALISADE_PG_APP_PASSWORD="${!app_var:-}" \
      psql -X -q -v ON_ERROR_STOP=1 -U "$superuser" -d postgres \
        -v db="$db" -v owner="$owner" -v app="$app" -f "$sql_dir/database.psql" >/dev/null
    echo "postgres: database $db ready (roles $owner, $app)"
  done
}

palisade_init_databases
