#!/usr/bin/env bash
# OpenLDAP (slapd from Debian) for the auth service's LDAP / Active Directory sign-in:
# a directory of its own on 127.0.0.1, LDAPS on $LDAPS_PORT and StartTLS on $LDAP_PORT,
# with a server certificate from the development CA, and seeded test users and groups.
#
#   ldap.sh up       install slapd + ldap-utils (Debian) when missing, write the config,
#                    seed the directory once, start slapd (or reuse the running one)
#   ldap.sh down     stop our slapd (data stays in .palisade/ldap)
#   ldap.sh status   exit 0 when our slapd answers over LDAPS, else 3
#   ldap.sh env      KEY=VALUE lines for .palisade/env
#
# Directory: dc=palisade,dc=test; people under ou=people (inetOrgPerson, uid), groups
# under ou=groups (groupOfNames, member); the service account cn=palisade-auth,ou=services
# may read them, users may only bind. Simple binds need TLS (security simple_bind=128).
# Every password is random, generated on first set-up, kept 0600 under .palisade/ldap/
# (seed-passwords: "<uid> <password>" lines for the tests).
set -euo pipefail
PALISADE_COMPONENT=ldap
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LDAP_HOST=127.0.0.1
LDAP_PORT="${PALISADE_LDAP_PORT:-6389}"
LDAPS_PORT="${PALISADE_LDAPS_PORT:-6636}"
LDAP_DIR="$PALISADE_HOME/ldap"
LDAP_DATA="$LDAP_DIR/data"
LDAP_TLS="$LDAP_DIR/tls"
LDAP_CONF="$LDAP_DIR/slapd.conf"
LDAP_PID="$PALISADE_RUN/ldap.pid"
LDAP_LOG="$PALISADE_LOGS/ldap.log"
BASE_DN="dc=palisade,dc=test"
ADMIN_DN="cn=admin,$BASE_DN"
# Raise when seed_ldif changes: an existing directory is then seeded again.
SEED_VERSION=2
BIND_DN="cn=palisade-auth,ou=services,$BASE_DN"
ADMIN_PW_FILE="$LDAP_DIR/admin.password"
BIND_PW_FILE="$LDAP_DIR/bind.password"
SEED_PW_FILE="$LDAP_DIR/seed-passwords"
SCHEMA=/etc/ldap/schema

random_password() { head -c 18 /dev/urandom | base64 | tr -d '/+=\n'; }
hash_password() { # from a file, so the password is never on a command line
  local f; f="$(mktemp)"; chmod 600 "$f"; printf '%s' "$1" >"$f"
  slappasswd -h '{SSHA}' -T "$f"; rm -f "$f"
}

ldaps_answers() {
  LDAPTLS_CACERT="$PALISADE_PKI_DIR/ca.crt" LDAPTLS_REQCERT=demand \
    ldapwhoami -x -H "ldaps://$LDAP_HOST:$LDAPS_PORT" -D "$BIND_DN" -y "$BIND_PW_FILE" >/dev/null 2>&1
}

issue_server_certificate() {
  palisade_node "$PALISADE_REPO/libs/pki/bin/pki.js" ensure-ca --dir "$PALISADE_PKI_DIR" >&2
  palisade_node "$PALISADE_REPO/libs/pki/bin/pki.js" issue --dir "$PALISADE_PKI_DIR" --kind server --name ldap \
    --dns localhost --ip 127.0.0.1 --out "$LDAP_TLS" >&2
}

write_config() {
  cat >"$LDAP_CONF" <<CONF
# Written by deploy/local/ldap.sh; do not edit.
include $SCHEMA/core.schema
include $SCHEMA/cosine.schema
include $SCHEMA/inetorgperson.schema
include $SCHEMA/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $LDAP_PID
argsfile $LDAP_DIR/slapd.args
loglevel stats
TLSCertificateFile $LDAP_TLS/cert.pem
TLSCertificateKeyFile $LDAP_TLS/key.pem
TLSCACertificateFile $PALISADE_PKI_DIR/ca.crt
TLSProtocolMin 3.3
security simple_bind=128
disallow bind_anon
require authc

database mdb
maxsize 104857600
suffix "$BASE_DN"
rootdn "$ADMIN_DN"
rootpw $(hash_password "$(cat "$ADMIN_PW_FILE")")
directory $LDAP_DATA
index objectClass,uid,member eq
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to dn.subtree="$BASE_DN"
  by dn.exact="$BIND_DN" read
  by self read
  by * none
CONF
  chmod 600 "$LDAP_CONF"
}

seed_ldif() {
  local uid groups
  echo "dn: $BASE_DN
objectClass: dcObject
objectClass: organization
o: Palisade test directory
dc: palisade
"
  for ou in people groups services; do printf 'dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n' "$ou" "$BASE_DN" "$ou"; done
  printf 'dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: palisade-auth\nuserPassword: %s\n\n' "$BIND_DN" "$(hash_password "$(cat "$BIND_PW_FILE")")"
  while read -r uid pw; do
    printf 'dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nmail: %s@palisade.test\nuserPassword: %s\n\n' \
      "$uid" "$BASE_DN" "$uid" "$uid" "$uid" "$uid" "$(hash_password "$pw")"
  done <"$SEED_PW_FILE"
  # groupOfNames needs at least one member.
  for groups in "palisade-admins:alice" "engineering:alice,bob" "finance:carol"; do
    printf 'dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\n' "${groups%%:*}" "$BASE_DN" "${groups%%:*}"
    IFS=, read -ra members <<<"${groups#*:}"
    for m in "${members[@]}"; do printf 'member: uid=%s,ou=people,%s\n' "$m" "$BASE_DN"; done
    echo
  done
  # Nested groups (members that are groups, "+name"; a cycle among them), for the
  # resolution of nested groups: alice is in platform-operators through palisade-admins.
  for groups in "platform-operators:+palisade-admins" "staff:+engineering,+finance" "everyone:+staff" "loop-a:+loop-b,bob" "loop-b:+loop-a"; do
    printf 'dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\n' "${groups%%:*}" "$BASE_DN" "${groups%%:*}"
    IFS=, read -ra members <<<"${groups#*:}"
    for m in "${members[@]}"; do
      case "$m" in
        +*) printf 'member: cn=%s,ou=groups,%s\n' "${m#+}" "$BASE_DN" ;;
        *) printf 'member: uid=%s,ou=people,%s\n' "$m" "$BASE_DN" ;;
      esac
    done
    echo
  done
}

up() {
  command -v slapd >/dev/null && command -v ldapwhoami >/dev/null && command -v slappasswd >/dev/null || ensure_debian_packages slapd ldap-utils
  [ -x /usr/sbin/slapd ] || die "slapd is not installed"
  mkdir -p "$LDAP_DATA" "$LDAP_TLS" "$PALISADE_RUN" "$PALISADE_LOGS"
  chmod 700 "$LDAP_DIR" "$LDAP_DATA"
  (umask 077
    [ -s "$ADMIN_PW_FILE" ] || random_password >"$ADMIN_PW_FILE"
    [ -s "$BIND_PW_FILE" ] || random_password >"$BIND_PW_FILE"
    [ -s "$SEED_PW_FILE" ] || for u in alice bob carol; do echo "$u $(random_password)"; done >"$SEED_PW_FILE"
    # ldapwhoami -y and the services read the whole file: no trailing newline.
    for f in "$ADMIN_PW_FILE" "$BIND_PW_FILE"; do printf '%s' "$(cat "$f")" >"$f.tmp" && mv "$f.tmp" "$f"; done)
  issue_server_certificate
  write_config
  # A directory seeded by an older version of this script is seeded again.
  if [ -f "$LDAP_DATA/data.mdb" ] && [ "$(cat "$LDAP_DATA/seed-version" 2>/dev/null)" != "$SEED_VERSION" ]; then
    pid_alive "$LDAP_PID" && stop_pidfile "$LDAP_PID" 10 || true
    rm -f "$LDAP_DATA"/*.mdb
    log "directory seeded by an older version: seeding it again"
  fi
  if ! [ -f "$LDAP_DATA/data.mdb" ]; then
    seed_ldif | /usr/sbin/slapadd -q -f "$LDAP_CONF" >/dev/null 2>>"$LDAP_LOG" || die "seeding the directory failed; see $LDAP_LOG"
    echo "$SEED_VERSION" >"$LDAP_DATA/seed-version"
    log "directory $BASE_DN seeded (users alice, bob, carol; groups, nested groups)"
  fi
  if pid_alive "$LDAP_PID" && ldaps_answers; then
    log "reusing the running slapd (pid $(cat "$LDAP_PID"))"
    return 0
  fi
  pid_alive "$LDAP_PID" && stop_pidfile "$LDAP_PID" 10 || true
  evict_other_checkout "$LDAPS_PORT"
  evict_other_checkout "$LDAP_PORT"
  # slapd forks and writes the pid file itself.
  # setsid: slapd outlives the shell (and the process group) that started it.
  setsid /usr/sbin/slapd -f "$LDAP_CONF" -h "ldap://$LDAP_HOST:$LDAP_PORT/ ldaps://$LDAP_HOST:$LDAPS_PORT/" -d 0 </dev/null >>"$LDAP_LOG" 2>&1 &
  disown
  for _ in $(seq 1 100); do ldaps_answers && break; sleep 0.1; done
  ldaps_answers || die "slapd did not answer on ldaps://$LDAP_HOST:$LDAPS_PORT; see $LDAP_LOG"
  log "started slapd (pid $(cat "$LDAP_PID")) on ldaps://$LDAP_HOST:$LDAPS_PORT and ldap://$LDAP_HOST:$LDAP_PORT (StartTLS)"
}

down() {
  stop_daemon "$LDAP_PID" slapd
}

env_lines() {
  echo "LDAP_URL=ldaps://$LDAP_HOST:$LDAPS_PORT"
  echo "LDAP_STARTTLS_URL=ldap://$LDAP_HOST:$LDAP_PORT"
  echo "LDAP_BASE_DN=$BASE_DN"
  echo "LDAP_BIND_DN=$BIND_DN"
  echo "LDAP_BIND_PASSWORD_FILE=$BIND_PW_FILE"
  echo "LDAP_SEED_PASSWORDS_FILE=$SEED_PW_FILE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) pid_alive "$LDAP_PID" && ldaps_answers || exit 3 ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
