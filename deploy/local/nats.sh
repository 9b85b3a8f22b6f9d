#!/usr/bin/env bash
# Local NATS for Palisade: one nats-server with JetStream, TLS only (TLS 1.3 only),
# client certificates mandatory and mapped to users (verify_and_map), least-privilege
# permissions per service, and the PALISADE_EVENTS / PALISADE_DLQ streams.
#
#   nats.sh up       start it (or reuse ours when it is running and healthy; a dead one
#                    is restarted; a changed config or certificate is reloaded live)
#   nats.sh down     stop it
#   nats.sh status   running or not (exit 0 / 3)
#   nats.sh env      KEY=VALUE lines for .palisade/env
#
# Identities. nats-server 2.9.10 maps the URI SAN of the client certificate to a user
# (checked: it tries e-mail SANs, then URI SANs, then DNS SANs, then the subject DN).
# Users are therefore SPIFFE IDs:
#   spiffe://palisade.local/service/<service>   one per service (libs/pki kind service)
#   spiffe://palisade.local/admin/platform      administration: scripts and tests
#
# Per-service permissions (see service_user below): publish its own events and dead
# letters, ask only the request subjects listed for it in nats-requests.txt (per method,
# never palisade.rpc.>), answer only its own requests, receive replies on its own inbox
# prefix (_INBOX.<service>.>; libs/nats sets that prefix), publish to JetStream and use
# only its own durable consumers, listed with their filter subject in nats-durables.txt
# next to this script. A durable can be created only through the filtered create subject
# $JS.API.CONSUMER.CREATE.<stream>.<durable>.<filter> (nats-server >= 2.9 checks the
# filter in the subject against the config; nats.js uses that form for one filter
# subject), with the listed filter or a narrower one: no service can re-create its
# durable to read every tenant's events. Streams are created by the admin only.
#
# Test permissions. nats-durables.test.txt and nats-requests.test.txt (same formats) list
# what only tests use (their durables, the request subjects of test servers). They are
# applied unless PALISADE_NATS_PERMISSIONS=deployed, which `npm start` (scripts/start.sh)
# and the compose stack (deploy/docker/pki-init.sh) set: `npm test`, `npm run bench` and
# deploy/local/up.sh by hand add them; `npm start` reloads the server without them.
#
# Environment: NATS_TLS_PORT (4223), NATS_MONITOR_PORT (8223), PALISADE_PKI_DIR
# (.palisade/pki), PALISADE_HOME (.palisade).
set -euo pipefail
PALISADE_COMPONENT=nats
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NATS_TLS_PORT="${NATS_TLS_PORT:-4223}"
NATS_MONITOR_PORT="${NATS_MONITOR_PORT:-8223}"
NATS_HOST=127.0.0.1
NATS_DIR="$PALISADE_HOME/nats"
NATS_CONF="$NATS_DIR/nats.conf"
NATS_TLS_DIR="$NATS_DIR/tls"
NATS_PID="$PALISADE_RUN/nats.pid"
NATS_LOG="$PALISADE_LOGS/nats.log"
DURABLES_FILE="$PALISADE_REPO/deploy/local/nats-durables.txt"
REQUESTS_FILE="$PALISADE_REPO/deploy/local/nats-requests.txt"
EVENTS_STREAM=PALISADE_EVENTS
SERVICES=(auth policy credential sandbox-orchestrator audit llm-router billing)
ADMIN_USER="spiffe://palisade.local/admin/platform"

monitor_url() { echo "http://$NATS_HOST:$NATS_MONITOR_PORT"; }
healthy() { curl -sf --max-time 2 "$(monitor_url)/healthz" >/dev/null 2>&1; }

# Ours: the pid file's process is a nats-server running our config.
ours_running() {
  pid_alive "$NATS_PID" || return 1
  tr '\0' ' ' <"/proc/$(cat "$NATS_PID")/cmdline" 2>/dev/null | grep -q "nats-server.*$NATS_CONF"
}

ensure_pki_built() {
  if [ ! -f "$PALISADE_REPO/libs/pki/dist/index.js" ] || [ ! -f "$PALISADE_REPO/libs/nats/dist/index.js" ]; then
    log "building libs/pki and libs/nats"
    (cd "$PALISADE_REPO" && PATH="$PALISADE_REPO/node_modules/.bin:$PATH" npx tsc -b libs/pki libs/nats) \
      || die "building libs/pki and libs/nats failed"
  fi
}

issue_server_certificate() {
  palisade_node "$PALISADE_REPO/libs/pki/bin/pki.js" ensure-ca --dir "$PALISADE_PKI_DIR" >&2
  palisade_node "$PALISADE_REPO/libs/pki/bin/pki.js" issue --dir "$PALISADE_PKI_DIR" --kind server --name nats \
    --dns localhost --ip 127.0.0.1 --out "$NATS_TLS_DIR" >&2
}

# The rows of a permission table without comments and blank lines, followed by those of
# its test twin (<name>.test.txt) unless PALISADE_NATS_PERMISSIONS=deployed.
table_rows() {
  local file
  for file in "$1" "${1%.txt}.test.txt"; do
    if [ "$file" != "$1" ] && [ "${PALISADE_NATS_PERMISSIONS:-test}" = deployed ]; then continue; fi
    if [ -f "$file" ]; then awk '!/^[[:space:]]*(#|$)/' "$file"; fi
  done
  return 0
}

# "<durable> <filter>" lines of a service (nats-durables.txt: "<service> <durable> <filter>").
durables_of() {
  table_rows "$DURABLES_FILE" | awk -v s="$1" '$1 == s { print $2, $3 }'
}

# Durables of every other service: their consumer-create subjects are denied explicitly.
durables_not_of() {
  table_rows "$DURABLES_FILE" | awk -v s="$1" '$1 != s { print $2 }'
}

# Request subjects a service may ask (nats-requests.txt: "<service> <subject>").
requests_of() {
  table_rows "$REQUESTS_FILE" | awk -v s="$1" '$1 == s { print $2 }'
}

# Services that ask a method of a service (nats-requests.txt), one per line.
callers_of() {
  table_rows "$REQUESTS_FILE" | awk -v p="palisade.rpc.$1." 'index($2, p) == 1 { print $1 }' | sort -u
}

known_service() {
  local s
  for s in "${SERVICES[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

check_tables() {
  local service durable filter subject extra file
  for file in "$DURABLES_FILE" "${DURABLES_FILE%.txt}.test.txt"; do
    [ -f "$file" ] || continue
    while read -r service durable filter extra; do
      case "$service" in '' | '#'*) continue ;; esac
      known_service "$service" || die "$file: unknown service '$service'"
      [[ "$durable" =~ ^[a-z][a-z0-9-]*$ ]] || die "$file: invalid durable '$durable'"
      [[ "$durable" == "$service" || "$durable" == "$service-"* ]] \
        || die "$file: durable '$durable' must start with '$service-'"
      [[ "$filter" =~ ^palisade\.events(\.[a-z0-9_-]+)*(\.[>])?$ ]] \
        || die "$file: '$service $durable' needs its filter subject (palisade.events.…), not '$filter'"
      [ -z "$extra" ] || die "$file: unexpected '$extra' after '$service $durable $filter'"
    done <"$file"
  done
  for file in "$REQUESTS_FILE" "${REQUESTS_FILE%.txt}.test.txt"; do
    [ -f "$file" ] || continue
    while read -r service subject extra; do
      case "$service" in '' | '#'*) continue ;; esac
      known_service "$service" || die "$file: unknown service '$service'"
      [[ "$subject" =~ ^palisade\.rpc\.([a-z-]+)\.[a-z0-9][a-z0-9-]*$ ]] && known_service "${BASH_REMATCH[1]}" \
        || die "$file: '$subject' is not one method palisade.rpc.<service>.<method> (no wildcards)"
      [ -z "$extra" ] || die "$file: unexpected '$extra' after '$service $subject'"
    done <"$file"
  done
}

quote_list() { # "a" "b" -> "a", "b"
  local first=1 item
  for item in "$@"; do
    [ -n "$first" ] || printf ', '
    printf '"%s"' "$item"
    first=""
  done
}

# Services that answer no NATS RPC get no `allow_responses`: with it, nats-server records
# the reply subject of every message delivered to the connection (each JetStream delivery
# has one, the ack subject, and an explicitly allowed ack never clears it) and, past 4,096
# entries, scans them all on every delivery, so a fast JetStream consumer drops to ~2k
# msgs/s (audit ingest: 2.0-2.6k/s with it, 21k/s without, same durable and client).
# Such a service may still answer the few methods nats-requests.txt lists for it (audit:
# seal-personal, transport-keys): it may publish to the inboxes of exactly those callers, which it cannot
# read, so forging an answer would mean guessing a random inbox name.
NO_RPC_SERVICES="audit"

service_user() {
  local svc="$1" durable filter subject responses="allow_responses: true"
  local answers_to=()
  case " $NO_RPC_SERVICES " in *" $svc "*)
    responses="# no allow_responses: replies only to the callers' inboxes above (see NO_RPC_SERVICES)"
    for subject in $(callers_of "$svc"); do answers_to+=("_INBOX.$subject.>"); done ;;
  esac
  local publish=(
    "palisade.events.$svc.>" "palisade.dlq.$svc.>"
    '$JS.API.INFO' "\$JS.API.STREAM.INFO.$EVENTS_STREAM"
    # Every instance follows the auth service's revocations with its own ephemeral
    # consumer (libs/service-kit RevocationFeed): creatable only filtered on that one
    # subject (the server checks the filter in the subject against the config), and
    # pushed to the service's own inbox; the durables of other services are denied below,
    # so no other consumer is reachable this way.
    "\$JS.API.CONSUMER.CREATE.$EVENTS_STREAM.*.palisade.events.auth.revocation.issued"
  )
  local deny=()
  publish+=("${answers_to[@]}")
  for subject in $(requests_of "$svc"); do publish+=("$subject"); done
  # With the test permissions, the same requests in a namespace (libs/nats rpcWireSubject,
  # PALISADE_RPC_NAMESPACE): suites sharing this server never answer each other.
  if [ "${PALISADE_NATS_PERMISSIONS:-test}" != deployed ]; then
    for subject in $(requests_of "$svc"); do publish+=("$subject.*"); done
  fi
  while read -r durable filter; do
    [ -n "$durable" ] || continue
    publish+=(
      "\$JS.API.CONSUMER.CREATE.$EVENTS_STREAM.$durable.$filter"
      "\$JS.API.CONSUMER.INFO.$EVENTS_STREAM.$durable"
      "\$JS.API.CONSUMER.MSG.NEXT.$EVENTS_STREAM.$durable"
      "\$JS.ACK.$EVENTS_STREAM.$durable.>"
    )
  done < <(durables_of "$svc")
  for durable in $(durables_not_of "$svc"); do deny+=("\$JS.API.CONSUMER.CREATE.$EVENTS_STREAM.$durable.>"); done
  local publish_deny=""
  [ "${#deny[@]}" -eq 0 ] || publish_deny=", deny: [$(quote_list "${deny[@]}")]"
  cat <<EOF
    {
      user: "spiffe://palisade.local/service/$svc"
      permissions: {
        publish: { allow: [$(quote_list "${publish[@]}")]$publish_deny }
        subscribe: { allow: [$(quote_list "palisade.rpc.$svc.>" "_INBOX.$svc.>")] }
        $responses
      }
    }
EOF
}

write_config() {
  local tmp="$NATS_CONF.tmp" svc
  mkdir -p "$NATS_DIR/jetstream" "$PALISADE_RUN" "$PALISADE_LOGS"
  {
    cat <<EOF
# Generated by deploy/local/nats.sh; edits are overwritten.
server_name: palisade-local
listen: "$NATS_HOST:$NATS_TLS_PORT"
http: "$NATS_HOST:$NATS_MONITOR_PORT"
pid_file: "$NATS_PID"
log_file: "$NATS_LOG"
max_payload: 1MB

jetstream {
  store_dir: "$NATS_DIR/jetstream"
  max_memory_store: 256MB
  max_file_store: 8GB
}

# TLS on every connection, client certificate required and mapped to a user below.
# nats-server 2.9 has no min_version: offering only TLS 1.3 cipher suites leaves no
# TLS 1.2 handshake possible.
tls {
  cert_file: "$NATS_TLS_DIR/cert.pem"
  key_file: "$NATS_TLS_DIR/key.pem"
  ca_file: "$NATS_TLS_DIR/ca.pem"
  verify_and_map: true
  timeout: 2
  cipher_suites: ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
}

authorization {
  users: [
    { user: "$ADMIN_USER" }
EOF
    for svc in "${SERVICES[@]}"; do service_user "$svc"; done
    cat <<EOF
  ]
}
EOF
  } >"$tmp"
  if [ -f "$NATS_CONF" ] && cmp -s "$tmp" "$NATS_CONF"; then
    rm -f "$tmp"
    return 1 # unchanged
  fi
  mv "$tmp" "$NATS_CONF"
  return 0
}

ensure_streams() {
  palisade_node "$PALISADE_REPO/libs/nats/bin/ensure-streams.js" \
    --servers "tls://$NATS_HOST:$NATS_TLS_PORT" --pki-dir "$PALISADE_PKI_DIR" >&2 \
    || die "creating the JetStream streams failed"
}

start_server() {
  evict_other_checkout "$NATS_TLS_PORT"
  evict_other_checkout "$NATS_MONITOR_PORT"
  if curl -s --max-time 1 "$(monitor_url)/varz" >/dev/null 2>&1 || (exec 3<>"/dev/tcp/$NATS_HOST/$NATS_TLS_PORT") 2>/dev/null; then
    die "port $NATS_TLS_PORT or $NATS_MONITOR_PORT is taken by a server that is not ours (set NATS_TLS_PORT / NATS_MONITOR_PORT)"
  fi
  rm -f "$NATS_PID"
  setsid nats-server -c "$NATS_CONF" </dev/null >>"$NATS_LOG" 2>&1 &
  local i
  for ((i = 0; i < 100; i++)); do
    if ours_running && healthy; then return 0; fi
    sleep 0.1
  done
  tail -20 "$NATS_LOG" >&2 || true
  die "nats-server did not become healthy on $(monitor_url) within 10s (log: $NATS_LOG)"
}

cmd_up() {
  command -v nats-server >/dev/null || ensure_debian_packages nats-server
  command -v curl >/dev/null || ensure_debian_packages curl
  ensure_pki_built
  check_tables
  local before after changed=""
  before="$(cat "$NATS_TLS_DIR/cert.pem" 2>/dev/null || true)"
  issue_server_certificate
  after="$(cat "$NATS_TLS_DIR/cert.pem")"
  [ "$before" = "$after" ] || changed=1
  write_config && changed=1
  if ours_running && healthy; then
    if [ -n "$changed" ]; then
      log "reloading config/certificate of the running server (pid $(cat "$NATS_PID"))"
      kill -HUP "$(cat "$NATS_PID")"
      sleep 0.3
      healthy || die "nats-server is unhealthy after the reload (log: $NATS_LOG)"
    else
      log "reusing the running server (pid $(cat "$NATS_PID"))"
    fi
  else
    if pid_alive "$NATS_PID" && ours_running; then
      log "pid $(cat "$NATS_PID") is unhealthy, restarting it"
      stop_pidfile "$NATS_PID" 10 || true
    fi
    start_server
    log "started nats-server (pid $(cat "$NATS_PID")) on tls://$NATS_HOST:$NATS_TLS_PORT"
  fi
  ensure_streams
}

cmd_down() {
  if ours_running; then
    local pid
    pid="$(cat "$NATS_PID")"
    stop_pidfile "$NATS_PID" 15 || true
    log "stopped nats-server (pid $pid)"
  else
    rm -f "$NATS_PID"
    log "not running"
  fi
}

cmd_status() {
  if ours_running; then
    if healthy; then
      log "running (pid $(cat "$NATS_PID")) on tls://$NATS_HOST:$NATS_TLS_PORT, monitor $(monitor_url)"
      return 0
    fi
    log "running (pid $(cat "$NATS_PID")) but unhealthy"
    return 1
  fi
  log "stopped"
  return 3
}

cmd_env() {
  echo "NATS_URL=tls://$NATS_HOST:$NATS_TLS_PORT"
  echo "NATS_MONITOR_URL=$(monitor_url)"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
