/**
 * Independent steps at once, each run to its end; then, if one failed, `undo` and the
 * first failure. `Promise.all(...).catch(undo)` undoes at the first rejection while the
 * other steps still run: a cgroup directory made after the undo stays behind.
 */
export async function allOrUndo<T extends readonly unknown[]>(steps: readonly [...{ [K in keyof T]: Promise<T[K]> }], undo?: () => Promise<unknown>): Promise<T> {
  const outcomes = await Promise.allSettled(steps);
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (!failed) return outcomes.map((o) => (o as PromiseFulfilledResult<unknown>).value) as unknown as T;
  await undo?.();
  throw failed.reason;
}
