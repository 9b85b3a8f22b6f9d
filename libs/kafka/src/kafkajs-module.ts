import Module from 'node:module';

/**
 * Put `exports` in the module cache as kafkajs' module `subpath` (e.g.
 * `src/producer/groupMessagesPerPartition`), so that kafkajs takes it when it loads: this
 * must run before `kafkajs` is first imported. Returns whether it did: not when kafkajs (or
 * that module) was loaded first, nor when this kafkajs has no such module; kafkajs then
 * keeps its own, slower, not different.
 */
export function replaceKafkajsModule(subpath: string, exports: unknown): boolean {
  const path = kafkajsModulePath(subpath);
  if (!path || require.cache[path]) return false;
  const replacement = new Module(path);
  replacement.filename = path;
  replacement.loaded = true;
  replacement.exports = exports;
  require.cache[path] = replacement;
  return true;
}

/** Where kafkajs keeps `subpath`; undefined when it cannot be resolved (another kafkajs layout). */
export function kafkajsModulePath(subpath: string): string | undefined {
  try {
    return require.resolve(`kafkajs/${subpath}`);
  } catch {
    return undefined;
  }
}
