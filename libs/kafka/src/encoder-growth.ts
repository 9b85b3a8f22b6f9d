/**
 * kafkajs 2.2.4 grows its request encoder with `Buffer.alloc` (a zeroed buffer of its own
 * per growth: two or more per record of the audit writer's batches, 2.2 % of its thread in
 * the drain profile, issue 17, plus the garbage). The encoder writes its bytes in order
 * and hands out only those written (`buffer`: `buf.slice(0, offset)`), so the zeroing buys
 * nothing: this grows it with `Buffer.allocUnsafe` (pooled below 4 kB). kafkajs has had no
 * release since 2023; the method patched is the one its own code calls.
 */
interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
  ensureAvailable(length: number): void;
}

type EncoderClass = { prototype: KafkajsEncoder; nextPowerOfTwo(value: number): number };

export function growWithoutZeroing(Encoder: EncoderClass): void {
  Encoder.prototype.ensureAvailable = function ensureAvailable(this: KafkajsEncoder, length: number): void {
    if (this.offset + length > this.buf.length) {
      const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
      this.buf.copy(grown, 0, 0, this.offset);
      this.buf = grown;
    }
  };
}

/** kafkajs' encoder class, when this kafkajs has it where 2.2.4 does. */
export function kafkajsEncoder(): EncoderClass | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Encoder = require('kafkajs/src/protocol/encoder') as EncoderClass;
    return typeof Encoder?.prototype?.ensureAvailable === 'function' && typeof Encoder.nextPowerOfTwo === 'function' ? Encoder : undefined;
  } catch {
    return undefined;
  }
}

const Encoder = kafkajsEncoder();
if (Encoder) growWithoutZeroing(Encoder);
