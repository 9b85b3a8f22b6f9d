const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/**
 * Which of many rules may match a text, in one pass: every rule's lower-case keywords
 * (gitleaks' `keywords`) in one pattern. A rule none of whose keywords occur is not run,
 * so most texts cost one scan, not one per rule.
 */
export class KeywordIndex {
  private readonly pattern: RegExp;
  private readonly list: readonly string[];

  constructor(keywords: readonly string[]) {
    this.list = [...new Set(keywords)].sort((a, b) => b.length - a.length);
    this.pattern = new RegExp(this.list.map(escapeRegExp).join('|'), 'g');
  }

  /** The keywords present in the text (a longer keyword found counts for the shorter ones it contains). */
  present(text: string): Set<string> {
    const found = new Set<string>();
    if (this.list.length === 0) return found;
    for (const m of text.toLowerCase().matchAll(this.pattern)) for (const k of this.list) if (m[0].includes(k)) found.add(k);
    return found;
  }
}
