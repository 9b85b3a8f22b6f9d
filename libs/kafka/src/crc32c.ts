import { kafkajsModulePath, replaceKafkajsModule } from './kafkajs-module';

/**
 * CRC-32C (Castagnoli), as Kafka's record batches carry it, from `@node-rs/crc32` (the
 * CPU's CRC32 instruction). kafkajs 2.2.4 computes it a byte at a time in JavaScript over
 * every record batch it sends: 2.4-3.2 % of the audit service's thread in the drain
 * profile (issue 17); kafkajs takes this one instead (see kafkajs-module.ts). Where the
 * native binding does not load (an architecture or libc without a build), kafkajs keeps
 * its own: slower, not different, and no service fails to start for it.
 */
export const crc32c: ((buffer: Buffer) => number) | undefined = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = (require('@node-rs/crc32') as typeof import('@node-rs/crc32')).crc32c;
    return (buffer: Buffer) => native(buffer) >>> 0;
  } catch {
    return undefined;
  }
})();

/** Where kafkajs keeps its byte-at-a-time CRC-32C. */
export const kafkajsCrc32cPath = (): string | undefined => kafkajsModulePath(CRC32C);

const CRC32C = 'src/protocol/recordBatch/crc32C/crc32C';
if (crc32c) replaceKafkajsModule(CRC32C, crc32c);
