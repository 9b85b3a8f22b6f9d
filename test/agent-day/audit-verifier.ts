import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';

/**
 * An audit log verifier written from /work/shared/design/audit-log-format.md alone, as an
 * auditor's own tool would be: node:crypto and kafkajs, nothing of the audit service or
 * libs/audit-log. It reads the whole record topic and the checkpoint topic as they are in
 * Kafka (read_committed) and checks what the format says a verifier rejects.
 */

export interface RawRecord {
  partition: number;
  offset: string;
  /** The record value exactly as it is in Kafka. */
  value: string;
}

export interface IndependentVerdict {
  ok: boolean;
  failures: string[];
  records: number;
  checkpoints: number;
  partitions: Record<number, { records: number; lastSeq: number; lastHash: string; sealedSeq: number }>;
  /** Records after the last verified checkpoint of their partition (they link, no signature seals them yet). */
  unsealed: number;
}

/** RFC 8785 (JCS): members sorted by UTF-16 code units, ECMAScript number and string forms, no whitespace. */
export function jcs(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('JCS: non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(jcs).join(',')}]`;
  const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined);
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)); // string comparison in JS is by UTF-16 code units
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Reads every partition of `topics` from the earliest offset to the current end (committed transactions only). */
export async function readTopics(options: { brokers: string; tlsDir: string; topics: string[]; clientId?: string }): Promise<Record<string, RawRecord[]>> {
  const file = (name: string) => readFileSync(join(options.tlsDir, name), 'utf8');
  const kafka = new Kafka({
    clientId: options.clientId ?? 'independent-audit-verifier',
    brokers: options.brokers.split(','),
    ssl: { ca: [file('ca.pem')], cert: file('cert.pem'), key: file('key.pem'), minVersion: 'TLSv1.3' },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const out: Record<string, RawRecord[]> = Object.fromEntries(options.topics.map((t) => [t, []]));
  const ends = new Map<string, bigint>();
  try {
    // the last topic's ends first: checkpoints (committed with their records) then never seal a record beyond what is read
    for (const topic of [...options.topics].reverse()) {
      for (const o of await admin.fetchTopicOffsets(topic)) if (BigInt(o.high) > BigInt(o.low)) ends.set(`${topic}/${o.partition}`, BigInt(o.high));
    }
  } finally {
    await admin.disconnect();
  }
  if (ends.size === 0) return out;
  const consumer = kafka.consumer({ groupId: `palisade-audit-independent-${process.pid}-${Date.now()}`, readUncommitted: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: options.topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch, resolveOffset }) => {
            const key = `${batch.topic}/${batch.partition}`;
            const end = ends.get(key);
            for (const m of batch.messages) {
              // only what the snapshot of the end offsets holds
              if (m.value && end !== undefined && BigInt(m.offset) < end) out[batch.topic].push({ partition: batch.partition, offset: m.offset, value: m.value.toString('utf8') });
              resolveOffset(m.offset);
            }
            // the end offset counts transaction markers too: the batch's last offset (markers included) says where the partition is
            if (ends.has(key) && BigInt(batch.lastOffset()) + 1n >= ends.get(key)!) ends.delete(key);
            if (ends.size === 0) resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  for (const topic of options.topics) out[topic].sort((a, b) => a.partition - b.partition || (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
  return out;
}

/** Whether every record of `tenantId` is sealed by a verified checkpoint (records after a partition's last checkpoint link, but no signature vouches for them yet). */
export function tenantSealed(records: RawRecord[], verdict: IndependentVerdict, tenantId: string): boolean {
  const last = new Map<number, number>();
  for (const r of records) {
    const record = JSON.parse(r.value) as { seq: number; event: { tenantId: string } };
    if (record.event.tenantId === tenantId) last.set(r.partition, Math.max(last.get(r.partition) ?? 0, record.seq));
  }
  return last.size > 0 && [...last].every(([partition, seq]) => (verdict.partitions[partition]?.sealedSeq ?? 0) >= seq);
}

/** Verifies records and checkpoints (as read by `readTopics`) with the published JWKS. */
export function verifyAuditLog(records: RawRecord[], checkpoints: RawRecord[], jwks: { keys: Array<Record<string, unknown>> }): IndependentVerdict {
  const failures: string[] = [];
  const partitions: IndependentVerdict['partitions'] = {};
  const hashAt = new Map<string, string>(); // `${partition}/${seq}` → hash
  const ids = new Set<string>();
  const MEMBERS = ['event', 'hash', 'partition', 'prev', 'recordedAt', 'seq', 'v'];
  for (const raw of records) {
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(raw.value);
    } catch {
      failures.push(`partition ${raw.partition} offset ${raw.offset}: not JSON`);
      continue;
    }
    const where = `partition ${raw.partition} seq ${String(r.seq)}`;
    if (Object.keys(r).sort().join() !== MEMBERS.join()) failures.push(`${where}: members ${Object.keys(r).sort().join()}`);
    if (r.v !== 1) failures.push(`${where}: v ${String(r.v)}`);
    if (r.partition !== raw.partition) failures.push(`${where}: names partition ${String(r.partition)}`);
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(String(r.recordedAt))) failures.push(`${where}: recordedAt ${String(r.recordedAt)}`);
    const { hash, ...body } = r;
    if (sha256(jcs(body)) !== hash) failures.push(`${where}: hash does not match the content`);
    const p = (partitions[raw.partition] ??= { records: 0, lastSeq: 0, lastHash: '', sealedSeq: 0 });
    // the first record still held anchors the chain (retention deletes the oldest); after it, no gaps
    if (p.records === 0 && r.seq === 1 && r.prev !== '0'.repeat(64)) failures.push(`${where}: seq 1 with prev ${String(r.prev)}`);
    if (p.records > 0) {
      if (r.seq !== p.lastSeq + 1) failures.push(`${where}: seq after ${p.lastSeq}`);
      if (r.prev !== p.lastHash) failures.push(`${where}: prev is not the previous record's hash`);
    }
    const event = r.event as { id?: string } | undefined;
    if (!event?.id) failures.push(`${where}: event without id`);
    else if (ids.has(event.id)) failures.push(`${where}: event ${event.id} seen twice`);
    else ids.add(event.id);
    p.records++;
    p.lastSeq = Number(r.seq);
    p.lastHash = String(hash);
    hashAt.set(`${raw.partition}/${p.lastSeq}`, p.lastHash);
  }
  const keys = new Map(jwks.keys.filter((k) => k.kty === 'OKP' && k.crv === 'Ed25519').map((k) => [String(k.kid), createPublicKey({ key: k as never, format: 'jwk' })]));
  let verifiedCheckpoints = 0;
  for (const raw of checkpoints) {
    const c = JSON.parse(raw.value) as { v: number; partition: number; seq: number; hash: string; at: string; keyId: string; sig: string };
    const where = `checkpoint of partition ${c.partition} seq ${c.seq}`;
    const { sig, ...signed } = c;
    const key = keys.get(c.keyId);
    if (!key) {
      failures.push(`${where}: unknown key ${c.keyId}`);
      continue;
    }
    if (!verifySignature(null, Buffer.from(jcs(signed), 'utf8'), key, Buffer.from(sig, 'base64url'))) failures.push(`${where}: bad signature`);
    const p = partitions[c.partition];
    if (!p || c.seq > p.lastSeq) {
      failures.push(`${where}: seals a record beyond the last one (the tail was cut)`);
      continue;
    }
    const recorded = hashAt.get(`${c.partition}/${c.seq}`);
    // a checkpoint of a record retention already deleted cannot be compared; one we hold must match
    if (recorded !== undefined && recorded !== c.hash) failures.push(`${where}: hash differs from the record's`);
    if (recorded !== undefined) p.sealedSeq = Math.max(p.sealedSeq, c.seq);
    verifiedCheckpoints++;
  }
  const unsealed = Object.values(partitions).reduce((n, p) => n + (p.lastSeq - p.sealedSeq), 0);
  return { ok: failures.length === 0, failures, records: records.length, checkpoints: verifiedCheckpoints, partitions, unsealed };
}
