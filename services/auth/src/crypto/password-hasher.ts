import { argon2, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * argon2id parameters. Defaults: OWASP Password Storage Cheat Sheet (2024/2025),
 * first recommended configuration: m = 19 MiB, t = 2, p = 1.
 */
export interface Argon2Parameters {
  /** Memory in KiB. */
  memoryKiB: number;
  passes: number;
  parallelism: number;
}

export const OWASP_ARGON2ID: Argon2Parameters = { memoryKiB: 19456, passes: 2, parallelism: 1 };

const TAG_LENGTH = 32;
const SALT_LENGTH = 16;
/** Longest password hashed: bounds the work a request can cause. */
export const MAX_PASSWORD_BYTES = 1024;
const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

function derive(password: string, salt: Buffer, p: Argon2Parameters): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    argon2(
      'argon2id',
      { message: password, nonce: salt, parallelism: p.parallelism, tagLength: TAG_LENGTH, memory: p.memoryKiB, passes: p.passes },
      (error, key) => (error ? reject(error) : resolve(key)),
    ),
  );
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

/**
 * Password hashing with argon2id from node:crypto (Node 24), stored in the PHC string
 * format (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) so parameters can be raised later:
 * `needsRehash` tells when a stored hash uses weaker ones.
 */
export class PasswordHasher {
  /** A hash of a random password, verified against when an account does not exist, so both take the same time. */
  private readonly decoy: Promise<string>;

  constructor(readonly parameters: Argon2Parameters = OWASP_ARGON2ID) {
    this.decoy = this.hash(randomBytes(24).toString('base64'));
    this.decoy.catch(() => undefined);
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_LENGTH);
    const p = this.parameters;
    const tag = await derive(password, salt, p);
    return `$argon2id$v=19$m=${p.memoryKiB},t=${p.passes},p=${p.parallelism}$${b64(salt)}$${b64(tag)}`;
  }

  /** Constant-time check of a password against a PHC string; false for a malformed one. */
  async verify(password: string, phc: string): Promise<boolean> {
    const m = PHC.exec(phc);
    if (!m) return false;
    const params = { memoryKiB: Number(m[1]), passes: Number(m[2]), parallelism: Number(m[3]) };
    const expected = Buffer.from(m[5], 'base64');
    const actual = await derive(password, Buffer.from(m[4], 'base64'), params);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  /** Spend the time of one verification without an account: timing does not reveal existence. */
  async verifyDecoy(password: string): Promise<false> {
    await this.verify(password, await this.decoy);
    return false;
  }

  needsRehash(phc: string): boolean {
    const m = PHC.exec(phc);
    if (!m) return true;
    const p = this.parameters;
    return Number(m[1]) < p.memoryKiB || Number(m[2]) < p.passes || Number(m[3]) < p.parallelism;
  }
}
