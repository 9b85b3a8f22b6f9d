import type { Actor, Principal } from '@palisade/contracts';
import type { CipherName } from './crypto/envelope';
import type { KeyProviderName } from './keys/key-provider';

export interface CredentialSettings {
  defaultProvider: KeyProviderName;
  defaultCipher: CipherName;
  defaultRotationDays: number;
  defaultOverlapSeconds: number;
  /** A due rotation becomes overdue this many days after its date. */
  overdueAfterDays: number;
  leaseDefaultTtlSeconds: number;
  /** Hard ceiling: 60 s. */
  leaseMaxTtlSeconds: number;
  leaseMaxUses: number;
}

/** The documented defaults (README, Configuration). */
export const DEFAULT_CREDENTIAL_SETTINGS: CredentialSettings = {
  defaultProvider: 'local',
  defaultCipher: 'aes-256-gcm',
  defaultRotationDays: 90,
  defaultOverlapSeconds: 86400,
  overdueAfterDays: 7,
  leaseDefaultTtlSeconds: 30,
  leaseMaxTtlSeconds: 60,
  leaseMaxUses: 10,
};

/** Where "now" comes from (tests set it). */
export type Clock = () => Date;

export const actorOf = (p: Principal): Actor => ({ type: p.type, id: p.id });
/** The actor of what the vault does on its own: first key rings, scheduled notices and retirements. */
export const SYSTEM_ACTOR: Actor = { type: 'system', id: 'credential-scheduler' };
/** How often a state change that lost a race (key ring changed, name taken) is tried again. */
export const MAX_ATTEMPTS = 4;
