import type { DataSource, QueryRunner } from 'typeorm';

/**
 * The writer lease: a PostgreSQL session advisory lock held on a connection of its own.
 * It goes with the session, so an instance killed with -9 loses it as soon as the
 * server sees the connection close, and a standby takes over.
 */
export class LeaseRepository {
  private runner: QueryRunner | undefined;

  constructor(
    private readonly name: string,
    /** The data source the lease's own connection comes from (throws while PostgreSQL is not connected). */
    private readonly dataSource: () => DataSource,
  ) {}

  get held(): boolean {
    return this.runner !== undefined;
  }

  /** Try to take the lease; true when this instance holds it. */
  async tryAcquire(): Promise<boolean> {
    if (this.runner) return true;
    const runner = this.dataSource().createQueryRunner();
    try {
      await runner.connect();
      const [{ locked }] = await runner.query('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [this.name]);
      if (locked) {
        this.runner = runner;
        return true;
      }
    } catch (error) {
      await runner.release().catch(() => undefined);
      throw error;
    }
    await runner.release();
    return false;
  }

  /** Still held? A failed round trip means the session, and the lock with it, may be gone. */
  async stillHeld(): Promise<boolean> {
    if (!this.runner) return false;
    try {
      // A session lock lasts as long as the session: the session answering is the lock held.
      await this.runner.query('SELECT 1');
      return true;
    } catch {
      // connection lost
    }
    await this.release();
    return false;
  }

  async release(): Promise<void> {
    const runner = this.runner;
    this.runner = undefined;
    if (!runner) return;
    await runner.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [this.name]).catch(() => undefined);
    await runner.release().catch(() => undefined);
  }
}
