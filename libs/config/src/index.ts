import { z } from 'zod';

/** Variable names whose values must never be echoed back in an error. */
const SECRET_NAME = /pass|secret|token|key|credential|private/i;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parse the environment with a schema whose keys are variable names. Every problem
 * names its variable; values of secret-looking variables are never shown.
 */
export function loadConfig<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodObject<S>> {
  const parsed = z.object(shape).safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? '(environment)');
    const value = env[name];
    const shown = value === undefined ? 'unset' : SECRET_NAME.test(name) ? 'value hidden' : `got ${JSON.stringify(value)}`;
    return `${name}: ${issue.message} (${shown})`;
  });
  throw new ConfigError(problems);
}

/** Reusable variable types. */
export const env = {
  port: (fallback: number) => z.coerce.number().int().min(1).max(65535).default(fallback),
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce.number().int().min(min).max(max).default(fallback),
  bool: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
      .default(fallback ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1' || v === 'yes'),
  url: (protocols: string[]) =>
    z.string().refine((v) => {
      try {
        return protocols.includes(new URL(v).protocol.replace(':', ''));
      } catch {
        return false;
      }
    }, `must be a URL with scheme ${protocols.join(' or ')}`),
  /** Comma-separated list of `host:port`. */
  hostPorts: () =>
    z
      .string()
      .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
      .refine((list) => list.length > 0 && list.every((hp) => /^[A-Za-z0-9.-]+:\d{1,5}$/.test(hp)), 'must be host:port[,host:port…]'),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  path: () => z.string().min(1, 'must be a path'),
};
