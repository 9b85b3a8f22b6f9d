/**
 * Secret-detection rules as data, in the shape of gitleaks' rule file (id, regex,
 * keywords as a cheap pre-filter), run with re2js (RE2 semantics: linear time, no
 * backtracking, so no rule and no input can stall the request path). A selection of
 * gitleaks' rules (MIT, config/gitleaks.toml: the rule ids are theirs) for the credentials
 * agents most often paste, plus private keys and connection strings with a password.
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
  { id: 'aws-secret-access-key', regex: '(?i)\\baws_?secret_?(?:access_?)?key(?:_id)?\\b["\']?\\s{0,3}[:=]\\s{0,3}["\']?([A-Za-z0-9/+=]{40})\\b', keywords: ['aws_secret', 'awssecret', 'aws_secret_access'] },
  { id: 'azure-ad-client-secret', regex: '(?:^|[\\\\\'"`\\s>=:(,)])([a-zA-Z0-9_~.]{3}\\dQ~[a-zA-Z0-9_~.-]{31,34})(?:$|[\\\\\'"`\\s<),])', keywords: ['q~'] },
  { id: 'azure-storage-account-key', regex: '(?i)\\bAccountKey=([A-Za-z0-9+/]{86}==)', keywords: ['accountkey='] },
  { id: 'azure-sas-token', regex: '(?i)[?&]sig=([A-Za-z0-9%+/]{43,}(?:%3D|=){0,2})', keywords: ['sig='] },
  { id: 'alibaba-access-key-id', regex: '\\bLTAI[A-Za-z0-9]{20}\\b', keywords: ['ltai'] },
  { id: 'digitalocean-pat', regex: '\\bdo[opr]_v1_[a-f0-9]{64}\\b', keywords: ['dop_v1_', 'doo_v1_', 'dor_v1_'] },
  { id: 'gitlab-token', regex: '\\bgl(?:ptt|dt|rt|cbt|soat|ffct|imt|agent)-[0-9a-zA-Z_-]{20,50}\\b', keywords: ['glptt-', 'gldt-', 'glrt-', 'glcbt-', 'glsoat-', 'glffct-', 'glimt-', 'glagent-'] },
  { id: 'slack-webhook-url', regex: '(?:https?://)?hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}', keywords: ['hooks.slack.com'] },
  { id: 'npm-access-token', regex: '(?i)\\bnpm_[a-z0-9]{36}\\b', keywords: ['npm_'] },
  { id: 'pypi-upload-token', regex: 'pypi-AgEIcHlwaS5vcmc[\\w-]{50,1000}', keywords: ['pypi-ageichlwas5vcmc'] },
  { id: 'huggingface-access-token', regex: '\\bhf_[a-zA-Z]{34}\\b', keywords: ['hf_'] },
  { id: 'sendgrid-api-token', regex: '\\bSG\\.[a-zA-Z0-9=_.-]{66}\\b', keywords: ['sg.'] },
  { id: 'twilio-api-key', regex: '\\bSK[0-9a-fA-F]{32}\\b', keywords: ['sk'] },
  { id: 'shopify-token', regex: '\\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\\b', keywords: ['shpat_', 'shpca_', 'shppa_', 'shpss_'] },
  { id: 'databricks-api-token', regex: '\\bdapi[a-f0-9]{32}(?:-\\d)?\\b', keywords: ['dapi'] },
  { id: 'hashicorp-tf-api-token', regex: '\\b[a-zA-Z0-9]{14}\\.atlasv1\\.[a-zA-Z0-9=_-]{60,70}\\b', keywords: ['atlasv1'] },
  { id: 'vault-service-token', regex: '\\bhvs\\.[a-zA-Z0-9_-]{90,120}\\b', keywords: ['hvs.'] },
  { id: 'google-oauth-access-token', regex: '\\bya29\\.[0-9A-Za-z_-]{30,}', keywords: ['ya29.'] },
  { id: 'gcp-service-account-key', regex: '"private_key_id"\\s*:\\s*"([a-f0-9]{40})"', keywords: ['private_key_id'] },
  { id: 'jwt', regex: '\\beyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{10,}', keywords: ['eyj'] },
  { id: 'jdbc-connection-string', regex: '(?i)\\bjdbc:[a-z0-9]+:[^\\s]{0,300}?[;?&](?:password|pwd)=([^;&\\s\'"]{4,128})', keywords: ['jdbc:'] },
  { id: 'ado-connection-string', regex: '(?i)\\b(?:server|data source|host)=[^;\\n]{1,200};(?:[^;\\n]{0,100};){0,8}?\\s?(?:password|pwd)=([^;\\s\'"]{4,128})', keywords: ['password=', 'pwd='] },
  { id: 'connection-string', regex: '\\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\\+srv)?|redis|rediss|amqps?|mssql|sqlserver)://[^\\s:/@]+:[^\\s@/]+@[^\\s/]+', keywords: ['://'] },
  { id: 'generic-api-key', regex: '(?i)\\b(?:api[_-]?key|secret|access[_-]?token|auth[_-]?token|password|passwd)\\b["\']?\\s{0,3}[:=]\\s{0,3}["\']?([A-Za-z0-9_./+=-]{16,128})', keywords: ['key', 'secret', 'token', 'password', 'passwd'] },
];
