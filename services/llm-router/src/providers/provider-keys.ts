import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PalisadeError, rpcSubject } from '@palisade/contracts';
import { rpcRequest, type NatsConnection } from '@palisade/nats';
import type { ProviderDefinition } from '../catalog/catalog.events';

/** Where a provider's API key comes from: the credential service's vault, by the provider's secret id. */
export interface ProviderKeys {
  keyFor(tenantId: string, provider: ProviderDefinition): Promise<string | undefined>;
  /** Drops a key held in memory (the provider refused it: it may have been rotated). */
  forget(tenantId: string, secretId: string): void;
}

/** What the catalog needs to keep a key in the vault: store (create or rotate) and remove. */
export interface ProviderKeyStore {
  store(tenantId: string, providerId: string, apiKey: string): Promise<string>;
  remove(tenantId: string, secretId: string): Promise<void>;
}

/** Why the router reads a key, as the vault records it in `credential.secret.read`. */
export const KEY_READ_PURPOSE = 'provider-call';

/** The name of a provider's key in the vault (`llm-provider.<id>`; ids the vault's names cannot hold are hashed). */
export function vaultNameOf(providerId: string): string {
  return /^[a-z0-9][a-z0-9._-]{0,110}$/.test(providerId) ? `llm-provider.${providerId}` : `llm-provider.h-${createHash('sha256').update(providerId).digest('hex').slice(0, 32)}`;
}

const stored = z.object({ secretId: z.string().min(1), version: z.number().int() });
const read = stored.extend({ value: z.string().min(1) });

export interface VaultProviderKeysOptions {
  /** The router's NATS connection (its certificate names it to the vault); absent until connected. */
  nats: () => NatsConnection | undefined;
  /** How long a key read stays in this process's memory (0: every call reads it, and the vault records each read). */
  cacheMs: number;
  timeoutMs: number;
  now?: () => number;
}

/**
 * Provider API keys in the credential service, under the router's own scope
 * (`llm-router:provider-key`), asked over NATS request-reply with the router's
 * certificate (`palisade.rpc.credential.service-secret-{put,read,delete}`). The vault
 * records every read (`credential.secret.read`, consumer llm-router, purpose
 * `provider-call`) before the value leaves it. A key read is kept in memory for `cacheMs`
 * only (concurrent calls share one read), never written anywhere; a provider without a
 * key reference (inside the perimeter: vLLM, Ollama) needs none. Errors name the provider
 * and the vault's code, never a value; the vault refusing or not answering refuses the
 * call (503), it is never sent without its key.
 */
export class VaultProviderKeys implements ProviderKeys, ProviderKeyStore {
  private readonly held = new Map<string, { value: Promise<string>; until: number }>();
  private readonly now: () => number;

  constructor(private readonly o: VaultProviderKeysOptions) {
    this.now = o.now ?? Date.now;
  }

  async keyFor(tenantId: string, provider: ProviderDefinition): Promise<string | undefined> {
    const secretId = provider.apiKeySecretId;
    if (!secretId) return undefined;
    const slot = `${tenantId}\n${secretId}`;
    const at = this.now();
    const hit = this.held.get(slot);
    if (hit && hit.until > at) return hit.value;
    const value = this.ask(rpcSubject('credential', 'service-secret-read'), { tenantId, secretId, purpose: KEY_READ_PURPOSE }, read).then(
      (r) => r.value,
      (error: unknown) => {
        this.held.delete(slot);
        throw new PalisadeError('unavailable', `the key of provider ${provider.providerId} could not be read from the vault (${codeOf(error)}): refused, nothing was sent`);
      },
    );
    if (this.o.cacheMs > 0) {
      for (const [k, v] of this.held) if (v.until <= at) this.held.delete(k);
      this.held.set(slot, { value, until: at + this.o.cacheMs });
    }
    return value;
  }

  forget(tenantId: string, secretId: string): void {
    this.held.delete(`${tenantId}\n${secretId}`);
  }

  /** Drops every key of the tenant held in memory (its configuration changed, maybe through another worker: a key rotated). */
  forgetTenant(tenantId: string): void {
    for (const slot of this.held.keys()) if (slot.startsWith(`${tenantId}\n`)) this.held.delete(slot);
  }

  async store(tenantId: string, providerId: string, apiKey: string): Promise<string> {
    const result = await this.ask(rpcSubject('credential', 'service-secret-put'), { tenantId, name: vaultNameOf(providerId), value: apiKey }, stored).catch((error: unknown) => {
      throw new PalisadeError(codeOf(error) === 'conflict' ? 'conflict' : 'unavailable', `the vault did not store the key of provider ${providerId} (${codeOf(error)})`);
    });
    this.forget(tenantId, result.secretId);
    return result.secretId;
  }

  async remove(tenantId: string, secretId: string): Promise<void> {
    this.forget(tenantId, secretId);
    await this.ask(rpcSubject('credential', 'service-secret-delete'), { tenantId, secretId }, z.object({ secretId: z.string() })).catch((error: unknown) => {
      if (codeOf(error) !== 'not_found') throw new PalisadeError('unavailable', `the vault did not remove the provider key (${codeOf(error)})`);
    });
  }

  private async ask<T>(subject: string, request: object, schema: z.ZodType<T>): Promise<T> {
    const nc = this.o.nats();
    if (!nc) throw new PalisadeError('unavailable', 'NATS is not connected');
    const parsed = schema.safeParse(await rpcRequest(nc, subject, request, { timeoutMs: this.o.timeoutMs }));
    if (!parsed.success) throw new PalisadeError('internal', `unexpected answer from ${subject}`);
    return parsed.data;
  }
}

function codeOf(error: unknown): string {
  return error instanceof PalisadeError ? error.code : 'internal';
}
