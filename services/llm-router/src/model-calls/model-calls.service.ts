import type { EventFactoryContext, Personal, Principal } from '@palisade/contracts';
import { CommandHandler, streamName, type EventStore } from '@palisade/eventsourcing';
import { modelCallDecider, type ModelCallCommand, type ModelCallState } from './model-calls.decider';
import type { ModelCallEvent, ModelCallRecorded } from './model-calls.events';

/** Appends the audit event of each model call (the outbox carries it to the audit chain). */
export class ModelCallsService {
  private readonly handler: CommandHandler<ModelCallState, ModelCallCommand, ModelCallEvent>;

  constructor(store: EventStore, eventContext: EventFactoryContext) {
    this.handler = new CommandHandler(store, modelCallDecider, { eventContext });
  }

  async record(principal: Principal, call: ModelCallRecorded, texts: { prompt: unknown; response?: unknown } | undefined, now: Date): Promise<void> {
    const subjectId = principal.actingFor ?? principal.id;
    const personal: Personal | undefined = texts ? { subjectId, data: texts.response === undefined ? { prompt: texts.prompt } : { prompt: texts.prompt, response: texts.response } } : undefined;
    await this.handler.handle(
      streamName('model-call', call.requestId),
      { type: 'record', data: { call, ...(personal ? { personal } : {}) }, metadata: { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now } },
      0,
    );
  }
}
