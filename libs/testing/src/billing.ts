import { connectNats, serveRpc } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { infra } from './infra';

/** What a billing stand-in was asked, by kind. */
export interface BillingStandInCounts {
  /** Reservations of one request (no `minAmountMicros`). */
  reserves: number;
  /** Allotments (a reserve with `minAmountMicros`, granted whole). */
  allotments: number;
  settles: number;
  /** Settles naming an allotment. */
  drawn: number;
  releases: number;
}

export interface BillingStandIn {
  readonly counts: BillingStandInCounts;
  stop(): Promise<void>;
}

/**
 * Answers billing's ledger requests as billing would with no limit (its certificate, its
 * queue group, the subjects of this process's PALISADE_RPC_NAMESPACE): every reserve held
 * (an allotment granted whole, for its ttl), every settle and release accepted, each
 * counted; for suites and benchmarks that start the router without billing.
 */
export async function startBillingStandIn(name: string): Promise<BillingStandIn> {
  const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'billing' });
  const nc = await connectNats({ servers: infra('NATS_URL'), identity, name });
  const counts: BillingStandInCounts = { reserves: 0, allotments: 0, settles: 0, drawn: 0, releases: 0 };
  const server = serveRpc(nc, {
    service: 'billing',
    handlers: {
      'palisade.rpc.billing.reserve': (p) => {
        const r = p as { requestId: string; amountMicros: string; minAmountMicros?: string; ttlMs?: number };
        if (r.minAmountMicros === undefined) counts.reserves++;
        else counts.allotments++;
        return { status: 'reserved', requestId: r.requestId, amountMicros: r.amountMicros, expiresAt: new Date(Date.now() + (r.ttlMs ?? 60_000)).toISOString() };
      },
      'palisade.rpc.billing.settle': (p) => {
        const s = p as { requestId: string; actualMicros: string; allotmentId?: string };
        counts.settles++;
        if (s.allotmentId) counts.drawn++;
        return { status: 'settled', requestId: s.requestId, postedMicros: s.actualMicros, overrunMicros: '0', releasedMicros: '0', late: false };
      },
      'palisade.rpc.billing.release': (p) => {
        counts.releases++;
        return { status: 'released', requestId: (p as { requestId: string }).requestId, releasedMicros: '0' };
      },
    },
  });
  await nc.flush();
  return {
    counts,
    async stop() {
      await server.stop();
      await nc.close();
      identity.stop();
    },
  };
}
