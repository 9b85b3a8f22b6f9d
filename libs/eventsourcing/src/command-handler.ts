import {
  ConcurrencyError,
  buildEvent,
  type EventEnvelope,
  type EventFactoryContext,
} from '@palisade/contracts';
import { foldEvents, type Command, type Decider, type DomainEvent } from './decider';
import type { EventStore, InlineProjection, Transaction } from './event-store';

export interface CommandHandlerOptions {
  /** Where ids and event times come from (defaults to UUIDv7 and the clock). */
  eventContext: EventFactoryContext;
  projections?: readonly InlineProjection[];
  /** How often to decide again after a concurrency conflict. */
  maxRetries?: number;
}

export interface CommandResult<State> {
  state: State;
  events: EventEnvelope[];
  /** Stream version after the append: the ETag of the aggregate. */
  version: number;
}

/**
 * Load the stream, decide, append with the expected version, project; on a conflict
 * load and decide again. Decisions are pure, so deciding twice is safe.
 */
export class CommandHandler<State, C extends Command, E extends DomainEvent> {
  constructor(
    private readonly store: EventStore,
    private readonly decider: Decider<State, C, E>,
    private readonly options: CommandHandlerOptions,
  ) {}

  /**
   * `alsoInTransaction` runs after the append and the projections, in the same
   * transaction: writes that must commit with the events but are not derived from them
   * (e.g. a password hash, which never goes into an event).
   */
  async handle(
    streamId: string,
    command: C,
    expectedVersion?: number,
    alsoInTransaction?: (tx: Transaction, events: readonly EventEnvelope[]) => Promise<void>,
  ): Promise<CommandResult<State>> {
    const maxRetries = this.options.maxRetries ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.store.inTransaction(async (tx) => {
          const stream = await this.store.readStream(tx, streamId);
          if (expectedVersion !== undefined && stream.version !== expectedVersion) {
            throw new ConcurrencyError(streamId, expectedVersion, stream.version);
          }
          const past = stream.events.map((s) => toDomainEvent<E>(s.event));
          const state = foldEvents(this.decider, past);
          const decided = this.decider.decide(command, state);
          const events = decided.map((e) => this.envelope(command, e));
          const { nextVersion } = await this.store.appendToStream(tx, streamId, events, stream.version);
          for (const projection of this.options.projections ?? []) {
            const relevant = events.filter((e) => projection.handles.includes(e.type));
            if (relevant.length > 0) await projection.apply(tx, relevant);
          }
          if (alsoInTransaction) await alsoInTransaction(tx, events);
          return { state: decided.reduce((s, e) => this.decider.evolve(s, e), state), events, version: nextVersion };
        });
      } catch (error) {
        // A caller-given version is the caller's decision (If-Match): never retried.
        const retry = error instanceof ConcurrencyError && expectedVersion === undefined && attempt < maxRetries;
        if (!retry) throw error;
      }
    }
  }

  private envelope(command: C, event: E): EventEnvelope {
    const ctx = { ...this.options.eventContext, now: () => command.metadata.now };
    return buildEvent(ctx, {
      type: event.type,
      tenantId: command.metadata.tenantId,
      actor: command.metadata.actor,
      data: event.data,
      ...(event.personal ? { personal: event.personal } : {}),
    });
  }
}

export function toDomainEvent<E extends DomainEvent>(envelope: EventEnvelope): E {
  const event = { type: envelope.type, data: envelope.data } as E;
  if (envelope.personal) event.personal = envelope.personal;
  return event;
}
