/** Where a JetStream message stands, as its reply subject tells it. */
export interface JetStreamDelivery {
  /** 1 on the first delivery; more on redeliveries. */
  deliveryCount: number;
  streamSequence: number;
}

/**
 * The delivery count and stream sequence from a JetStream reply subject (pure), without
 * the client's `JsMsg.info` (which splits the subject and fills eleven fields per message):
 * `$JS.ACK.<stream>.<consumer>.<deliveries>.<stream seq>.<consumer seq>.<time>.<pending>`,
 * or with `<domain>.<account hash>` after `$JS.ACK` and any tokens after `<pending>`, as
 * the client reads them (11 tokens or more). `undefined` for any other subject.
 */
export function deliveryOf(reply: string): JetStreamDelivery | undefined {
  if (!reply.startsWith('$JS.ACK.')) return undefined;
  // Token starts: the deliveries token is the 5th (old form) or the 7th (new form).
  const starts: number[] = [0];
  for (let i = reply.indexOf('.'); i !== -1 && starts.length <= 11; i = reply.indexOf('.', i + 1)) starts.push(i + 1);
  const tokens = starts.length;
  const first = tokens === 9 ? 4 : tokens >= 11 ? 6 : -1;
  if (first < 0) return undefined;
  const deliveryCount = decimal(reply, starts[first], starts[first + 1] - 1);
  const streamSequence = decimal(reply, starts[first + 1], starts[first + 2] - 1);
  // both count from 1: a 0 would give the retry backoff index −1 and never reach max-deliver (review)
  if (deliveryCount === undefined || streamSequence === undefined || deliveryCount < 1 || streamSequence < 1) return undefined;
  return { deliveryCount, streamSequence };
}

/** The non-negative decimal integer `s[from, to)`, or undefined. */
function decimal(s: string, from: number, to: number): number | undefined {
  if (to <= from) return undefined;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return n;
}
