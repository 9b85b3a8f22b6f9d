#!/usr/bin/env bash
# Local Apache Kafka for Palisade: one KRaft node (broker + controller) running as a
# plain JVM process on the machine's JDK 17, jars resolved from Maven Central
# (deploy/local/kafka/pom.xml) into .palisade/cache/kafka-<version>/libs.
#
#   kafka.sh up       start it, or reuse ours when it is running and answers; a dead one
#                     is restarted, and so is one whose config or certificate changed
#   kafka.sh down     stop it (data stays in .palisade/kafka/data)
#   kafka.sh status   running and ready or not (exit 0 / 3)
#   kafka.sh env      KEY=VALUE lines for .palisade/env
#
# Security: clients connect over TLS 1.3 only, on 127.0.0.1:$KAFKA_PORT (9093), with a
# client certificate of the dev PKI (ssl.client.auth=required); the certificate subject
# becomes the principal (service certificates: User:<service>; admin certificates:
# User:admin-<name>). The StandardAuthorizer denies whatever no ACL allows; ACLs are in
# kafka/acls.sh. The controller listener ($KAFKA_CONTROLLER_PORT, 9094) is loopback and
# mutual TLS too. Details and version choice: deploy/local/kafka/README.md.
#
# Files: .palisade/kafka/{server.properties,log4j.properties,admin.properties,data/,tls/},
# .palisade/logs/kafka.log, .palisade/run/kafka.pid.
# Environment: KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_HEAP (1g), JAVA_HOME,
# PALISADE_HOME, PALISADE_PKI_DIR.
set -euo pipefail
PALISADE_COMPONENT=kafka
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-9093}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9094}"
KAFKA_HEAP="${KAFKA_HEAP:-1g}"
KAFKA_SRC="$PALISADE_REPO/deploy/local/kafka"
KAFKA_POM="$KAFKA_SRC/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")"
KAFKA_LIBS="$PALISADE_CACHE/kafka-$KAFKA_VERSION/libs"
KAFKA_DIR="$PALISADE_HOME/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_TLS="$KAFKA_DIR/tls"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_ADMIN_CONF="$KAFKA_DIR/admin.properties"
KAFKA_PID="$PALISADE_RUN/kafka.pid"
KAFKA_LOG="$PALISADE_LOGS/kafka.log"
KAFKA_STATE="$PALISADE_RUN/kafka.config.sha256"
KAFKA_ACLS_STATE="$KAFKA_DIR/acls.sha256"
# The identity that administers the cluster (super user), as in deploy/local/nats.sh.
KAFKA_ADMIN_NAME=platform

mkdir -p "$PALISADE_RUN" "$PALISADE_LOGS" "$PALISADE_CACHE"

now_ms() { date +%s%3N; }
elapsed() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1fs", (b - a) / 1000 }'; }

# ---------------------------------------------------------------------------- java
java_bin() {
  local candidate
  for candidate in "${JAVA_HOME:+$JAVA_HOME/bin/java}" /usr/lib/jvm/java-17-openjdk-amd64/bin/java "$(command -v java || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if "$candidate" -version 2>&1 | head -1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

ensure_java() {
  JAVA="$(java_bin)" && return 0
  ensure_debian_packages openjdk-17-jre-headless
  JAVA="$(java_bin)" || die "no Java 17 or later found (set JAVA_HOME)"
}

# ---------------------------------------------------------------------------- jars
ensure_jars() {
  local stamp="$KAFKA_LIBS/.resolved" want
  want="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  command -v mvn >/dev/null || ensure_debian_packages maven
  local started tmp
  started="$(now_ms)"
  tmp="$(mktemp -d "$PALISADE_CACHE/kafka-$KAFKA_VERSION.XXXXXX")"
  log "resolving Apache Kafka $KAFKA_VERSION jars from Maven Central"
  if ! mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
    tail -20 "$tmp/mvn.log" >&2
    rm -rf "$tmp"
    die "resolving the Kafka jars failed"
  fi
  echo "$want" >"$tmp/libs/.resolved"
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$(dirname "$KAFKA_LIBS")"
  mv "$tmp/libs" "$KAFKA_LIBS"
  rm -rf "$tmp"
  log "resolved $(ls "$KAFKA_LIBS" | wc -l) jars in $(elapsed "$started")"
}

kafka_java() {
  "$JAVA" -Xmx256m -Dlog4j.configuration="file:$KAFKA_DIR/log4j-tools.properties" -cp "$KAFKA_LIBS/*" "$@"
}

# -------------------------------------------------------------------- certificates
pki() {
  if [ ! -f "$PALISADE_REPO/libs/pki/dist/index.js" ]; then
    log "building libs/pki"
    (cd "$PALISADE_REPO" && PATH="$PALISADE_REPO/node_modules/.bin:$PATH" npx tsc -b libs/pki) || die "building libs/pki failed"
  fi
  palisade_node "$PALISADE_REPO/libs/pki/bin/pki.js" "$@" >/dev/null || die "pki.js $1 failed"
}

ensure_certificates() {
  # 30 days; pki.js renews a certificate in its last third, and `up` then restarts the
  # broker, which reads its keystore at start.
  pki issue --dir "$PALISADE_PKI_DIR" --kind server --name kafka --dns localhost --ip 127.0.0.1 \
    --hours 720 --out "$KAFKA_TLS/server"
  pki issue --dir "$PALISADE_PKI_DIR" --kind admin --name "$KAFKA_ADMIN_NAME" --hours 720 --out "$KAFKA_TLS/admin"
  # Kafka's PEM key store: the private key and the certificate chain in one file.
  local who
  for who in server admin; do
    (umask 077 && cat "$KAFKA_TLS/$who/key.pem" "$KAFKA_TLS/$who/cert.pem" >"$KAFKA_TLS/$who/keystore.pem.tmp")
    mv "$KAFKA_TLS/$who/keystore.pem.tmp" "$KAFKA_TLS/$who/keystore.pem"
  done
}

# -------------------------------------------------------------------------- config
write_config() {
  mkdir -p "$KAFKA_DATA"
  cat >"$KAFKA_CONF.tmp" <<EOF
# Generated by deploy/local/kafka.sh; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=SSL://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=SSL://$KAFKA_HOST:$KAFKA_PORT
listener.security.protocol.map=SSL:SSL,CONTROLLER:SSL
inter.broker.listener.name=SSL
controller.listener.names=CONTROLLER
log.dirs=$KAFKA_DATA

# One node: every internal topic has a single replica.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# Tests delete their topics (as the admin); production sets this to false.
delete.topic.enable=true

# TLS 1.3 only, client certificates required, on every listener.
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_TLS/server/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_TLS/server/ca.pem
ssl.client.auth=required
ssl.protocol=TLSv1.3
ssl.enabled.protocols=TLSv1.3
ssl.endpoint.identification.algorithm=https

# Principals from the certificate subject, which Kafka sees in RFC 2253 order
# (O=Palisade,OU=service,CN=audit): services by name, admins as admin-<name>, the
# broker itself as kafka-broker; anything else keeps its full DN and holds no ACL.
ssl.principal.mapping.rules=RULE:^O=Palisade,OU=service,CN=([a-z][a-z0-9-]*)$/\$1/,\\
  RULE:^O=Palisade,OU=admin,CN=([a-z][a-z0-9-]*)$/admin-\$1/,\\
  RULE:^O=Palisade,OU=infrastructure,CN=kafka$/kafka-broker/,\\
  DEFAULT

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin-$KAFKA_ADMIN_NAME;User:kafka-broker
EOF
  mv "$KAFKA_CONF.tmp" "$KAFKA_CONF"

  cat >"$KAFKA_ADMIN_CONF" <<EOF
# Client config of the admin identity (super user), for Kafka's command line tools.
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_TLS/admin/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_TLS/admin/ca.pem
ssl.protocol=TLSv1.3
ssl.enabled.protocols=TLSv1.3
EOF

  cat >"$KAFKA_DIR/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.org.apache.kafka.clients.admin.AdminClientConfig=WARN
# Denials are logged at INFO: what a refused client was refused.
log4j.logger.kafka.authorizer.logger=INFO
EOF
  cat >"$KAFKA_DIR/log4j-tools.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

# What the running broker must match: its config, certificates and jars.
config_digest() {
  cat "$KAFKA_CONF" "$KAFKA_TLS/server/keystore.pem" "$KAFKA_TLS/server/ca.pem" "$KAFKA_LIBS/.resolved" | sha256sum | cut -d' ' -f1
}

format_storage() {
  [ -f "$KAFKA_DATA/meta.properties" ] && return 0
  local cluster_id
  cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid)" || die "kafka.tools.StorageTool random-uuid failed"
  log "formatting $KAFKA_DATA (cluster $cluster_id)"
  kafka_java kafka.tools.StorageTool format --config "$KAFKA_CONF" --cluster-id "$cluster_id" --ignore-formatted >/dev/null \
    || die "formatting the Kafka storage failed"
}

# ---------------------------------------------------------------------- lifecycle
probe() {
  palisade_node "$KAFKA_SRC/probe.js" "$KAFKA_HOST:$KAFKA_PORT" "$KAFKA_TLS/admin/cert.pem" "$KAFKA_TLS/admin/key.pem" \
    "$KAFKA_TLS/admin/ca.pem" "${1:-3000}" 2>/dev/null
}

# Ours: the pid file's process is a Kafka broker running our config.
ours_running() {
  pid_alive "$KAFKA_PID" || return 1
  tr '\0' ' ' <"/proc/$(cat "$KAFKA_PID")/cmdline" 2>/dev/null | grep -q "kafka.Kafka $KAFKA_CONF"
}

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

wait_ready() {
  local deadline=$(($(date +%s) + $1))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    ours_running || return 1
    probe 2000 && return 0
    sleep 0.5
  done
  return 1
}

start_broker() {
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    evict_other_checkout "$port"
    port_in_use "$port" && die "port $port is in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
  done
  format_storage
  # Keep one previous log.
  if [ -f "$KAFKA_LOG" ] && [ "$(stat -c %s "$KAFKA_LOG")" -gt $((50 * 1024 * 1024)) ]; then
    mv "$KAFKA_LOG" "$KAFKA_LOG.1"
  fi
  echo "---- $(date -u +%FT%TZ) kafka.sh: starting Apache Kafka $KAFKA_VERSION" >>"$KAFKA_LOG"
  # setsid: the broker outlives the shell (and the process group) that started it; it
  # must not inherit the lock (fd 9) either.
  # G1 as Kafka's documentation configures it, with 16 MB regions: with 1 MB ones (what a
  # small heap gets) every request above 512 KB (the audit writer's ~900 KB a partition and
  # transaction) was a humongous allocation, each starting a concurrent cycle (33 in 21 s).
  setsid "$JAVA" -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:G1HeapRegionSize=16M -XX:MetaspaceSize=96m \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" -Dkafka.logs.dir="$PALISADE_LOGS" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF" </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
  echo $! >"$KAFKA_PID"
  config_digest >"$KAFKA_STATE"
}

apply_acls() {
  local want
  want="$( (cat "$KAFKA_SRC/acls.sh" "$KAFKA_DATA/meta.properties") | sha256sum | cut -d' ' -f1)"
  [ -f "$KAFKA_ACLS_STATE" ] && [ "$(cat "$KAFKA_ACLS_STATE")" = "$want" ] && return 0
  local started
  started="$(now_ms)"
  "$KAFKA_SRC/acls.sh" kafka_java kafka.admin.AclCommand \
    --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" --command-config "$KAFKA_ADMIN_CONF" >/dev/null \
    || die "applying the ACLs (deploy/local/kafka/acls.sh) failed"
  echo "$want" >"$KAFKA_ACLS_STATE"
  log "ACLs applied in $(elapsed "$started")"
}
# acls.sh runs its argument as a command: make kafka_java reachable from it.
export -f kafka_java
export JAVA KAFKA_LIBS KAFKA_DIR

cmd_up() {
  local started
  started="$(now_ms)"
  exec 9>"$PALISADE_RUN/kafka.lock"
  flock 9
  ensure_java
  export JAVA
  ensure_jars
  ensure_certificates
  write_config

  if ours_running; then
    if [ "$(cat "$KAFKA_STATE" 2>/dev/null)" != "$(config_digest)" ]; then
      log "config or certificate changed: restarting"
      stop_pidfile "$KAFKA_PID" 60 || true
    elif wait_ready 60; then
      apply_acls
      log "reusing the broker on $KAFKA_HOST:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
      return 0
    else
      log "pid $(cat "$KAFKA_PID") runs but does not answer: restarting it"
      stop_pidfile "$KAFKA_PID" 60 || true
    fi
  elif [ -f "$KAFKA_PID" ]; then
    log "the broker of $KAFKA_PID is gone: starting a new one"
    rm -f "$KAFKA_PID"
  fi

  start_broker
  if ! wait_ready 120; then
    tail -30 "$KAFKA_LOG" >&2
    stop_pidfile "$KAFKA_PID" 10 || true
    die "Kafka did not become ready within 120s (log: $KAFKA_LOG)"
  fi
  apply_acls
  log "started Apache Kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT (pid $(cat "$KAFKA_PID")) in $(elapsed "$started")"
}

cmd_down() {
  exec 9>"$PALISADE_RUN/kafka.lock"
  flock 9
  if ours_running; then
    stop_pidfile "$KAFKA_PID" 60 || true
    log "stopped"
  else
    rm -f "$KAFKA_PID"
    log "not running"
  fi
}

cmd_status() {
  if ours_running && probe 3000; then
    echo "kafka: up ($KAFKA_HOST:$KAFKA_PORT, pid $(cat "$KAFKA_PID"), Apache Kafka $KAFKA_VERSION)"
  elif ours_running; then
    echo "kafka: running but not ready (pid $(cat "$KAFKA_PID"), log $KAFKA_LOG)"
    return 3
  else
    echo "kafka: down"
    return 3
  fi
}

cmd_env() {
  echo "KAFKA_BROKERS=$KAFKA_HOST:$KAFKA_PORT"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up | down | status | env" >&2; exit 2 ;;
esac
