import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ChainVerifier, isCheckpointLike, type ChainVerifierOptions, type VerificationResult } from './verifier';

async function* lines(path: string): AsyncGenerator<{ line: string; number: number }> {
  const reader = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let number = 0;
  for await (const line of reader) {
    number++;
    if (line.trim().length > 0) yield { line, number };
  }
}

/**
 * Verify an NDJSON export (one record or checkpoint per line, as `GET
 * /v1/audit/events?format=ndjson` and `palisade audit export` write them): a first
 * pass reads the checkpoints, a second the records in file order.
 */
export async function verifyNdjsonFile(path: string, options: ChainVerifierOptions): Promise<VerificationResult> {
  const verifier = new ChainVerifier(options);
  const malformed = (number: number): VerificationResult => ({
    ...verifier.finish(),
    ok: false,
    failure: { reason: 'malformed', partition: null, seq: null, message: `line ${number} is not JSON` },
  });
  for await (const { line, number } of lines(path)) {
    if (!line.includes('"sig"')) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return malformed(number);
    }
    if (isCheckpointLike(value) && !verifier.addCheckpoint(value)) return verifier.finish();
  }
  for await (const { line, number } of lines(path)) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return malformed(number);
    }
    if (isCheckpointLike(value)) continue;
    if (!verifier.addRecord(value)) return verifier.finish();
  }
  return verifier.finish();
}
