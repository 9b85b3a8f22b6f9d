import { createHash } from 'node:crypto';

/**
 * What an approval of an execution is bound to (pure): the sandbox and a SHA-256 of the
 * execution's whole input (command or language and code, stdin, environment, timeout;
 * object keys sorted), so an approved token runs exactly that call, and nothing of the
 * input itself reaches the policy service or its events.
 */
export function executionApprovalParameters(sandboxId: string, input: object): { sandboxId: string; inputSha256: string } {
  const { approvalToken: _token, ...rest } = input as { approvalToken?: string };
  void _token;
  return { sandboxId, inputSha256: createHash('sha256').update(stableJson(rest)).digest('hex') };
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}
