import { kafkajsModulePath, replaceKafkajsModule } from './kafkajs-module';

/**
 * CRC-32C (Castagnoli), as Kafka's record batches carry it, eight bytes at a time
 * ("slicing by 8"). kafkajs 2.2.4 computes it a byte at a time in JavaScript over every
 * record batch it sends: 2.4-3.2 % of the audit service's thread in the drain profile
 * (issue 17); kafkajs takes this one instead (see kafkajs-module.ts).
 */
export function crc32c(buffer: Uint8Array): number {
  let crc = -1;
  let i = 0;
  const n = buffer.length;
  for (const end = n - (n & 7); i < end; i += 8) {
    const low = crc ^ (buffer[i] | (buffer[i + 1] << 8) | (buffer[i + 2] << 16) | (buffer[i + 3] << 24));
    crc =
      T[7 * 256 + (low & 0xff)] ^
      T[6 * 256 + ((low >>> 8) & 0xff)] ^
      T[5 * 256 + ((low >>> 16) & 0xff)] ^
      T[4 * 256 + (low >>> 24)] ^
      T[3 * 256 + buffer[i + 4]] ^
      T[2 * 256 + buffer[i + 5]] ^
      T[256 + buffer[i + 6]] ^
      T[buffer[i + 7]];
  }
  for (; i < n; i++) crc = T[(crc ^ buffer[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** T[k * 256 + b]: the CRC of byte b followed by k zero bytes (reflected polynomial 0x82f63b78). */
const T = (() => {
  const t = new Int32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[b] = c;
  }
  for (let b = 0; b < 256; b++) for (let k = 1; k < 8; k++) t[k * 256 + b] = t[(t[(k - 1) * 256 + b] & 0xff)] ^ (t[(k - 1) * 256 + b] >>> 8);
  return t;
})();

/** Where kafkajs keeps its byte-at-a-time CRC-32C. */
export const kafkajsCrc32cPath = (): string | undefined => kafkajsModulePath(CRC32C);

const CRC32C = 'src/protocol/recordBatch/crc32C/crc32C';
replaceKafkajsModule(CRC32C, crc32c);
