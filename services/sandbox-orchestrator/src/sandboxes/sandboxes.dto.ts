import { z } from 'zod';
import { TEMPLATE_NAMES } from './sandboxes.templates';

export const sandboxIdSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a sandbox id (lowercase UUID)');
export const executionIdSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be an execution id (lowercase UUID)');

export const createSandboxSchema = z.strictObject({ template: z.enum(TEMPLATE_NAMES).default('default') });

/** Variables a caller may set: not the loader's, not PATH or HOME (the sandbox sets them). */
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a variable name')
  .refine((n) => !/^(LD_|PATH$|HOME$)/.test(n), 'must not be PATH, HOME or LD_*');
const env = z.record(envName, z.string().max(4096)).refine((e) => Object.keys(e).length <= 64, 'at most 64 variables').optional();
const timeoutMs = z.number().int().min(100).max(3_600_000).optional();

/** The one-time token of a policy approval (`<approval id>.<secret>`), for an execution the policy marks critical. */
const approvalToken = z.string().regex(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]{16,128}$/, 'must be an approval token').optional();

export const execSchema = z.union([
  z.strictObject({ command: z.array(z.string().max(65536)).min(1).max(256), stdin: z.string().max(1024 * 1024).optional(), env, timeoutMs, approvalToken }),
  z.strictObject({ language: z.enum(['python', 'node', 'sh']), code: z.string().min(1).max(1024 * 1024), env, timeoutMs, approvalToken }),
]);

/** A workspace file path as given (its names are checked again where it is opened: runtime/workspace-path.ts). */
export const filePathSchema = z.string().min(1, 'required').max(1024);
