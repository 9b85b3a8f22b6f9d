import { PalisadeError, type ErrorCode } from '@palisade/contracts';
import { foldEvents, type Command, type Decider, type DomainEvent } from './decider';

/**
 * Given these events, when this command, then these events (or this error):
 * a decider tested as a specification, without I/O (Emmett's DeciderSpecification).
 */
export const DeciderSpecification = {
  for<State, C extends Command, E extends DomainEvent>(decider: Decider<State, C, E>) {
    return (given: readonly E[]) => ({
      when(command: C) {
        const run = () => decider.decide(command, foldEvents(decider, given));
        return {
          then(expected: readonly E[]): void {
            const actual = run();
            if (JSON.stringify(actual) !== JSON.stringify(expected)) {
              throw new Error(
                `decider produced\n${JSON.stringify(actual, null, 2)}\nbut expected\n${JSON.stringify(expected, null, 2)}`,
              );
            }
          },
          thenThrows(code: ErrorCode, messageIncludes?: string): void {
            let thrown: unknown;
            try {
              run();
            } catch (error) {
              thrown = error;
            }
            if (!(thrown instanceof PalisadeError)) {
              throw new Error(`expected a PalisadeError '${code}', got ${thrown === undefined ? 'no error' : String(thrown)}`);
            }
            if (thrown.code !== code) throw new Error(`expected error code '${code}', got '${thrown.code}': ${thrown.message}`);
            if (messageIncludes && !thrown.message.includes(messageIncludes)) {
              throw new Error(`expected message to include '${messageIncludes}', got '${thrown.message}'`);
            }
          },
        };
      },
    });
  },
};
