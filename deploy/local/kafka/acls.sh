#!/usr/bin/env bash
# The ACLs of the Palisade Kafka cluster: the one list, applied by deploy/local/kafka.sh
# (with kafka.admin.AclCommand from the local jars) and by the docker-compose
# `kafka-init` job (with the image's kafka-acls.sh). Adding an ACL that exists is a
# no-op, so this may run again. Why these ACLs: README.md beside this file.
#
#   acls.sh <kafka-acls command with --bootstrap-server and --command-config ...>
#
# Principals come from the client certificate (ssl.principal.mapping.rules in the
# broker config): a service certificate of the dev PKI is User:<service>.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: acls.sh <kafka-acls command...>" >&2; exit 2; }

# The audit service: creates, writes and reads its topics (palisade.audit.v1,
# palisade.audit.checkpoints.v1, ...), consumes in its groups and writes in
# transactions; --producer also covers the idempotent producer (Write on a topic).
"$@" --add --allow-principal User:audit \
  --producer --consumer \
  --topic palisade.audit. --group palisade-audit --transactional-id palisade-audit \
  --resource-pattern-type prefixed

# Write-once: nobody (super users aside, which ACLs do not bind) deletes audit topics
# or their records, alters their configs (retention, cleanup policy) or adds
# partitions (that would move tenants between hash chains). DENY beats every ALLOW.
"$@" --add --deny-principal 'User:*' \
  --operation Delete --operation Alter --operation AlterConfigs \
  --topic palisade.audit. --resource-pattern-type prefixed
