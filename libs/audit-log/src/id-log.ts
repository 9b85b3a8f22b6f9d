import { doubled } from './doubled';

/**
 * The event ids one verifying thread saw, for the check across threads (each thread's
 * ChainVerifier checks its own): a 52-bit hash of each, sorted at the end — equal ids have
 * equal hashes, so ids can repeat across threads only where hashes meet — and the
 * partition of each, so that for that rare case the ids (which the verifier keeps, in the
 * order verified) can be given by partition in seq order. Used by the verification workers
 * (parallel.ts) and by a calling thread that verifies a share itself.
 */
export class IdLog {
  private hashes = new Float64Array(1 << 14);
  private partitions = new Int32Array(1 << 14);
  private count = 0;

  /** A ChainVerifier's `onRecord`. */
  readonly onRecord = (partition: number, id: string): void => {
    if (this.count === this.hashes.length) {
      this.hashes = doubled(this.hashes);
      this.partitions = doubled(this.partitions);
    }
    this.partitions[this.count] = partition;
    this.hashes[this.count++] = idHash(id);
  };

  /** The hashes of the ids seen, ascending (the log's own array, sorted: call once, at the end). */
  sortedHashes(): Float64Array<ArrayBuffer> {
    return this.hashes.subarray(0, this.count).sort();
  }

  /** JSON of { partition: ids in seq order }, from the verifier's ids in the order verified (`ChainVerifier.verifiedEventIds`). */
  idsJson(ids: Iterable<string>): string {
    const byPartition: Record<number, string[]> = {};
    let i = 0;
    for (const id of ids) (byPartition[this.partitions[i++]] ??= []).push(id);
    return JSON.stringify(byPartition);
  }
}

/** FNV-1a and a multiply-xorshift over the UTF-16 units, 32 + 20 bits: exact when no two ids are equal, rarely equal otherwise. */
export function idHash(id: string): number {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0) * 1048576 + (b >>> 12);
}
