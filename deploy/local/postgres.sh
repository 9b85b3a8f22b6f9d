#!/usr/bin/env bash
# Local PostgreSQL for Palisade: the machine's shared server (Debian cluster on
# 127.0.0.1:5432), started when it is down, plus the Palisade databases and roles
# (deploy/postgres/init-databases.sh: one database and an owner/application role pair
# per service, and palisade_test for integration tests).
#
#   postgres.sh up              start the server if needed; create databases and roles
#   postgres.sh down            nothing to stop: the server is shared (prints so)
#   postgres.sh down --purge    drop the palisade databases and roles
#   postgres.sh status          server and databases
#   postgres.sh env             KEY=VALUE lines for .palisade/env
#
# Passwords: none under the local trust authentication; PG_PASSWORD_<ROLE> (e.g.
# PG_PASSWORD_PALISADE_AUTH) sets one when given.
set -euo pipefail
PALISADE_COMPONENT=postgres
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export PGHOST="${PGHOST:-127.0.0.1}"
export PGPORT="${PGPORT:-5432}"
export PG_SUPERUSER="${PG_SUPERUSER:-postgres}"

ready() { pg_isready -q -h "$PGHOST" -p "$PGPORT" -t 2 2>/dev/null; }

psql_super() { psql -X -q -v ON_ERROR_STOP=1 -U "$PG_SUPERUSER" -d postgres "$@"; }

palisade_databases() {
  psql_super -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'palisade\_%' ORDER BY 1"
}

start_server() {
  command -v pg_ctlcluster >/dev/null || ensure_debian_packages postgresql
  local version
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)"
  [ -n "$version" ] || die "no PostgreSQL cluster under /etc/postgresql"
  log "starting PostgreSQL $version (cluster main)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || die "could not start PostgreSQL $version/main"
  local i
  for ((i = 0; i < 60; i++)); do ready && return 0; sleep 0.5; done
  die "PostgreSQL did not accept connections on $PGHOST:$PGPORT within 30s"
}

cmd_up() {
  command -v psql >/dev/null || ensure_debian_packages postgresql-client
  if ready; then
    log "reusing the server on $PGHOST:$PGPORT"
  else
    start_server
    log "started the server on $PGHOST:$PGPORT"
  fi
  psql_super -Atc 'SELECT 1' >/dev/null 2>&1 \
    || die "cannot connect to $PGHOST:$PGPORT as superuser $PG_SUPERUSER"
  "$PALISADE_REPO/deploy/postgres/init-databases.sh" >/dev/null || die "creating the databases and roles failed"
  log "databases ready: $(palisade_databases | tr '\n' ' ')"
}

cmd_down() {
  if [ "${1:-}" = "--purge" ]; then
    ready || die "server on $PGHOST:$PGPORT is down; nothing to purge"
    local db role
    for db in $(palisade_databases); do
      psql_super -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
      log "dropped database $db"
    done
    for role in $(psql_super -Atc "SELECT rolname FROM pg_roles WHERE rolname LIKE 'palisade\_%' ORDER BY 1"); do
      psql_super -c "DROP ROLE IF EXISTS \"$role\""
      log "dropped role $role"
    done
  elif [ -n "${1:-}" ]; then
    die "unknown option $1 (down [--purge])"
  else
    log "the PostgreSQL server is shared and stays up (down --purge drops the palisade databases and roles)"
  fi
}

cmd_status() {
  if ! ready; then
    echo "postgres: down ($PGHOST:$PGPORT)"
    return 3
  fi
  local dbs
  dbs="$(palisade_databases | tr '\n' ' ')"
  echo "postgres: up ($PGHOST:$PGPORT), databases: ${dbs:-none}"
}

cmd_env() {
  echo "PGHOST=$PGHOST"
  echo "PGPORT=$PGPORT"
  echo "PG_SUPERUSER=$PG_SUPERUSER"
}

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up | down [--purge] | status | env" >&2; exit 2 ;;
esac
