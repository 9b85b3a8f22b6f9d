/**
 * Settings of the infrastructure deploy/local/up.sh started; Jest's global set-up loads
 * them from .palisade/env. A missing one is a clear failure, not a silent skip.
 */
export function infra(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: start the local infrastructure (deploy/local/up.sh, which npm test runs first)`);
  }
  return value;
}

/** Poll until `probe` returns a value (not undefined/false) or the time runs out. */
export async function eventually<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
