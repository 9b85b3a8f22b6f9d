import type { Kafka } from '@palisade/kafka';
import { readRangeRaw } from './audit-topic';

/**
 * A consumer whose group join fails: kafkajs emits CRASH and `run()` rejects (as with
 * "The coordinator is loading", seen in CI). The read rejects with that error and leaves
 * no promise rejected unhandled (one would end the process under Node's default).
 */
describe('readRangeRaw', () => {
  it('rejects with the consumer failure once, nothing left unhandled', async () => {
    const failure = new Error('The coordinator is loading and hence can\'t process requests for this group');
    const handlers = new Map<string, (e: { payload: { error: Error } }) => void>();
    let disconnected = 0;
    const kafka = {
      consumer: () => ({
        events: { END_BATCH_PROCESS: 'end', CRASH: 'crash' },
        connect: async () => undefined,
        on: (event: string, handler: (e: { payload: { error: Error } }) => void) => handlers.set(event, handler),
        subscribe: async () => undefined,
        run: async () => {
          handlers.get('crash')!({ payload: { error: failure } });
          throw failure;
        },
        seek: () => undefined,
        disconnect: async () => void disconnected++,
      }),
    } as unknown as Kafka;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(readRangeRaw(kafka, 'audit', new Map(), new Map([[0, 5n]]), async () => undefined, { groupPrefix: 'test' })).rejects.toBe(failure);
      // unhandled rejections are reported after the microtasks of this turn
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    expect(disconnected).toBe(1);
  });
});
