import { StreamUnmasker } from '../completions/stream-unmasker';
import { HARMLESS, INJECTIONS } from './corpus/injection.corpus';
import { POSITIVES } from './corpus/pii.corpus';
import { guardRates } from './guard-rates';
import { InjectionScanner } from './injection.scanner';
import { PiiDetector } from './pii.detector';
import { MaskingSession } from './pii.masker';

const detector = new PiiDetector();

describe('the guards on their labelled sets', () => {
  it('PII: 100% recall, no false mask; injections: most found, few harmless texts flagged (the benchmark prints the same figures)', () => {
    const rates = guardRates(detector);
    expect(rates.pii_recall).toBe(1);
    expect(rates.pii_false_mask_rate).toBe(0);
    expect(rates.injection_tpr).toBeGreaterThanOrEqual(0.9);
    expect(rates.injection_fpr).toBeLessThanOrEqual(0.1);
    expect(rates.injection_block_fpr).toBeLessThanOrEqual(0.05);
  });

  it('the labelled injection set covers prompts, tool results and answers', () => {
    for (const source of ['prompt', 'tool', 'output'] as const) {
      expect(INJECTIONS.some((t) => t.source === source)).toBe(true);
      expect(HARMLESS.some((t) => t.source === source)).toBe(true);
    }
    // the scanner is linear-time and keyword-gated: a long harmless text runs no rule
    expect(new InjectionScanner().scan('The release train leaves on Thursday. '.repeat(2000))).toBeUndefined();
  });

  it.each(POSITIVES.map((p) => [p.type, p.value.split('\n')[0].slice(0, 30), p] as const))('%s %s: a masked answer streamed back split at every offset comes back whole, no placeholder leaks', (_type, _shown, p) => {
    const session = new MaskingSession(detector);
    const masked = session.maskText(p.text);
    expect(masked).not.toContain(p.value);
    for (let cut = 1; cut < masked.length; cut++) {
      const unmasker = new StreamUnmasker(session);
      const out = unmasker.push(0, masked.slice(0, cut)) + unmasker.push(0, masked.slice(cut)) + unmasker.flush(0);
      expect(out).toBe(p.text);
    }
  });
});
