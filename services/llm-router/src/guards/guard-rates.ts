import { HARMLESS, INJECTIONS } from './corpus/injection.corpus';
import { NEGATIVES, POSITIVES } from './corpus/pii.corpus';
import { InjectionScanner } from './injection.scanner';
import { PiiDetector } from './pii.detector';
import { MaskingSession } from './pii.masker';

export interface GuardRates {
  /** Share of the corpus's sensitive values that no longer appear once the text is masked. */
  pii_recall: number;
  /** Share of the near-misses (checksum failures, look-alikes) in which anything was masked. */
  pii_false_mask_rate: number;
  /** Share of the labelled injections flagged (any confidence). */
  injection_tpr: number;
  /** Share of the harmless texts with trigger words flagged (any confidence). */
  injection_fpr: number;
  /** The same at high confidence: what `injection: block` refuses. */
  injection_block_tpr: number;
  injection_block_fpr: number;
}

const rate = (hits: number, of: number) => Math.round((hits / of) * 10_000) / 10_000;

/** The guards measured on the labelled corpora (unit tests and the `llm-router` benchmark use this one function). */
export function guardRates(detector = new PiiDetector(), scanner = new InjectionScanner()): GuardRates {
  const recalled = POSITIVES.filter((p) => !new MaskingSession(detector).maskText(p.text).includes(p.value)).length;
  const overMasked = NEGATIVES.filter((t) => detector.detect(t).length > 0).length;
  const found = INJECTIONS.map((t) => scanner.scan(t.text));
  const false_ = HARMLESS.map((t) => scanner.scan(t.text));
  return {
    pii_recall: rate(recalled, POSITIVES.length),
    pii_false_mask_rate: rate(overMasked, NEGATIVES.length),
    injection_tpr: rate(found.filter(Boolean).length, INJECTIONS.length),
    injection_fpr: rate(false_.filter(Boolean).length, HARMLESS.length),
    injection_block_tpr: rate(found.filter((f) => f?.confidence === 'high').length, INJECTIONS.length),
    injection_block_fpr: rate(false_.filter((f) => f?.confidence === 'high').length, HARMLESS.length),
  };
}
