import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { kafkajsModulePath, replaceKafkajsModule } from './kafkajs-module';

/**
 * CRC-32C (Castagnoli), as Kafka's record batches carry it, from `@node-rs/crc32` (the
 * CPU's CRC32 instruction). kafkajs 2.2.4 computes it a byte at a time in JavaScript over
 * every record batch it sends: 2.4-3.2 % of the audit service's thread in the drain
 * profile (issue 17); kafkajs takes this one instead (see kafkajs-module.ts).
 */
export function crc32c(buffer: Buffer): number {
  return nativeCrc32c(buffer) >>> 0;
}

/** Where kafkajs keeps its byte-at-a-time CRC-32C. */
export const kafkajsCrc32cPath = (): string | undefined => kafkajsModulePath(CRC32C);

const CRC32C = 'src/protocol/recordBatch/crc32C/crc32C';
replaceKafkajsModule(CRC32C, crc32c);
