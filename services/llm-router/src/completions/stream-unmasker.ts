import type { MaskingSession } from '../guards/pii.masker';

/** Longest placeholder the router makes (`⟦CN_RESIDENT_ID_9999⟧` and margin): the most text held back. */
export const HOLD_BACK = 32;

/**
 * Unmasks streamed text per choice or content block: a placeholder split across deltas
 * is held back (at most `HOLD_BACK` characters) until it is whole, then replaced.
 */
export class StreamUnmasker {
  private readonly held = new Map<number, string>();

  constructor(private readonly session: Pick<MaskingSession, 'unmaskText'>) {}

  push(index: number, text: string): string {
    const all = (this.held.get(index) ?? '') + text;
    const open = all.lastIndexOf('⟦');
    if (open >= 0 && all.indexOf('⟧', open) < 0 && all.length - open < HOLD_BACK) {
      this.held.set(index, all.slice(open));
      return this.session.unmaskText(all.slice(0, open));
    }
    this.held.delete(index);
    return this.session.unmaskText(all);
  }

  flush(index: number): string {
    const rest = this.held.get(index) ?? '';
    this.held.delete(index);
    return this.session.unmaskText(rest);
  }

  /** Every index still holding text. */
  pending(): number[] {
    return [...this.held.keys()];
  }
}
