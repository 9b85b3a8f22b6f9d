#!/usr/bin/env bash
# Stops what deploy/local/up.sh started: NATS and Kafka. The PostgreSQL server is the
# machine's, shared, and stays up (postgres.sh down --purge drops Palisade's databases
# and roles). Data, certificates and .palisade/env stay; up.sh starts again from them.
set -euo pipefail
PALISADE_COMPONENT=down
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$PALISADE_REPO/deploy/local"
status=0
"$HERE/kafka.sh" down || status=1
"$HERE/ldap.sh" down || status=1
"$HERE/rsyslog.sh" down || status=1
if [ -x "$HERE/nats.sh" ]; then "$HERE/nats.sh" down || status=1; fi
"$HERE/postgres.sh" down || status=1
exit "$status"
