import type { MaintenanceService } from './maintenance.service';

interface Log {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** Runs the vault's maintenance every `intervalMs` (one run at a time; a failure is logged and retried at the next interval). */
export class MaintenanceScheduler {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly maintenance: Pick<MaintenanceService, 'maintain'>,
    private readonly intervalMs: number,
    private readonly logger: Log,
  ) {}

  start(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.maintenance.maintain().then(
        (done) => {
          if (done.notices + done.retired > 0) this.logger.info(done, 'vault maintenance');
          this.start();
        },
        (error: Error) => {
          this.logger.warn({ err: error.message }, 'vault maintenance failed; retrying at the next interval');
          this.start();
        },
      );
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
