import { RE2JS } from 're2js';
import { INJECTION_RULES, type InjectionRule } from './injection-rules';
import { KeywordIndex } from './keywords';

export type InjectionConfidence = 'high' | 'medium';
/** Where a text came from: the caller's prompt, a tool result or retrieved content, the model's answer. */
export type TextSource = 'prompt' | 'tool' | 'output';

export interface InjectionFinding {
  source: TextSource;
  confidence: InjectionConfidence;
  /** Rule ids (never the text). */
  rules: string[];
}

/**
 * The prompt-injection rules over a text: high confidence when a `high` rule or two
 * `medium` rules match, medium when one `medium` rule does. Linear time (re2js), one
 * keyword pass first so most texts run no rule at all (a rule runs only when one of its
 * keywords and one word of each of its `alsoNeeds` groups occur).
 */
export class InjectionScanner {
  private readonly rules: Array<{ rule: InjectionRule; re: RE2JS }>;
  readonly keywords: KeywordIndex;

  constructor(rules: readonly InjectionRule[] = INJECTION_RULES) {
    this.rules = rules.map((rule) => ({ rule, re: RE2JS.compile(rule.regex) }));
    this.keywords = new KeywordIndex(rules.flatMap((r) => [...r.keywords, ...(r.alsoNeeds ?? []).flat()]));
  }

  /** `present`: the keywords in `text`, from an index holding at least this scanner's (else its own pass). */
  scan(text: string, present: ReadonlySet<string> = this.keywords.present(text)): { confidence: InjectionConfidence; rules: string[] } | undefined {
    if (present.size === 0) return undefined;
    const has = (words: readonly string[]) => words.some((k) => present.has(k));
    const matched = this.rules.filter(({ rule, re }) => has(rule.keywords) && (rule.alsoNeeds ?? []).every(has) && re.matcher(text).find()).map(({ rule }) => rule);
    if (matched.length === 0) return undefined;
    const high = matched.some((r) => r.severity === 'high') || matched.length >= 2;
    return { confidence: high ? 'high' : 'medium', rules: matched.map((r) => r.id) };
  }
}
