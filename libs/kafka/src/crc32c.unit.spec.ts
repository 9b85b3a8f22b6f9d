import { randomBytes } from 'node:crypto';
import { crc32c as loaded, kafkajsCrc32cPath } from './crc32c';

describe('crc32c (@node-rs/crc32)', () => {
  // kafkajs' own, a byte at a time, loaded from its file (jest's module registry does not see the cache entry).
  const kafkajs = jest.requireActual(kafkajsCrc32cPath()!) as (buffer: Buffer) => number;
  // the binding loads on this machine (the test fails if it did not)
  const crc32c = loaded!;
  it('has the native binding here', () => expect(loaded).toBeDefined());

  it('gives the check value of CRC-32C', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it("agrees with kafkajs' own on every length up to 80 bytes and on a batch-sized buffer", () => {
    for (let length = 0; length <= 80; length++) {
      const b = randomBytes(length);
      expect(crc32c(b)).toBe(kafkajs(b));
    }
    const big = randomBytes(1_100_003);
    expect(crc32c(big)).toBe(kafkajs(big));
    // A view into a larger buffer, as kafkajs passes its encoder's slice.
    const view = big.subarray(13, 10_013);
    expect(crc32c(view)).toBe(kafkajs(view));
  });
});
