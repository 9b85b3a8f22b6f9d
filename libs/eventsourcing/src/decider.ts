import type { Actor, Personal } from '@palisade/contracts';

/** A domain event as a decider sees it: what happened, without the envelope's metadata. */
export interface DomainEvent<TType extends string = string, TData extends object = Record<string, unknown>> {
  type: TType;
  data: TData;
  /** Personal data, kept apart so the audit service can encrypt it per data subject. */
  personal?: Personal;
}

/** Who asks, for which tenant, and when: outside facts a decision may use, passed in. */
export interface CommandMetadata {
  tenantId: string;
  actor: Actor;
  now: Date;
}

export interface Command<TType extends string = string, TData extends object = Record<string, unknown>> {
  type: TType;
  data: TData;
  metadata: CommandMetadata;
}

/**
 * Emmett-style decider. Both functions are pure: a handler may call `decide` again
 * after a concurrency conflict, with the newer state.
 */
export interface Decider<State, C extends Command, E extends DomainEvent> {
  initialState(): State;
  /** Returns the events the command causes, or throws a PalisadeError refusing it. */
  decide(command: C, state: State): E[];
  evolve(state: State, event: E): State;
}

export function foldEvents<State, E extends DomainEvent>(
  decider: Pick<Decider<State, never, E>, 'initialState' | 'evolve'>,
  events: readonly E[],
): State {
  return events.reduce((state, event) => decider.evolve(state, event), decider.initialState());
}

/** Streams are named `<aggregate>-<id>`. */
export function streamName(aggregate: string, id: string): string {
  return `${aggregate}-${id}`;
}
