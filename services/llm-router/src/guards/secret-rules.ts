/**
 * Secret-detection rules as data, in the shape of gitleaks' rule file (id, regex,
 * keywords as a cheap pre-filter), run with re2js (RE2 semantics: linear time, no
 * backtracking, so no rule and no input can stall the request path). A selection of
 * gitleaks' rules (MIT) for the credentials agents most often paste, plus private keys
 * and connection strings with a password.
 */
export interface SecretRule {
  id: string;
  /** RE2 syntax. */
  regex: string;
  /** Lower-case substrings one of which must occur for the rule to run (gitleaks `keywords`). */
  keywords: readonly string[];
}

export const SECRET_RULES: readonly SecretRule[] = [
  { id: 'private-key', regex: '-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\\s\\S]{64,}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----', keywords: ['-----begin'] },
  { id: 'aws-access-token', regex: '\\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\\b', keywords: ['akia', 'asia', 'abia', 'acca', 'a3t'] },
  { id: 'github-pat', regex: '\\bgh[pousr]_[0-9a-zA-Z]{36}\\b', keywords: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'] },
  { id: 'github-fine-grained-pat', regex: '\\bgithub_pat_[0-9a-zA-Z_]{82}\\b', keywords: ['github_pat_'] },
  { id: 'gitlab-pat', regex: '\\bglpat-[0-9a-zA-Z_-]{20}\\b', keywords: ['glpat-'] },
  { id: 'slack-token', regex: '\\bxox[baprs]-[0-9a-zA-Z-]{10,48}\\b', keywords: ['xoxb-', 'xoxa-', 'xoxp-', 'xoxr-', 'xoxs-'] },
  { id: 'stripe-access-token', regex: '\\b(?:sk|rk)_(?:test|live|prod)_[0-9a-zA-Z]{10,99}\\b', keywords: ['sk_test', 'sk_live', 'sk_prod', 'rk_test', 'rk_live', 'rk_prod'] },
  { id: 'openai-api-key', regex: '\\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}\\b|\\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}\\b', keywords: ['sk-'] },
  { id: 'anthropic-api-key', regex: '\\bsk-ant-(?:api|admin)0\\d-[A-Za-z0-9_-]{80,}\\b', keywords: ['sk-ant-'] },
  { id: 'gcp-api-key', regex: '\\bAIza[0-9A-Za-z_-]{35}\\b', keywords: ['aiza'] },
  { id: 'jwt', regex: '\\beyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{10,}', keywords: ['eyj'] },
  { id: 'connection-string', regex: '\\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\\+srv)?|redis|rediss|amqps?|mssql|sqlserver)://[^\\s:/@]+:[^\\s@/]+@[^\\s/]+', keywords: ['://'] },
  { id: 'generic-api-key', regex: '(?i)\\b(?:api[_-]?key|secret|access[_-]?token|auth[_-]?token|password|passwd)\\b["\']?\\s{0,3}[:=]\\s{0,3}["\']?([A-Za-z0-9_./+=-]{16,128})', keywords: ['key', 'secret', 'token', 'password', 'passwd'] },
];
