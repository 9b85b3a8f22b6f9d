# Shared by the deploy/local scripts (sourced, not run). Sets the repository root and
# the git-ignored state folder .palisade/, where everything generated lives: keys and
# certificates, data, logs, pids, downloaded jars.
PALISADE_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PALISADE_HOME="${PALISADE_HOME:-$PALISADE_REPO/.palisade}"
mkdir -p "$PALISADE_HOME"
PALISADE_HOME="$(cd "$PALISADE_HOME" && pwd)"
PALISADE_PKI_DIR="${PALISADE_PKI_DIR:-$PALISADE_HOME/pki}"
PALISADE_RUN="$PALISADE_HOME/run"
PALISADE_LOGS="$PALISADE_HOME/logs"
PALISADE_CACHE="$PALISADE_HOME/cache"

log() { echo "$PALISADE_COMPONENT: $*" >&2; }
die() { echo "$PALISADE_COMPONENT: error: $*" >&2; exit 1; }

# The repository's Node (24, from node_modules) rather than the machine's.
palisade_node() {
  if [ -x "$PALISADE_REPO/node_modules/.bin/node" ]; then
    "$PALISADE_REPO/node_modules/.bin/node" "$@"
  else
    node "$@"
  fi
}

# Installs Debian packages that are missing (root on the dev machine; sudo elsewhere).
APT_UPDATED=""
ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then
    $sudo apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "could not install ${missing[*]}"
}

# True when the process of the pid file is alive.
pid_alive() {
  local pidfile="$1" pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# `down` of a daemon script: stops the process of a pid file and says what it did.
stop_daemon() {
  local pidfile="$1" name="$2" grace="${3:-15}" pid
  if pid_alive "$pidfile"; then
    pid="$(cat "$pidfile")"
    stop_pidfile "$pidfile" "$grace" || true
    log "stopped $name (pid $pid)"
  else
    log "not running"
  fi
}

# Stops the process of a pid file: TERM, then KILL after a grace period.
stop_pidfile() {
  local pidfile="$1" grace="${2:-30}" pid i
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return 1; fi
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    sleep 0.1
  done
  log "pid $pid still running after ${grace}s, killing it"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# Frees a loopback port held by a Palisade server of another checkout (its command
# line names another .palisade/ folder): two checkouts cannot share the fixed ports,
# so the one starting now takes them over. Anything else on the port is left alone,
# and the caller fails with a message naming the port.
evict_other_checkout() {
  local port="$1" pid cmd
  for pid in $(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
    case "$cmd" in
      *"$PALISADE_HOME/"*) ;; # ours
      */.palisade/*)
        log "port $port is held by the Palisade server of another checkout (pid $pid); stopping it"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        ;;
    esac
  done
}
