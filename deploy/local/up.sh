#!/usr/bin/env bash
# Brings up Palisade's local infrastructure, idempotently: what already runs and answers
# is reused, what is down is started.
#
#   1. Debian packages that are missing (nats-server, a Java 17 runtime, Maven when the
#      Kafka jars are not cached yet) and npm dependencies (scripts/ensure-deps.sh)
#   2. libs/pki built, the development CA in .palisade/pki
#   3. postgres.sh up   the shared PostgreSQL server, Palisade databases and roles
#   4. nats.sh up       NATS with JetStream over mutual TLS
#   5. kafka.sh up      Kafka (KRaft) over mutual TLS, with ACLs; then softhsm.sh (SoftHSM2
#                       token, pkcs11js), ldap.sh (OpenLDAP, LDAPS/StartTLS) and rsyslog.sh
#                       (rsyslogd receiving syslog over TLS)
#   6. .palisade/env    what the scripts' `env` print, plus PALISADE_HOME and
#                       PALISADE_PKI_DIR; read by the tests and by npm start
#
# Exits non-zero, naming the component, when something cannot start.
set -euo pipefail
PALISADE_COMPONENT=up
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$PALISADE_REPO/deploy/local"
cd "$PALISADE_REPO"
started_at="$(date +%s%3N)"

# 1. Tools.
packages=()
if [ -x "$HERE/nats.sh" ]; then command -v nats-server >/dev/null || packages+=(nats-server); fi
if ! { [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ] || java -version 2>&1 | head -1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; }; then
  packages+=(openjdk-17-jre-headless)
fi
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/kafka/pom.xml")"
if [ ! -f "$PALISADE_CACHE/kafka-$kafka_version/libs/.resolved" ]; then command -v mvn >/dev/null || packages+=(maven); fi
command -v psql >/dev/null || packages+=(postgresql-client)
command -v flock >/dev/null || packages+=(util-linux)
[ ${#packages[@]} -eq 0 ] || ensure_debian_packages "${packages[@]}"
[ -x "$PALISADE_REPO/node_modules/.bin/node" ] || bash "$PALISADE_REPO/scripts/ensure-deps.sh" || die "npm dependencies could not be installed"

# 2. PKI.
(PATH="$PALISADE_REPO/node_modules/.bin:$PATH" tsc -b libs/pki) || die "building libs/pki failed"
palisade_node libs/pki/bin/pki.js ensure-ca --dir "$PALISADE_PKI_DIR" | sed 's/^/pki: /' >&2 \
  || die "the development CA could not be created in $PALISADE_PKI_DIR"

# 3-5. Infrastructure, in dependency-free order; the first failure stops.
components=(postgres)
[ -x "$HERE/nats.sh" ] && components+=(nats) || log "deploy/local/nats.sh is missing: NATS skipped"
components+=(kafka)
components+=(softhsm) # SoftHSM2 token + pkcs11js (credential service, pkcs11 key provider)
components+=(ldap) # OpenLDAP over LDAPS/StartTLS with test users (auth service, LDAP sign-in)
components+=(rsyslog) # rsyslogd receiving syslog over TLS (audit service, SIEM feeds)
components+=(sandbox) # crun and cgroup v1 for the sandbox-orchestrator's isolation runtime
for component in "${components[@]}"; do
  "$HERE/$component.sh" up || die "$component could not start (see the messages above and .palisade/logs/)"
done

# 6. The environment file, replaced atomically.
{
  echo "# Written by deploy/local/up.sh at $(date -u +%FT%TZ); do not edit."
  echo "PALISADE_HOME=$PALISADE_HOME"
  echo "PALISADE_PKI_DIR=$PALISADE_PKI_DIR"
  for component in "${components[@]}"; do
    "$HERE/$component.sh" env || die "$component.sh env failed"
  done
} >"$PALISADE_HOME/env.tmp"
mv "$PALISADE_HOME/env.tmp" "$PALISADE_HOME/env"
log "ready in $(awk -v a="$started_at" -v b="$(date +%s%3N)" 'BEGIN { printf "%.1fs", (b - a) / 1000 }'); environment in $PALISADE_HOME/env"
