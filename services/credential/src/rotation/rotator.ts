import { randomBytes } from 'node:crypto';
import { PalisadeError } from '@palisade/contracts';

/**
 * Produces a new value for a secret at its source (e.g. asks Gerrit for a new HTTP
 * password, creates a new cloud access key), so rotation needs no person. Rotators are
 * plugged in by name; a secret names its rotator when rotated.
 */
export interface SecretRotator {
  readonly name: string;
  /** The new value; `current` is the value in use (to authenticate at the source). */
  rotate(request: { tenantId: string; secretId: string; name: string; current: Buffer }): Promise<Buffer>;
}

/** Built in: a new random token (for credentials the platform itself issues to a peer). */
export class RandomTokenRotator implements SecretRotator {
  readonly name = 'random';
  constructor(private readonly bytes = 32) {}

  async rotate(): Promise<Buffer> {
    return Buffer.from(randomBytes(this.bytes).toString('base64url'), 'utf8');
  }
}

export class RotatorRegistry {
  private readonly byName = new Map<string, SecretRotator>();

  constructor(rotators: readonly SecretRotator[]) {
    for (const r of rotators) this.byName.set(r.name, r);
  }

  get(name: string): SecretRotator {
    const rotator = this.byName.get(name);
    if (!rotator) throw new PalisadeError('validation', `rotator: unknown rotator ${name} (known: ${[...this.byName.keys()].join(', ') || 'none'})`);
    return rotator;
  }
}
