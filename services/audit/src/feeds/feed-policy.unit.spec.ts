import { hecEndpoint } from './senders';
import { advanceCursor, backoffMs, batches, hecOutcome, networkFailure, parseRetryAfter } from './feed-policy';

describe('batches', () => {
  const size = (s: string) => s.length;
  it('cuts by count and by bytes, in order; an oversized item goes alone', () => {
    expect(batches(['a', 'b', 'c', 'd', 'e'], size, { maxEvents: 2, maxBytes: 100 })).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(batches(['aaa', 'bb', 'c', 'dddd'], size, { maxEvents: 10, maxBytes: 5 })).toEqual([['aaa', 'bb'], ['c', 'dddd']]);
    expect(batches(['x'.repeat(9), 'a', 'y'.repeat(9)], size, { maxEvents: 10, maxBytes: 5 })).toEqual([['x'.repeat(9)], ['a'], ['y'.repeat(9)]]);
    expect(batches([], size, { maxEvents: 1, maxBytes: 1 })).toEqual([]);
  });
});

describe('backoff', () => {
  it('grows exponentially up to the cap, with full jitter, and honours Retry-After as a floor', () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 10].map((a) => backoffMs(a, 0.999999, policy))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffMs(3, 0, policy)).toBe(1);
    expect(backoffMs(1, 0.5, policy, 5000)).toBe(5000);
    expect(backoffMs(1, 0.5, policy, 10 ** 9)).toBe(600_000);
    expect(backoffMs(1000, 0.5, policy)).toBe(500);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-11-22T10:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Sun, 22 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('HEC answers', () => {
  it('200 with code 0 is the acknowledgement; anything else is not', () => {
    expect(hecOutcome(200, '{"text":"Success","code":0}', undefined, 0)).toEqual({ ok: true });
    expect(hecOutcome(200, '{"text":"x","code":6}', undefined, 0)).toMatchObject({ ok: false, failure: 'bad_answer', retryable: true });
    expect(hecOutcome(200, 'not json', undefined, 0)).toMatchObject({ ok: false, retryable: true });
  });

  it('429 and 5xx are retried (Retry-After kept); other 4xx are configuration errors', () => {
    expect(hecOutcome(429, '', '3', 0)).toMatchObject({ ok: false, failure: 'throttled', retryable: true, retryAfterMs: 3000 });
    expect(hecOutcome(503, '{"text":"Server is busy","code":9}', undefined, 0)).toMatchObject({ ok: false, failure: 'server_error', retryable: true, detail: 'HTTP 503 code 9' });
    expect(hecOutcome(401, '{"text":"Invalid token","code":4}', undefined, 0)).toMatchObject({ ok: false, failure: 'rejected', retryable: false, detail: 'HTTP 401 code 4' });
    expect(hecOutcome(400, '{"text":"Incorrect index","code":7}', undefined, 0)).toMatchObject({ failure: 'rejected', retryable: false });
  });

  it('classifies network errors', () => {
    expect(networkFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('network');
    expect(networkFailure(Object.assign(new Error('x'), { code: 'ETIMEDOUT' }))).toBe('timeout');
    expect(networkFailure(Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }))).toBe('tls');
    expect(networkFailure(Object.assign(new Error("Hostname/IP does not match certificate's altnames"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }))).toBe('tls');
  });
});

describe('cursor', () => {
  it('moves past the last delivered item, or past the whole Kafka batch at its end, never back', () => {
    expect(advanceCursor(10n, 14n, undefined)).toBe(15n);
    expect(advanceCursor(10n, 14n, 20n)).toBe(20n);
    expect(advanceCursor(10n, undefined, undefined)).toBe(10n);
    expect(advanceCursor(30n, 14n, undefined)).toBe(30n);
    expect(advanceCursor(30n, 14n, 20n)).toBe(30n);
  });
});

describe('HEC endpoint', () => {
  it('appends /services/collector/event to a base URL, keeps one that names it', () => {
    expect(hecEndpoint('https://siem:8088').href).toBe('https://siem:8088/services/collector/event');
    expect(hecEndpoint('https://siem:8088/splunk/').href).toBe('https://siem:8088/splunk/services/collector/event');
    expect(hecEndpoint('https://siem:8088/services/collector').href).toBe('https://siem:8088/services/collector/event');
    expect(hecEndpoint('https://siem:8088/services/collector/event').href).toBe('https://siem:8088/services/collector/event');
  });
});
