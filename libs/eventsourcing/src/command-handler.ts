import {
  ConcurrencyError,
  PalisadeError,
  buildEvent,
  isSealedPersonal,
  type EventEnvelope,
  type EventFactoryContext,
} from '@palisade/contracts';
import { foldEvents, type Command, type CommandMetadata, type Decider, type DomainEvent } from './decider';
import type { EventStore, InlineProjection, Transaction } from './event-store';

export interface CommandHandlerOptions {
  /** Where ids and event times come from (defaults to UUIDv7 and the clock). */
  eventContext: EventFactoryContext;
  projections?: readonly InlineProjection[];
  /** How often to decide again after a concurrency conflict. */
  maxRetries?: number;
  /**
   * When set, a stream holding events of another tenant than the command's is refused as
   * not found (another tenant's resource is a 404), before anything is decided.
   */
  tenantScoped?: boolean;
  /**
   * Takes the stream's lock for the transaction before it is read (after `beforeDecide`):
   * commands on one busy stream then wait for each other instead of racing to the append
   * and, after the retries, answering a concurrency error to a client.
   */
  lockStream?: (tx: Transaction, streamId: string) => Promise<void>;
}

/** Writes that commit with the events but are not derived from them (e.g. a password hash, an encrypted version). */
export type AlsoInTransaction = (tx: Transaction, events: readonly EventEnvelope[], version: number) => Promise<void>;

export interface HandleOptions {
  /** The version the caller read (If-Match): a mismatch is a conflict, never retried. */
  expectedVersion?: number;
  /**
   * Runs first in the transaction, before the stream is read: locks and checks the
   * decision relies on that live outside the stream (e.g. share-lock the key ring and
   * verify the key a value was encrypted under is still current). Throw to abort; the
   * error reaches the caller (only a ConcurrencyError is retried).
   */
  beforeDecide?: (tx: Transaction) => Promise<void>;
  /** Runs after the append and the projections, in the same transaction. */
  alsoInTransaction?: AlsoInTransaction;
}

export interface CommandResult<State> {
  state: State;
  events: EventEnvelope[];
  /** Stream version after the append: the ETag of the aggregate. */
  version: number;
}

/**
 * Load the stream, decide, append with the expected version, project; on a conflict
 * load and decide again. Decisions are pure, so deciding twice is safe. The one
 * load → decide → append loop of the codebase: hooks (`beforeDecide`,
 * `alsoInTransaction`, projections) run inside its transaction. A decision carrying
 * personal data, on a store that seals it, is sealed between two passes (see `SealFirst`).
 */
export class CommandHandler<State, C extends Command, E extends DomainEvent> {
  constructor(
    private readonly store: EventStore,
    private readonly decider: Decider<State, C, E>,
    private readonly options: CommandHandlerOptions,
  ) {}

  /**
   * `expectedVersion` (If-Match) and the hooks, either as `HandleOptions` or, as before,
   * positionally: `handle(stream, command, expectedVersion, alsoInTransaction)`.
   */
  async handle(streamId: string, command: C, expectedVersion?: number | HandleOptions, alsoInTransaction?: AlsoInTransaction): Promise<CommandResult<State>> {
    const opts: HandleOptions = typeof expectedVersion === 'object' ? expectedVersion : { expectedVersion, alsoInTransaction };
    const expected = opts.expectedVersion;
    const maxRetries = this.options.maxRetries ?? 3;
    let sealed: SealedDecision<E> | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.store.inTransaction(async (tx) => {
          if (opts.beforeDecide) await opts.beforeDecide(tx);
          if (this.options.lockStream) await this.options.lockStream(tx, streamId);
          const stream = await this.store.readStream(tx, streamId);
          if (this.options.tenantScoped && stream.events.some((s) => s.event.tenantId !== command.metadata.tenantId)) {
            throw new PalisadeError('not_found', 'not found');
          }
          if (expected !== undefined && stream.version !== expected) {
            throw new ConcurrencyError(streamId, expected, stream.version);
          }
          const past = stream.events.map((s) => toDomainEvent<E>(s.event));
          const state = foldEvents(this.decider, past);
          const decided = this.decider.decide(command, state);
          let events = decided.map((e) => envelopeOf(this.options.eventContext, command.metadata, e));
          let stored: readonly EventEnvelope[] = events;
          if (this.store.sealPersonal && holdsPlaintextPersonal(events)) {
            // Sealing asks another service: never while this transaction holds a connection.
            // Roll back, seal, and append the sealed events if the next pass decides the same.
            if (!sealed?.matches(stream.version, decided)) throw new SealFirst(stream.version, decided, events);
            ({ events, stored } = sealed);
          }
          const { nextVersion } = await this.store.appendToStream(tx, streamId, stored, stream.version);
          for (const projection of this.options.projections ?? []) {
            const relevant = events.filter((e) => projection.handles.includes(e.type));
            if (relevant.length > 0) await projection.apply(tx, relevant, nextVersion);
          }
          if (opts.alsoInTransaction) await opts.alsoInTransaction(tx, events, nextVersion);
          return { state: decided.reduce((s, e) => this.decider.evolve(s, e), state), events, version: nextVersion };
        });
      } catch (error) {
        if (error instanceof SealFirst && this.store.sealPersonal) {
          // The first sealing is part of the work, not a retry; sealing again means the
          // decision changed in between, which counts like a conflict.
          const again = sealed !== undefined;
          sealed = new SealedDecision<E>(error.version, error.decided, error.events, await this.store.sealPersonal(error.events));
          if (!again) attempt--;
          else if (attempt >= maxRetries) throw new ConcurrencyError(streamId, error.version, error.version);
          continue;
        }
        // A caller-given version is the caller's decision (If-Match): never retried.
        const retry = error instanceof ConcurrencyError && expected === undefined && attempt < maxRetries;
        if (!retry) throw error;
      }
    }
  }
}

const holdsPlaintextPersonal = (events: readonly EventEnvelope[]) => events.some((e) => e.personal && !isSealedPersonal(e.personal));

/** A decision that needs sealing: it rolls its transaction back and is sealed outside it. */
class SealFirst<E extends DomainEvent> extends Error {
  constructor(
    readonly version: number,
    readonly decided: readonly E[],
    readonly events: EventEnvelope[],
  ) {
    super('personal data is sealed before the transaction');
  }
}

/** Envelopes sealed outside the transaction, stored only by a pass that decides the same on the same version. */
class SealedDecision<E extends DomainEvent> {
  private readonly decision: string;

  constructor(
    private readonly version: number,
    decided: readonly E[],
    readonly events: EventEnvelope[],
    readonly stored: readonly EventEnvelope[],
  ) {
    this.decision = JSON.stringify(decided);
  }

  matches(version: number, decided: readonly E[]): boolean {
    return version === this.version && JSON.stringify(decided) === this.decision;
  }
}

/**
 * The envelope of a decided event: tenant, actor and time from the command's metadata,
 * personal data kept apart. Also for paths that append without a handler (credential's
 * group-committed lease streams), so every event is enveloped the same way.
 */
export function envelopeOf(context: EventFactoryContext, metadata: CommandMetadata, event: DomainEvent): EventEnvelope {
  const ctx = { ...context, now: () => metadata.now };
  return buildEvent(ctx, {
    type: event.type,
    tenantId: metadata.tenantId,
    actor: metadata.actor,
    data: event.data,
    ...(event.personal ? { personal: event.personal } : {}),
  });
}

/**
 * The domain event of an envelope. Stored events hold `personal` sealed (issue 10), which
 * no decision reads: only plaintext `personal` (an event still in memory) is kept.
 */
export function toDomainEvent<E extends DomainEvent>(envelope: EventEnvelope): E {
  const event = { type: envelope.type, data: envelope.data } as E;
  if (envelope.personal && !isSealedPersonal(envelope.personal)) event.personal = envelope.personal;
  return event;
}
