/** One server-sent event: its `event:` name (if any) and its `data:` lines joined. */
export interface SseEvent {
  event?: string;
  data: string;
}

/**
 * Incremental SSE parser over bytes: chunks may split lines, words and UTF-8 characters
 * anywhere (the decoder holds partial characters, the buffer partial events).
 */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';

  push(chunk: Uint8Array): SseEvent[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    return this.drain();
  }

  /** What remains at the end of the stream: a last event without its blank line is still an event. */
  end(): SseEvent[] {
    this.buffer += this.decoder.decode();
    const events = this.drain();
    if (this.buffer.trim() !== '') events.push(...parseBlock(this.buffer));
    this.buffer = '';
    return events;
  }

  private drain(): SseEvent[] {
    const events: SseEvent[] = [];
    this.buffer = this.buffer.replace(/\r\n?/g, '\n');
    let at: number;
    while ((at = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + 2);
      events.push(...parseBlock(block));
    }
    return events;
  }
}

function parseBlock(block: string): SseEvent[] {
  let event: string | undefined;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line === '') continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return [];
  return [event === undefined ? { data: data.join('\n') } : { event, data: data.join('\n') }];
}

export function sseOf(event: SseEvent): string {
  return `${event.event ? `event: ${event.event}\n` : ''}data: ${event.data}\n\n`;
}
