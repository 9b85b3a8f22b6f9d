#!/usr/bin/env bash
# SoftHSM2 for the credential service's `pkcs11` key provider: a real PKCS#11 token in
# software, with its own configuration and token folder under .palisade/softhsm/, and the
# pkcs11js native binding built against Node 24's headers.
#
#   softhsm.sh up       install softhsm2 (Debian) when missing, build pkcs11js for the
#                       repository's Node, initialise the token `palisade` once
#   softhsm.sh down     nothing runs: SoftHSM2 is a library; the token stays
#   softhsm.sh status   exit 0 when the token is initialised and pkcs11js loads, else 3
#   softhsm.sh env      KEY=VALUE lines for .palisade/env
#
# Why the native build is done here and not by npm: pkcs11js has no prebuilt binaries,
# its install script is not allowed (package.json allowScripts), and left to itself
# node-gyp would compile against whatever `nodedir` says (~/.npmrc on our machines points
# at /usr, Node 20's headers) or try to download headers (unreachable). We build it with
# the headers of the Node that runs Palisade: the `node-<platform>-<arch>` package that
# the `node` devDependency installs (include/node), or, when npm has pruned it, the same
# package fetched from the npm registry into .palisade/cache/.
#
# PINs are random, generated on first initialisation, kept 0600 in .palisade/softhsm/.
set -euo pipefail
PALISADE_COMPONENT=softhsm
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SOFTHSM_DIR="$PALISADE_HOME/softhsm"
SOFTHSM_CONF="$SOFTHSM_DIR/softhsm2.conf"
TOKEN_DIR="$SOFTHSM_DIR/tokens"
TOKEN_LABEL="${PKCS11_TOKEN_LABEL:-palisade}"
USER_PIN_FILE="$SOFTHSM_DIR/user.pin"
SO_PIN_FILE="$SOFTHSM_DIR/so.pin"
NODE="$PALISADE_REPO/node_modules/.bin/node"
PKCS11JS="$PALISADE_REPO/node_modules/pkcs11js"

library() {
  local candidate
  for candidate in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
    [ -f "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

pkcs11js_loads() {
  [ -x "$NODE" ] && [ -d "$PKCS11JS" ] && (cd "$PALISADE_REPO" && "$NODE" -e "require('pkcs11js')" >/dev/null 2>&1)
}

# A folder whose include/node/common.gypi matches the repository's Node version.
node_headers() {
  local version platform arch pkg dir
  version="$("$NODE" -p 'process.versions.node')"
  platform="$("$NODE" -p 'process.platform')"
  arch="$("$NODE" -p 'process.arch')"
  pkg="node-$platform-$arch"
  for dir in "$PALISADE_REPO/node_modules/node/node_modules/$pkg" "$PALISADE_REPO/node_modules/$pkg" "$PALISADE_CACHE/$pkg-$version/package"; do
    if [ -f "$dir/include/node/common.gypi" ] && grep -q "\"version\": \"$version\"" "$dir/package.json" 2>/dev/null; then
      echo "$dir"
      return 0
    fi
  done
  log "fetching Node $version headers ($pkg@$version from the npm registry)"
  mkdir -p "$PALISADE_CACHE/$pkg-$version"
  (cd "$PALISADE_CACHE/$pkg-$version" && npm pack --silent "$pkg@$version" >/dev/null && tar -xzf "$pkg-$version.tgz" package/package.json package/include && rm -f "$pkg-$version.tgz") \
    || die "could not fetch $pkg@$version"
  echo "$PALISADE_CACHE/$pkg-$version/package"
}

build_pkcs11js() {
  pkcs11js_loads && return 0
  [ -d "$PKCS11JS" ] || die "node_modules/pkcs11js is missing: run scripts/ensure-deps.sh"
  command -v make >/dev/null && command -v g++ >/dev/null && command -v python3 >/dev/null || ensure_debian_packages make g++ python3
  local headers gyp
  headers="$(node_headers)"
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$gyp" ] || die "node-gyp (bundled with npm) not found at $gyp"
  log "building pkcs11js against $headers"
  (cd "$PKCS11JS" && npm_config_nodedir="$headers" "$NODE" "$gyp" rebuild --nodedir="$headers" >"$PALISADE_LOGS/pkcs11js-build.log" 2>&1) \
    || die "building pkcs11js failed; see $PALISADE_LOGS/pkcs11js-build.log"
  pkcs11js_loads || die "pkcs11js was built but does not load under $("$NODE" --version)"
}

token_initialised() {
  SOFTHSM2_CONF="$SOFTHSM_CONF" softhsm2-util --show-slots 2>/dev/null | grep -q "Label:.*$TOKEN_LABEL\b"
}

up() {
  mkdir -p "$PALISADE_LOGS"
  library >/dev/null || ensure_debian_packages softhsm2
  library >/dev/null || die "softhsm2 is installed but libsofthsm2.so was not found"
  build_pkcs11js
  mkdir -p "$TOKEN_DIR"
  chmod 700 "$SOFTHSM_DIR" "$TOKEN_DIR"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$TOKEN_DIR" >"$SOFTHSM_CONF"
  if ! token_initialised; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$USER_PIN_FILE" && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$SO_PIN_FILE")
    SOFTHSM2_CONF="$SOFTHSM_CONF" softhsm2-util --init-token --free --label "$TOKEN_LABEL" \
      --so-pin "$(cat "$SO_PIN_FILE")" --pin "$(cat "$USER_PIN_FILE")" >/dev/null \
      || die "could not initialise the SoftHSM2 token $TOKEN_LABEL"
    log "token $TOKEN_LABEL initialised in $TOKEN_DIR"
  fi
}

env_lines() {
  echo "SOFTHSM2_CONF=$SOFTHSM_CONF"
  echo "PKCS11_LIBRARY=$(library)"
  echo "PKCS11_TOKEN_LABEL=$TOKEN_LABEL"
  echo "PKCS11_PIN_FILE=$USER_PIN_FILE"
}

case "${1:-}" in
  up) up ;;
  down) log "nothing to stop (SoftHSM2 is a library; the token stays in $TOKEN_DIR)" ;;
  status) token_initialised && pkcs11js_loads || exit 3 ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
