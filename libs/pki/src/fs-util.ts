import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Write a file so readers never see it half-written: a temporary file, then a rename. */
export function writeFileAtomic(path: string, content: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}


/**
 * Run `fn` while holding a lock directory (mkdir is atomic), so two processes that
 * start at once (two scripts, two services) do not both create a CA. A lock older
 * than `staleMs` is left over by a killed process and is taken over.
 */
export async function withDirLock<T>(lockDir: string, fn: () => Promise<T>, staleMs = 30_000): Promise<T> {
  mkdirSync(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + 2 * staleMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      try {
        if (Date.now() - statSync(lockDir).mtimeMs > staleMs) rmdirSync(lockDir);
      } catch {
        // taken and released by another process meanwhile: try again
      }
      if (Date.now() > deadline) throw new Error(`could not take the lock ${lockDir}`);
      await sleep(25 + Math.random() * 50);
    }
  }
  try {
    return await fn();
  } finally {
    rmdirSync(lockDir);
  }
}
