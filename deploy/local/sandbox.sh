#!/usr/bin/env bash
# The sandbox-orchestrator's local isolation runtime: crun (an OCI runtime from Debian)
# and what it needs from the host.
#
#   sandbox.sh up       install crun, python3-seccomp and nftables (Debian) when missing; check user namespaces and the
#                       cgroup v1 controllers cpu, cpuacct, memory and pids; when the cgroup
#                       v2 hierarchy (/sys/fs/cgroup/unified) holds a controller that no v1
#                       hierarchy has (hugetlb on these machines), mount it as v1 so that
#                       crun does not refuse "hybrid mode"; create the run directory
#   sandbox.sh down     nothing runs: sandboxes belong to the orchestrator (it removes its own)
#   sandbox.sh status   exit 0 when crun runs and the cgroups are usable, else 3
#   sandbox.sh env      KEY=VALUE lines for .palisade/env
#
# Sandboxes are built from host directories mounted read-only (/usr, /etc/ssl/certs,
# /etc/alternatives) and a generated /etc: nothing is downloaded.
set -euo pipefail
PALISADE_COMPONENT=sandbox
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CGROUP_ROOT=/sys/fs/cgroup
SANDBOX_RUN_DIR="${SANDBOX_RUN_DIR:-/run/palisade-sandbox}"

crun_path() { command -v crun 2>/dev/null || { [ -x /usr/bin/crun ] && echo /usr/bin/crun; }; }

# Controllers whose folder under /sys/fs/cgroup is there but not mounted (crun would write into the bare folder).
unmounted_controllers() {
  local controller
  for controller in $(awk 'NR > 1 && $4 == 1 { print $1 }' /proc/cgroups); do
    [ -d "$CGROUP_ROOT/$controller" ] && ! mountpoint -q "$CGROUP_ROOT/$controller" && echo "$controller"
  done
  return 0
}

cgroups_usable() {
  local controller
  for controller in cpu cpuacct memory pids; do
    [ -f "$CGROUP_ROOT/$controller/cgroup.procs" ] || return 1
  done
  [ -z "$(unmounted_controllers)" ] || return 1
  # cgroup files report size 0: -s cannot tell an empty one
  ! [ -f "$CGROUP_ROOT/unified/cgroup.controllers" ] || [ -z "$(tr -d ' \n' <"$CGROUP_ROOT/unified/cgroup.controllers")" ]
}

# Controllers still bound to the v2 hierarchy get a v1 hierarchy of their own (they are
# unused there: nothing enables them in cgroup.subtree_control).
release_v2_controllers() {
  local file="$CGROUP_ROOT/unified/cgroup.controllers" controller
  [ -f "$file" ] || return 0
  for controller in $(cat "$file") $(unmounted_controllers); do
    [ -n "$(tr -d ' \n' <"$CGROUP_ROOT/unified/cgroup.subtree_control" 2>/dev/null)" ] && die "cgroup v2 enables controllers ($(cat "$CGROUP_ROOT/unified/cgroup.subtree_control")): crun cannot run in hybrid mode here"
    mkdir -p "$CGROUP_ROOT/$controller"
    # a bare folder (not mounted) may hold what a runtime wrote there: emptied before the mount
    mountpoint -q "$CGROUP_ROOT/$controller" || find "$CGROUP_ROOT/$controller" -mindepth 1 -delete
    mountpoint -q "$CGROUP_ROOT/$controller" || mount -t cgroup -o "$controller" cgroup "$CGROUP_ROOT/$controller" \
      || die "could not mount the $controller cgroup v1 hierarchy (needs root)"
    log "mounted the $controller controller as a cgroup v1 hierarchy (it was bound to the empty v2 one, or its folder was bare)"
  done
}

up() {
  [ -n "$(crun_path)" ] || ensure_debian_packages crun
  # libseccomp's Python binding: the orchestrator compiles its seccomp profile once at start
  /usr/bin/python3 -c 'import seccomp' 2>/dev/null || ensure_debian_packages python3 python3-seccomp
  # the sandbox network: a namespace per sandbox whose only way out is the egress proxy (veth + nftables)
  command -v ip >/dev/null 2>&1 || ensure_debian_packages iproute2
  command -v nft >/dev/null 2>&1 || ensure_debian_packages nftables
  [ -n "$(crun_path)" ] || die "crun is installed but not found"
  [ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)" -gt 0 ] || die "user namespaces are disabled (user.max_user_namespaces = 0)"
  for controller in cpu cpuacct memory pids; do
    [ -f "$CGROUP_ROOT/$controller/cgroup.procs" ] || die "the cgroup v1 controller $controller is not mounted at $CGROUP_ROOT/$controller"
  done
  cgroups_usable || release_v2_controllers
  cgroups_usable || die "cgroups are not usable by crun (see $CGROUP_ROOT)"
  mkdir -p "$SANDBOX_RUN_DIR"
  chmod 755 "$SANDBOX_RUN_DIR"
}

status() {
  [ -n "$(crun_path)" ] && "$(crun_path)" --version >/dev/null 2>&1 && /usr/bin/python3 -c 'import seccomp' 2>/dev/null && command -v nft >/dev/null 2>&1 && cgroups_usable
}

env_lines() {
  echo "SANDBOX_CRUN=$(crun_path)"
  echo "SANDBOX_RUN_DIR=$SANDBOX_RUN_DIR"
}

case "${1:-}" in
  up) up ;;
  down) log "nothing to stop (each orchestrator removes its own sandboxes)" ;;
  status) status || exit 3 ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
