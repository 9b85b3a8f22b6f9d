import { kafkajsEncoder } from './encoder-growth';

// kafkajs' own record and record batch encoding, with the encoder as patched on import of encoder-growth.
/* eslint-disable @typescript-eslint/no-require-imports */
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: (batch: object) => Promise<{ buffer: Buffer }> };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: object) => unknown;
/* eslint-enable @typescript-eslint/no-require-imports */

describe('kafkajs encoder grown without zeroing', () => {
  const records = Array.from({ length: 50 }, (_, i) => ({
    offsetDelta: i,
    timestampDelta: 0,
    key: Buffer.from(`tenant-${i % 7}`),
    value: Buffer.from(JSON.stringify({ seq: i + 1, event: { id: `e-${i}`, data: 'x'.repeat(i * 37) } })),
    headers: {},
  }));
  const batch = () => ({ transactional: true, firstTimestamp: 1733365200000, maxTimestamp: 1733365200000, lastOffsetDelta: records.length - 1, producerId: 7, producerEpoch: 1, firstSequence: 0, records: records.map(Record) });

  it('is the method kafkajs calls', () => {
    const Encoder = kafkajsEncoder()!;
    expect(Encoder.prototype.ensureAvailable.name).toBe('ensureAvailable');
    expect(Encoder.prototype.ensureAvailable.toString()).toContain('allocUnsafe');
  });

  it('encodes the same bytes as a zero-filled encoder, whatever the pool held', async () => {
    const Encoder = kafkajsEncoder()!;
    const patched = Encoder.prototype.ensureAvailable;
    // Leave garbage in the pool that allocUnsafe hands out.
    for (let i = 0; i < 64; i++) Buffer.allocUnsafe(1000).fill(0xa5);
    const fast = (await RecordBatch(batch())).buffer;
    Encoder.prototype.ensureAvailable = function (this: { buf: Buffer; offset: number }, length: number) {
      if (this.offset + length > this.buf.length) {
        const grown = Buffer.alloc(Encoder.nextPowerOfTwo(this.offset + length));
        this.buf.copy(grown, 0, 0, this.offset);
        this.buf = grown;
      }
    };
    try {
      const zeroed = (await RecordBatch(batch())).buffer;
      expect(fast.equals(zeroed)).toBe(true);
    } finally {
      Encoder.prototype.ensureAvailable = patched;
    }
  });
});
