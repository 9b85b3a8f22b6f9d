#!/usr/bin/env bash
# rsyslog (from Debian) as the syslog SIEM the audit service's feeds deliver to in tests:
# OUR OWN rsyslogd (own config, pid file and work folder under .palisade/rsyslog; the
# machine's /etc/rsyslog.conf daemon is neither used nor touched), receiving RFC 5425
# syslog over TLS (octet-counted framing) on 127.0.0.1:$RSYSLOG_TLS_PORT with a server
# certificate from the development CA, and writing each message's raw text (one per
# line) to .palisade/rsyslog/received.log, which the tests read.
#
#   rsyslog.sh up       install rsyslog + rsyslog-gnutls (Debian) when missing, write the
#                       config, start rsyslogd (or reuse the running one)
#   rsyslog.sh down     stop our rsyslogd (received.log stays)
#   rsyslog.sh status   exit 0 when our rsyslogd runs and accepts TLS, else 3
#   rsyslog.sh env      KEY=VALUE lines for .palisade/env
set -euo pipefail
PALISADE_COMPONENT=rsyslog
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RSYSLOG_HOST=127.0.0.1
RSYSLOG_TLS_PORT="${PALISADE_RSYSLOG_PORT:-6514}"
RSYSLOG_DIR="$PALISADE_HOME/rsyslog"
RSYSLOG_WORK="$RSYSLOG_DIR/work"
RSYSLOG_TLS="$RSYSLOG_DIR/tls"
RSYSLOG_CONF="$RSYSLOG_DIR/rsyslog.conf"
RSYSLOG_OUT="$RSYSLOG_DIR/received.log"
RSYSLOG_PID="$PALISADE_RUN/rsyslog.pid"
RSYSLOG_LOG="$PALISADE_LOGS/rsyslog.log"

tls_answers() {
  # A TLS handshake that verifies the server certificate against the development CA.
  timeout 5 openssl s_client -connect "$RSYSLOG_HOST:$RSYSLOG_TLS_PORT" -CAfile "$PALISADE_PKI_DIR/ca.crt" \
    -verify_return_error -servername localhost </dev/null >/dev/null 2>&1
}

issue_server_certificate() {
  palisade_node "$PALISADE_REPO/libs/pki/bin/pki.js" ensure-ca --dir "$PALISADE_PKI_DIR" >&2
  palisade_node "$PALISADE_REPO/libs/pki/bin/pki.js" issue --dir "$PALISADE_PKI_DIR" --kind server --name rsyslog \
    --dns localhost --ip 127.0.0.1 --out "$RSYSLOG_TLS" >&2
}

write_config() {
  cat >"$RSYSLOG_CONF" <<CONF
# Written by deploy/local/rsyslog.sh; do not edit. Only what is below: no imuxsock,
# no imklog, nothing of the machine's /etc/rsyslog.conf.
global(
  workDirectory="$RSYSLOG_WORK"
  maxMessageSize="1m"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="$PALISADE_PKI_DIR/ca.crt"
  defaultNetstreamDriverCertFile="$RSYSLOG_TLS/cert.pem"
  defaultNetstreamDriverKeyFile="$RSYSLOG_TLS/key.pem"
)
# RFC 5425: TLS only (mode 1), TLS 1.2+; clients are not asked for a certificate (anon).
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
       gnutlsPriorityString="NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="siem") {
  action(type="omfile" file="$RSYSLOG_OUT" template="raw" asyncWriting="off" flushOnTXEnd="on")
}
input(type="imtcp" address="$RSYSLOG_HOST" port="$RSYSLOG_TLS_PORT" ruleset="siem")
CONF
  chmod 600 "$RSYSLOG_CONF"
}

up() {
  [ -x /usr/sbin/rsyslogd ] && [ -f /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || ensure_debian_packages rsyslog rsyslog-gnutls
  [ -x /usr/sbin/rsyslogd ] || die "rsyslogd is not installed"
  command -v openssl >/dev/null || ensure_debian_packages openssl
  mkdir -p "$RSYSLOG_WORK" "$RSYSLOG_TLS" "$PALISADE_RUN" "$PALISADE_LOGS"
  chmod 700 "$RSYSLOG_DIR"
  touch "$RSYSLOG_OUT"
  issue_server_certificate
  write_config
  /usr/sbin/rsyslogd -N1 -f "$RSYSLOG_CONF" >>"$RSYSLOG_LOG" 2>&1 || die "rsyslogd refuses $RSYSLOG_CONF; see $RSYSLOG_LOG"
  if pid_alive "$RSYSLOG_PID" && tls_answers; then
    log "reusing the running rsyslogd (pid $(cat "$RSYSLOG_PID"))"
    return 0
  fi
  pid_alive "$RSYSLOG_PID" && stop_pidfile "$RSYSLOG_PID" 10 || true
  evict_other_checkout "$RSYSLOG_TLS_PORT"
  # -n: no fork (setsid keeps it past this shell); -i/-f: our pid file and config only.
  setsid /usr/sbin/rsyslogd -n -i "$RSYSLOG_PID" -f "$RSYSLOG_CONF" </dev/null >>"$RSYSLOG_LOG" 2>&1 &
  disown
  for _ in $(seq 1 100); do tls_answers && break; sleep 0.1; done
  tls_answers || die "rsyslogd did not accept TLS on $RSYSLOG_HOST:$RSYSLOG_TLS_PORT; see $RSYSLOG_LOG"
  log "started rsyslogd (pid $(cat "$RSYSLOG_PID")) on tls://$RSYSLOG_HOST:$RSYSLOG_TLS_PORT, writing $RSYSLOG_OUT"
}

down() {
  stop_daemon "$RSYSLOG_PID" rsyslogd
}

env_lines() {
  echo "RSYSLOG_HOST=$RSYSLOG_HOST"
  echo "RSYSLOG_TLS_PORT=$RSYSLOG_TLS_PORT"
  echo "RSYSLOG_CA_FILE=$PALISADE_PKI_DIR/ca.crt"
  echo "RSYSLOG_OUTPUT_FILE=$RSYSLOG_OUT"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) pid_alive "$RSYSLOG_PID" && tls_answers || exit 3 ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
