import type { Jwks } from '@palisade/audit-log';
import type { Principal } from '@palisade/contracts';
import type { AuditEvents } from '../audit.events';
import type { SigningKeys } from './signing-keys';

/** The checkpoint keys as the API shows them: the public JWKS, and rotation (audited). */
export class KeysService {
  constructor(
    private readonly signing: Pick<SigningKeys, 'jwks' | 'rotate'>,
    private readonly events: Pick<AuditEvents, 'record'>,
  ) {}

  jwks(): Promise<Jwks> {
    return this.signing.jwks();
  }

  /** A new active key; the previous one is retired (still published). */
  async rotate(principal: Principal): Promise<{ kid: string; retired: string | null }> {
    const rotated = await this.signing.rotate();
    await this.events.record(principal, 'audit.signing_key.rotated', { kid: rotated.kid, retired: rotated.retired });
    return rotated;
  }
}
