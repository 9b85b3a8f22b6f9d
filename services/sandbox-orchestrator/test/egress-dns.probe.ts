import type { EgressDecision } from '../src/egress/egress.audit';

/**
 * For tests that drive sandboxes through the API (e.g. the agent day, issue 16): python
 * that resolves a name inside the sandbox through its resolver and prints one line,
 * `resolved <addresses>` or `failed <errno>` (-2: NXDOMAIN, the answer for any name the
 * sandbox's egress rules do not allow).
 */
export function dnsProbeCode(name: string): string {
  return [
    'import socket',
    'try:',
    `    print('resolved', ' '.join(sorted({a[4][0] for a in socket.getaddrinfo(${JSON.stringify(name)}, 443, socket.AF_INET)})))`,
    'except OSError as e:',
    "    print('failed', e.errno)",
  ].join('\n');
}

/**
 * Whether the refused lookup of `name` is among the recorded decisions: pass the `data`
 * of `sandbox-orchestrator.egress.decisions_recorded` events (from the audit service or
 * the event store) or the proxy's batches.
 */
export function refusedLookupRecorded(recorded: ReadonlyArray<{ decisions?: readonly EgressDecision[] } | undefined>, name: string): boolean {
  return recorded.some((r) => r?.decisions?.some((d) => d.stage === 'dns' && d.outcome === 'denied' && d.host === name) ?? false);
}
