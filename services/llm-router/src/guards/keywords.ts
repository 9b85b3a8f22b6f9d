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
 * (gitleaks' `keywords`) in one automaton (Aho-Corasick, its failure links folded into a
 * table per state and character class). A rule none of whose keywords occur is not run,
 * so most texts cost one scan, not one per rule; the scan is one table look-up per
 * character, with no string made per match (a regex alternation of the ~200 keywords
 * tried them at every position and made a string per match: short ones such as `you`
 * or `:` occur all through ordinary prose).
 */
export class KeywordIndex {
  /** The keywords, each once. */
  readonly keywords: readonly string[];
  private readonly automaton: Automaton;

  constructor(keywords: readonly string[]) {
    this.keywords = [...new Set(keywords)].sort((a, b) => b.length - a.length);
    this.automaton = automatonOf(this.keywords);
  }

  /** The keywords present in the text (as lowered by `keywordText`), overlapping ones included. */
  present(text: string): Set<string> {
    const found = new Set<string>();
    if (this.keywords.length === 0) return found;
    const { classes, wide, width, next, outputs } = this.automaton;
    const lower = keywordText(text);
    // the states passed that end a keyword, each once (few: the keywords found, not the matches)
    const reached: number[] = [];
    let seen: Uint8Array | undefined;
    let row = 0;
    for (let i = 0; i < lower.length; i++) {
      const code = lower.charCodeAt(i);
      row = next[row + (code < 128 ? classes[code] : (wide.get(code) ?? 0))];
      if (row < 0) {
        row = ~row;
        seen ??= new Uint8Array(outputs.length);
        const state = row / width;
        if (seen[state] === 0) {
          seen[state] = 1;
          reached.push(state);
        }
      }
    }
    for (const s of reached) for (const k of outputs[s]) found.add(this.keywords[k]);
    // an empty keyword occurs in every text (as the pattern it replaced found it)
    if (outputs[0].length > 0) for (const k of outputs[0]) found.add(this.keywords[k]);
    return found;
  }
}

interface Automaton {
  /** A character's class (0: in no keyword), for the ASCII ones and the others. */
  classes: Uint16Array;
  wide: Map<number, number>;
  /** Classes per state: the row width of `next`. */
  width: number;
  /**
   * The row (state × `width`) after each row and class, failure links folded in; a state
   * that ends a keyword (its own or one its failure links reach) as its row's complement.
   */
  next: Int32Array;
  /** The keywords (indexes) a state ends. */
  outputs: number[][];
}

/** The Aho-Corasick automaton of the keywords, as a full transition table over their characters' classes. */
function automatonOf(keywords: readonly string[]): Automaton {
  const classes = new Uint16Array(128);
  const wide = new Map<number, number>();
  let width = 1;
  const classOf = (code: number): number => {
    if (code < 128) return classes[code] || (classes[code] = width++);
    let c = wide.get(code);
    if (c === undefined) wide.set(code, (c = width++));
    return c;
  };
  const trie: Array<Map<number, number>> = [new Map()];
  const outputs: number[][] = [[]];
  keywords.forEach((keyword, k) => {
    let state = 0;
    for (let i = 0; i < keyword.length; i++) {
      const c = classOf(keyword.charCodeAt(i));
      let to = trie[state].get(c);
      if (to === undefined) {
        to = trie.length;
        trie[state].set(c, to);
        trie.push(new Map());
        outputs.push([]);
      }
      state = to;
    }
    outputs[state].push(k);
  });
  const next = new Int32Array(trie.length * width);
  const fail = new Int32Array(trie.length);
  // breadth first: a state's failure state is shallower, so its row and outputs are complete
  const queue: number[] = [];
  for (const [c, to] of trie[0]) {
    next[c] = to;
    queue.push(to);
  }
  for (let q = 0; q < queue.length; q++) {
    const state = queue[q];
    const f = fail[state];
    if (outputs[f].length > 0) outputs[state] = [...outputs[state], ...outputs[f]];
    for (let c = 0; c < width; c++) {
      const to = trie[state].get(c);
      if (to === undefined) next[state * width + c] = next[f * width + c];
      else {
        next[state * width + c] = to;
        fail[to] = next[f * width + c];
        queue.push(to);
      }
    }
  }
  for (let i = 0; i < next.length; i++) next[i] = next[i] > 0 && outputs[next[i]].length > 0 ? ~(next[i] * width) : next[i] * width;
  return { classes, wide, width, next, outputs };
}
