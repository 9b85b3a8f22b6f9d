const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/**
 * The text as the keywords are looked up in: lower case, and the two non-ASCII letters
 * that case-insensitive RE2 (`(?i)`) takes for ASCII ones (ſ for s, the Kelvin sign for
 * k) written as those, so a rule the regex would match is never skipped for a look-alike.
 */
export function keywordText(text: string): string {
  const lower = text.toLowerCase();
  return lower.includes('ſ') ? lower.replace(/ſ/g, 's') : lower;
}

/**
 * Which of many rules may match a text, in one pass: every rule's lower-case keywords
 * (gitleaks' `keywords`) in one pattern. A rule none of whose keywords occur is not run,
 * so most texts cost one scan, not one per rule.
 */
export class KeywordIndex {
  /** The keywords, each once. */
  readonly keywords: readonly string[];
  private readonly pattern: RegExp;
  /** Each keyword → the keywords it contains (itself included): found with it. */
  private readonly within = new Map<string, string[]>();

  constructor(keywords: readonly string[]) {
    const list = [...new Set(keywords)].sort((a, b) => b.length - a.length);
    this.keywords = list;
    for (const k of list) this.within.set(k, list.filter((other) => k.includes(other)));
    this.pattern = new RegExp(list.length ? list.map(escapeRegExp).join('|') : '(?!)', 'g');
  }

  /**
   * The keywords present in the text (a longer keyword found counts for the shorter ones
   * it contains). The search goes on one character after each match's start, so a keyword
   * overlapping another one's end is found too.
   */
  present(text: string): Set<string> {
    const found = new Set<string>();
    if (this.within.size === 0) return found;
    const lower = keywordText(text);
    const pattern = this.pattern;
    pattern.lastIndex = 0;
    for (let m = pattern.exec(lower); m; m = pattern.exec(lower)) {
      for (const k of this.within.get(m[0])!) found.add(k);
      pattern.lastIndex = m.index + 1;
    }
    return found;
  }
}
