/** The minimal, pino-compatible logger the adapter writes to. */
export interface NatsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: NatsLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
