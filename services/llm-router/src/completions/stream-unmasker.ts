import type { MaskingSession } from '../guards/pii.masker';

/** Longest placeholder the router makes (`⟦CN_RESIDENT_ID_9999⟧` and margin): the most text held back. */
export const HOLD_BACK = 32;

/**
 * Unmasks streamed text per choice or content block: a placeholder split across deltas
 * is held back (at most `HOLD_BACK` characters) until it is whole, then replaced.
 */
export class StreamUnmasker {
  private readonly held = new Map<number, string>();
  /** Lanes whose text is JSON (streamed tool-call arguments): originals go back JSON-escaped. */
  private readonly jsonLanes = new Set<number>();

  constructor(private readonly session: Pick<MaskingSession, 'unmaskText' | 'unmaskJsonText'>) {}

  push(index: number, text: string, json = false): string {
    if (json) this.jsonLanes.add(index);
    const all = (this.held.get(index) ?? '') + text;
    const open = all.lastIndexOf('⟦');
    if (open >= 0 && all.indexOf('⟧', open) < 0 && all.length - open < HOLD_BACK) {
      this.held.set(index, all.slice(open));
      return this.unmask(index, all.slice(0, open));
    }
    this.held.delete(index);
    return this.unmask(index, all);
  }

  flush(index: number): string {
    const rest = this.held.get(index) ?? '';
    this.held.delete(index);
    return this.unmask(index, rest);
  }

  private unmask(index: number, text: string): string {
    return this.jsonLanes.has(index) ? this.session.unmaskJsonText(text) : this.session.unmaskText(text);
  }

  /** A whole text (a tool call's complete arguments): nothing held back. */
  whole(text: string, json = false): string {
    return json ? this.session.unmaskJsonText(text) : this.session.unmaskText(text);
  }
}
