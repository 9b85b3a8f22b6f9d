import type { Logger } from '@palisade/observability';
import type { LedgerService } from './ledger.service';

/** Releases holds past their TTL every `intervalMs` (each one a `billing.hold.expired` event), one tick at a time. */
export class LedgerSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly ledger: Pick<LedgerService, 'expire' | 'unexpirableHolds'>,
    private readonly intervalMs: number,
    private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => {
      this.running ??= this.ledger
        .expire()
        .then((n) => {
          if (n > 0) this.logger.info({ expired: n }, 'holds past their TTL released');
          // a hold that cannot be expired is a bug (the CHECK caught it): said every tick until it is gone
          const stuck = this.ledger.unexpirableHolds;
          if (stuck > 0) this.logger.error({ unexpirable: stuck }, 'holds past their TTL could not be expired (a ledger bug caught by its checks): tried alone every tick');
        })
        .catch((error: Error) => this.logger.warn({ err: error.message }, 'hold sweep failed; retrying at the next tick'))
        .finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
