import { composeIBAN } from 'ibantools';
import { NEGATIVES, POSITIVES } from '../../test/support/pii-corpus';
import { luhn, PiiDetector, validChineseResidentId } from './pii.detector';
import { StreamUnmasker } from '../completions/stream-unmasker';
import { MaskingSession } from './pii.masker';

const detector = new PiiDetector();

describe('PII detector on the labelled corpus', () => {
  it.each(POSITIVES.map((p) => [p.type, p.value.split('\n')[0].slice(0, 40), p] as const))('finds %s %s, whole', (_type, _shown, p) => {
    const found = detector.detect(p.text);
    const hit = found.find((e) => p.text.slice(e.start, e.end).includes(p.value) || p.value.includes(p.text.slice(e.start, e.end)));
    expect(hit?.type).toBe(p.type);
    const masked = new MaskingSession(detector).maskText(p.text);
    expect(masked).not.toContain(p.value);
  });

  it('reaches 100% recall and masks nothing in the near-misses', () => {
    const recall = POSITIVES.filter((p) => !new MaskingSession(detector).maskText(p.text).includes(p.value)).length / POSITIVES.length;
    const falseMasks = NEGATIVES.filter((t) => detector.detect(t).length > 0);
    expect(recall).toBe(1);
    expect(falseMasks).toEqual([]);
  });

  it('validates with the checksums, not the shapes', () => {
    expect(luhn('4111111111111111')).toBe(true);
    expect(luhn('4111111111111112')).toBe(false);
    expect(validChineseResidentId('11010519491231002X')).toBe(true);
    expect(validChineseResidentId('110105194912310021')).toBe(false);
    expect(validChineseResidentId('110105194913310028')).toBe(false); // month 13
  });
});

describe('PII detector: overlapping candidates', () => {
  it('masks a whole IBAN as one IBAN, even when a run of its digits would pass as a card number (Luhn)', () => {
    let seed = 20261203;
    const digit = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), String(seed % 10));
    let withLuhnRun = 0;
    for (let i = 0; i < 2000; i++) {
      const iban = composeIBAN({ countryCode: 'DE', bban: Array.from({ length: 18 }, digit).join('') })!;
      const grouped = iban.replace(/(.{4})/g, '$1 ').trim();
      const text = `refund on IBAN ${grouped} today`;
      // without its country code the digits are no IBAN: does a card number show among them?
      if (detector.detect(grouped.slice(4)).some((e) => e.type === 'card')) withLuhnRun++;
      expect(detector.detect(text).map((e) => [e.type, text.slice(e.start, e.end)])).toEqual([['iban', grouped]]);
    }
    expect(withLuhnRun).toBeGreaterThan(0); // the case was met: some IBANs hold a Luhn-valid run
  });
});

describe('masking session', () => {
  it('masks reversibly: the same value one placeholder, originals back in the response, counts per type without values', () => {
    const s = new MaskingSession(detector);
    const body = s.maskBody({ messages: [{ role: 'user', content: 'mail alice.martin@example.com twice: alice.martin@example.com, card 4111 1111 1111 1111' }] }, { deadlineMs: 1000 });
    const text = body.messages[0].content;
    expect(text).toBe('mail ⟦EMAIL_1⟧ twice: ⟦EMAIL_1⟧, card ⟦CARD_1⟧');
    expect(s.statistics).toEqual({ email: 2, card: 1 });
    expect(JSON.stringify(s.statistics)).not.toContain('alice');
    expect(s.unmaskText('reply to ⟦EMAIL_1⟧ and ⟦CARD_1⟧, not ⟦EMAIL_9⟧')).toBe('reply to alice.martin@example.com and 4111 1111 1111 1111, not ⟦EMAIL_9⟧');
  });

  it('masks content parts, tool results and tool-call arguments, but not protocol fields or images', () => {
    const s = new MaskingSession(detector);
    const image = { url: 'data:image/png;base64,AAAA' };
    const body = s.maskBody(
      {
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'ip 192.168.10.25' }, { type: 'image_url', image_url: image }] },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"email":"bob@example.org"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: 'IBAN GB82WEST12345698765432' },
        ],
      },
      { deadlineMs: 1000 },
    );
    const out = JSON.stringify(body);
    expect(out).not.toMatch(/192\.168\.10\.25|bob@example\.org|GB82WEST/);
    expect(out).toContain('"tool_call_id":"call_1"');
    expect(body.messages[0].content[1]).toEqual({ type: 'image_url', image_url: image });
  });

  it('puts originals back into tool-call arguments JSON-escaped, whole and streamed, so a value with quotes or newlines stays one string', () => {
    const key = ['-----BEGIN RSA PRIVATE KEY-----', 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw', '-----END RSA PRIVATE KEY-----'].join('\n');
    const s = new MaskingSession(detector);
    const masked = s.maskBody({ messages: [{ role: 'user', content: `deploy with ${key} please` }] }, { deadlineMs: 1000 }).messages[0].content;
    const placeholder = /⟦[A-Z_]+_\d+⟧/.exec(masked)?.[0];
    expect(placeholder).toBeDefined();
    expect(masked).not.toContain('MIIEowIBAAKCAQEA');
    const args = `{"key":"${placeholder}","note":"x"}`;
    const answer = s.unmaskBody({ choices: [{ message: { content: placeholder, tool_calls: [{ function: { name: 'deploy', arguments: args } }] } }] });
    expect(JSON.parse(answer.choices[0].message.tool_calls[0].function.arguments)).toEqual({ key, note: 'x' });
    expect(answer.choices[0].message.content).toBe(key);
    const stream = new StreamUnmasker(s);
    const pieces = [args.slice(0, 9), args.slice(9, 14), args.slice(14)];
    const streamed = pieces.map((piece) => stream.push(7, piece, true)).join('') + stream.flush(7);
    expect(JSON.parse(streamed)).toEqual({ key, note: 'x' });
  });

  it('fails closed: a detector that throws or runs past its deadline refuses the request', () => {
    const broken = new MaskingSession({ detect: () => { throw new Error('boom'); } });
    expect(() => broken.maskBody({ messages: [{ role: 'user', content: 'x' }] }, { deadlineMs: 1000 })).toThrow(/refused/);
    let clock = 0;
    const slow = new MaskingSession({ detect: () => ((clock += 100), []) });
    expect(() => slow.maskBody({ messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'user', content: 'c' }] }, { deadlineMs: 150, now: () => clock })).toThrow(/could not check the request in time/);
  });
});
